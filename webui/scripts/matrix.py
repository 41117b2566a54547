"""Prompt matrix: `a|b|c` renders every subset of the parts after the first, in one grid of on/off labels."""
from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.noise import fix_seed
from webui.processing.request import GenerationRequest
from webui.processing.results import GenerationResult
from webui.scripts.common import (
    ScriptContext,
    merged_warnings,
    request_fields,
    run_cells,
    save_script_grid,
    with_fields,
)
from webui.scripts.grid import Label, annotate

TITLE = "Prompt matrix"
GRID_BASENAME = "prompt_matrix"
MAX_PARTS = 12  # 2^11 pictures is already more than anyone wants on one grid


@dataclass(frozen=True)
class MatrixArgs:
    """A1111 v1.10.1's script_args order."""

    put_at_start: bool = False
    different_seeds: bool = False
    prompt_type: str = "positive"  # or "negative": which prompt holds the `|` parts
    variations_delimiter: str = "comma"  # or "space"
    margin_size: int = 0


def matrix_prompts(prompt: str, put_at_start: bool, delimiter: str) -> tuple[list[str], list[str]]:
    """(the parts, one prompt per combination): bit i of the combination number selects part i + 1."""
    parts = prompt.split("|")
    if len(parts) > MAX_PARTS:
        raise UserInputError(f"Prompt matrix: {len(parts)} parts make {2 ** (len(parts) - 1)} pictures; "
                             f"use at most {MAX_PARTS} parts")
    joiner = ", " if delimiter == "comma" else " "
    prompts = []
    for number in range(2 ** (len(parts) - 1)):
        chosen = [text.strip().strip(",") for n, text in enumerate(parts[1:]) if number & (1 << n)]
        ordered = chosen + [parts[0]] if put_at_start else [parts[0]] + chosen
        prompts.append(joiner.join(ordered))
    return parts, prompts


def matrix_labels(parts: list[str]) -> tuple[list[list[Label]], list[list[Label]]]:
    """Column labels for the first half of the optional parts, row labels for the rest (on: black, off: grey)."""
    optional = parts[1:]
    boundary = math.ceil(len(optional) / 2)
    across, down = optional[:boundary], optional[boundary:]
    columns = [[Label(text, bool(position & (1 << i))) for i, text in enumerate(across)]
               for position in range(1 << len(across))]
    rows = [[Label(text, bool(position & (1 << i))) for i, text in enumerate(down)]
            for position in range(1 << len(down))]
    return columns, rows


def run_matrix(request: GenerationRequest, args: MatrixArgs, ctx: ScriptContext, job: JobState) -> GenerationResult:
    base = request_fields(request)
    negative = args.prompt_type == "negative"
    source = base["negative_prompt" if negative else "prompt"]
    parts, prompts = matrix_prompts(source, bool(args.put_at_start), args.variations_delimiter)
    seed = fix_seed(base["seed"])
    base["subseed"] = fix_seed(base["subseed"])
    requests = []
    for index, text in enumerate(prompts):  # all checked before the first picture renders
        fields = {**base, "negative_prompt" if negative else "prompt": text, "batch_size": 1, "n_iter": 1,
                  "seed": seed + (index if args.different_seeds else 0), "save_grid": False}
        requests.append(with_fields(request, fields))
    done, interrupted = run_cells(requests, list(range(len(requests))), ctx, job, noun="image")
    result = GenerationResult(interrupted=interrupted, warnings=merged_warnings(done.values()))
    for _, cell in sorted(done.items()):
        if cell.items:
            result.add(cell.items[0])
    if not result.images or result.interrupted:
        return result  # a partial matrix has no meaningful layout: the finished pictures only
    columns, rows = matrix_labels(parts)
    cells: list[Image.Image] = result.images
    result.grid = annotate(cells, len(columns), len(rows), columns, rows, int(args.margin_size))
    result.grid_infotext = result.infotexts[0]
    path = save_script_grid(result.grid, result.grid_infotext, request, ctx.runtime, GRID_BASENAME)
    result.grid_path = path
    return result

