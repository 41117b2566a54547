"""Prompts from file or textbox: one job per line, a line may set fields A1111-style (`--prompt "…" --steps 20`)."""
from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.noise import fix_seed
from webui.processing.request import GenerationRequest
from webui.processing.results import GenerationResult
from webui.sampling.names import SAMPLER_NAMES, find_sampler
from webui.scripts.common import ScriptContext, merged_warnings, request_fields, run_cells, with_fields

TITLE = "Prompts from file or textbox"
MAX_LINES = 1000


@dataclass(frozen=True)
class PromptsFileArgs:
    """A1111 v1.10.1's script_args order."""

    checkbox_iterate: bool = False  # "Iterate seed every line"
    checkbox_iterate_batch: bool = False  # "Use same random seed for all lines"
    prompt_position: str = "start"  # where a line's prompt goes relative to the tab's prompt
    prompt_txt: str = ""


def _bool(value: str) -> bool:
    return value.strip().lower() == "true"


def _sampler_index(value: str) -> str:
    index = int(value)
    if not 0 <= index < len(SAMPLER_NAMES):
        raise ValueError(f"sampler index {index} is out of range")
    return SAMPLER_NAMES[index].name


# option → (request field, converter); None as field: accepted and ignored (display or UI-only options).
OPTIONS: Mapping[str, tuple[str | None, Callable[[str], Any]]] = MappingProxyType({
    "prompt": ("prompt", str), "negative_prompt": ("negative_prompt", str), "styles": ("styles", str),
    "seed": ("seed", int), "subseed": ("subseed", int), "subseed_strength": ("subseed_strength", float),
    "seed_resize_from_h": ("seed_resize_from_h", int), "seed_resize_from_w": ("seed_resize_from_w", int),
    "sampler_name": ("sampler_name", lambda v: find_sampler(v).name), "sampler_index": ("sampler_name", _sampler_index),
    "batch_size": ("batch_size", int), "n_iter": ("n_iter", int), "steps": ("steps", int),
    "cfg_scale": ("cfg_scale", float), "width": ("width", int), "height": ("height", int),
    "sd_model": ("checkpoint", str), "do_not_save_samples": ("do_not_save_samples", _bool),
    "do_not_save_grid": ("do_not_save_grid", _bool), "restore_faces": ("restore_faces", _bool),
    "tiling": ("tiling", _bool), "prompt_for_display": (None, str),
})


def parse_line(line: str) -> dict[str, Any]:
    """`--key value` pairs (prompt and negative_prompt take every word up to the next `--`)."""
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise UserInputError(f"cannot read line {line!r}: {error}") from None
    values: dict[str, Any] = {}
    position = 0
    while position < len(words):
        word = words[position]
        if not word.startswith("--"):
            raise UserInputError(f"line {line!r}: expected an option starting with --, got {word!r}")
        name = word[2:]
        if position + 1 >= len(words):
            raise UserInputError(f"line {line!r}: missing value for {word}")
        if name in ("prompt", "negative_prompt"):
            position += 1
            text = [words[position]]
            position += 1
            while position < len(words) and not words[position].startswith("--"):
                text.append(words[position])
                position += 1
            values[name] = " ".join(text)
            continue
        if name not in OPTIONS:
            raise UserInputError(f"line {line!r}: unknown option {word} (known: "
                                 f"{', '.join('--' + key for key in OPTIONS)})")
        target, convert = OPTIONS[name]
        try:
            value = convert(words[position + 1])
        except ValueError as error:
            raise UserInputError(f"line {line!r}: bad value for {word}: {error}") from None
        if target is not None:
            values[target] = value
        position += 2
    return values


def read_lines(text: str) -> list[dict[str, Any]]:
    """One job per non-empty line; a line that is not options (even with `--` inside) is a prompt, as A1111."""
    jobs = []
    for line in (raw.strip() for raw in (text or "").splitlines()):
        if not line:
            continue
        jobs.append(parse_line(line) if line.startswith("--") else {"prompt": line})
    if len(jobs) > MAX_LINES:
        raise UserInputError(f"{len(jobs)} lines: at most {MAX_LINES} at a time")
    return jobs


def _line_fields(base: dict[str, Any], line: dict[str, Any], position: str, ctx: ScriptContext) -> dict[str, Any]:
    fields = dict(base)
    for key in ("prompt", "negative_prompt"):
        if line.get(key) and base[key]:
            fields[key] = f"{line[key]} {base[key]}" if position == "start" else f"{base[key]} {line[key]}"
        elif key in line:
            fields[key] = line[key]
    if line.get("restore_faces") or line.get("tiling"):
        raise UserInputError("--restore_faces and --tiling are not available in this WebUI")
    if line.get("styles"):
        if ctx.styles is None:
            raise UserInputError("--styles: no styles file is available")
        names = [name.strip() for name in line["styles"].split(",") if name.strip()]
        fields["prompt"], fields["negative_prompt"] = ctx.styles.apply(names, fields["prompt"],
                                                                       fields["negative_prompt"])
    for key, value in line.items():
        if key in fields and key not in ("prompt", "negative_prompt"):
            fields[key] = value
    if line.get("do_not_save_samples"):
        fields["save_images"] = False
    if line.get("do_not_save_grid"):
        fields["save_grid"] = False
    return fields


def run_prompts_file(request: GenerationRequest, args: PromptsFileArgs, ctx: ScriptContext,
                     job: JobState) -> GenerationResult:
    lines = read_lines(args.prompt_txt)
    if not lines:
        raise UserInputError("Prompts from file or textbox: the list of prompts is empty")
    base = request_fields(request)
    if args.checkbox_iterate or args.checkbox_iterate_batch:
        base["seed"] = fix_seed(base["seed"])
    requests = []
    for line in lines:  # every line checked before the first picture renders
        fields = _line_fields(base, line, args.prompt_position, ctx)
        requests.append(with_fields(request, fields))
        if args.checkbox_iterate:
            base["seed"] += base["batch_size"] * base["n_iter"]
    done, interrupted = run_cells(requests, list(range(len(requests))), ctx, job, noun="prompt")
    result = GenerationResult(interrupted=interrupted or any(r.interrupted for r in done.values()),
                              warnings=merged_warnings(done.values()))
    for _, line_result in sorted(done.items()):
        result.items += line_result.items
    return result
