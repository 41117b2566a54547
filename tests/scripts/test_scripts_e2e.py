"""Scripts on the bundled demo model: the X/Y/Z grid shows the asked colours, its cells are the plain requests'
pictures bit for bit, LoRA epochs × strengths, interrupt keeps a partial grid, prompt matrix, prompts from file."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from tests.demo.analyser import analyse
from tests.helpers.demo_fixtures import demo_runtime_fixture, one_thread  # noqa: F401 (autouse fixture)
from tests.networks.tiny import kohya_lora, lora_targets
from webui.processing.jobs import JobState
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img
from webui.scripts import ScriptContext, run_script
from webui.scripts.grid import font_size_for

runtime = demo_runtime_fixture("scripts")
SIZE = 64
BASE = {"prompt": "a red circle on a white background", "steps": 20, "sampler_name": "Euler", "width": SIZE,
        "height": SIZE, "seed": 3}


def request(**extra) -> Txt2ImgRequest:
    return make_request(Txt2ImgRequest, {**BASE, "save_images": False, **extra})


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def cell_origin(grid: Image.Image, index: int, cols: int, rows: int) -> tuple[int, int]:
    """Where cell `index` sits in a labelled grid without margins (labels take the left and top bands)."""
    pad_left, pad_top = grid.width - cols * SIZE, grid.height - rows * SIZE
    return pad_left + SIZE * (index % cols), pad_top + SIZE * (index // cols)


def crop_cell(grid: Image.Image, index: int, cols: int, rows: int) -> np.ndarray:
    x, y = cell_origin(grid, index, cols, rows)
    return pixels(grid.crop((x, y, x + SIZE, y + SIZE)))


@pytest.fixture(scope="module")
def colour_plot(runtime):
    job = JobState()
    seen: list[tuple[str, int, int, float | None]] = []
    job.on_step = lambda state: seen.append((state.text, state.job_no, state.job_count, state.eta_seconds))
    args = ["Prompt S/R", "red, green, blue", None, "Seed", "1, 2", None, "Nothing", "", None, True, True]
    result = run_script("x/y/z plot", args, make_request(Txt2ImgRequest, {**BASE, "save_images": True}),
                        ScriptContext(runtime, "txt2img"), job)
    return result, job, seen


def test_colour_by_seed_grid_shows_the_asked_colours_in_a_labelled_grid(colour_plot):
    result, _, _ = colour_plot
    grid = result.grid
    assert len(result.images) == 6 and [image.size for image in result.images] == [(SIZE, SIZE)] * 6
    pad_left, pad_top = grid.width - 3 * SIZE, grid.height - 2 * SIZE
    font = font_size_for(SIZE, SIZE)
    assert pad_left == max(SIZE * 3 // 4, font * 6) and font < pad_top < 4 * font  # one line of column labels
    for index, colour in enumerate(["red", "green", "blue"] * 2):
        assert analyse(result.images[index]).foreground == colour, (index, colour)
        assert np.array_equal(crop_cell(grid, index, 3, 2), pixels(result.images[index]))
    grey = np.asarray(grid.convert("L"))
    for col in range(3):  # dark label text above every column and left of every row
        assert (grey[:pad_top, pad_left + col * SIZE:pad_left + (col + 1) * SIZE] < 100).any()
    for row in range(2):
        assert (grey[pad_top + row * SIZE:pad_top + (row + 1) * SIZE, :pad_left] < 100).any()
    for text, seed in zip(result.infotexts, [1, 1, 1, 2, 2, 2], strict=True):
        assert f"Seed: {seed}," in text and "Script" not in text  # each cell keeps its own infotext
    assert result.infotexts[4].startswith("a green circle on a white background\n")
    assert 'Script: X/Y/Z plot, X Type: Prompt S/R, X Values: "red, green, blue", Y Type: Seed' in \
        result.grid_infotext


def test_each_cell_is_the_same_request_run_alone_bit_for_bit(runtime, colour_plot):
    result, _, _ = colour_plot
    for index, (colour, seed) in enumerate([(c, s) for s in (1, 2) for c in ("red", "green", "blue")]):
        alone = txt2img(request(prompt=f"a {colour} circle on a white background", seed=seed), runtime)
        assert np.array_equal(pixels(alone.images[0]), pixels(result.images[index])), (colour, seed)
        assert alone.infotexts[0] == result.infotexts[index]


def test_grid_is_saved_with_its_infotext_and_progress_counts_cells(runtime, colour_plot):
    result, job, seen = colour_plot
    saved = sorted((runtime.folders.outputs / "txt2img-grids").rglob("xyz_grid-*.png"))
    assert len(saved) == 1
    with Image.open(saved[0]) as image:
        assert image.size == result.grid.size and image.info["parameters"] == result.grid_infotext
    assert len(sorted((runtime.folders.outputs / "txt2img-images").rglob("*.png"))) == 6
    texts = [text for text, *_ in seen]
    assert sorted(set(texts)) == [f"Cell {k} / 6" for k in range(1, 7)] and texts == sorted(texts)
    assert all(count == 6 for _, _, count, _ in seen)  # one image per cell, one sampler run each
    assert [no for text, no, *_ in seen if text == "Cell 4 / 6"][0] == 3
    assert seen[len(seen) // 2][3] is not None  # an ETA over the whole plot while it runs
    assert job.job_no == job.job_count == 6 and job.text == ""


def test_interrupt_stops_after_the_current_cell_and_returns_the_partial_grid(runtime, colour_plot):
    full, _, _ = colour_plot
    job = JobState()

    def press_interrupt(state: JobState) -> None:
        if state.text == "Cell 2 / 6":
            state.interrupt()

    job.on_step = press_interrupt
    args = ["Prompt S/R", "red, green, blue", None, "Seed", "1, 2", None, "Nothing", "", None, True, True]
    result = run_script("x/y/z plot", args, request(), ScriptContext(runtime, "txt2img"), job)
    assert result.interrupted and len(result.images) == 2 and result.grid.size == full.grid.size
    for index in (0, 1):  # the cell running at the press was finished
        assert np.array_equal(crop_cell(result.grid, index, 3, 2), pixels(full.images[index]))
    for index in range(2, 6):
        assert not crop_cell(result.grid, index, 3, 2).any()  # never rendered: left empty


def test_lora_epochs_by_strength_with_weight_zero_equal_to_the_base_image(runtime, tmp_path):
    names = runtime.models.load().lora_names()
    folder = runtime.folders.lora[0]
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in (1, 2):
        tensors = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=epoch)
        save_file({k: v * 5 for k, v in tensors.items()}, str(folder / f"shapes-00000{epoch}.safetensors"))
    runtime.loras.scan()
    base = pixels(txt2img(request(), runtime).images[0])
    args = ["LoRA file", "", ["shapes-000001", "shapes-000002"], "LoRA weight", "0, 1", None, "Nothing", "", None,
            True, True]
    tagged = request(prompt=BASE["prompt"] + " <lora:shapes-000001:0.6>")
    result = run_script("x/y/z plot", args, tagged, ScriptContext(runtime, "txt2img"), JobState())
    cells = [pixels(image) for image in result.images]
    assert np.array_equal(cells[0], base) and np.array_equal(cells[1], base)
    assert not np.array_equal(cells[2], base) and not np.array_equal(cells[3], base)
    assert not np.array_equal(cells[2], cells[3])  # the two epochs differ
    assert "<lora:shapes-000002:1>" in result.infotexts[3] and "LoRA file" in result.grid_infotext
    assert result.warnings == []


def test_prompt_matrix_gives_a_grid_then_every_combination(runtime):
    result = run_script("prompt matrix", [False, False, "positive", "comma"],
                        request(prompt="a red circle on a white background|sharp|plain"),
                        ScriptContext(runtime, "txt2img"),
                        JobState())
    prompts = [text.splitlines()[0] for text in result.infotexts]
    base = "a red circle on a white background"
    assert prompts == [base, f"{base}, sharp", f"{base}, plain", f"{base}, sharp, plain"]
    assert all("Seed: 3," in text for text in result.infotexts)  # one seed unless "different seeds"
    assert result.grid.width - 2 * SIZE > 0 and result.grid.height - 2 * SIZE > 0
    assert np.array_equal(crop_cell(result.grid, 3, 2, 2), pixels(result.images[3]))
    assert np.array_equal(pixels(result.images[0]), pixels(txt2img(request(), runtime).images[0]))


def test_prompts_from_textbox_run_one_job_per_line(runtime):
    lines = '--prompt "a blue square on a black background" --seed 5 --steps 4\na green circle on a white background'
    result = run_script("prompts from file or textbox", [False, False, "start", lines], request(prompt=""),
                        ScriptContext(runtime, "txt2img"), JobState())
    assert result.grid is None and len(result.images) == 2
    assert result.infotexts[0].startswith("a blue square on a black background\n")
    assert "Steps: 4," in result.infotexts[0] and "Seed: 5," in result.infotexts[0]
    assert "Steps: 20," in result.infotexts[1] and "Seed: 3," in result.infotexts[1]
    assert analyse(result.images[1]).foreground == "green"


def test_z_axis_makes_a_row_of_sub_grids_with_margins(runtime):
    args = ["CFG Scale", "5, 9", None, "Nothing", "", None, "Steps", "3, 4", None, True, True, True, False, False,
            False, False, 6]
    result = run_script("x/y/z plot", args, request(), ScriptContext(runtime, "txt2img"), JobState())
    subs, cells = result.images[:2], result.images[2:]
    assert len(cells) == 4 and subs[0].size == subs[1].size == (2 * SIZE + 6, subs[0].height)
    assert result.grid.width == 2 * subs[0].width + 6 and result.grid.height > subs[0].height
    assert ["Steps: 3," in text for text in result.infotexts[2:]] == [True, True, False, False]
    assert ["CFG scale: 9.0," in text for text in result.infotexts[2:]] == [False, True, False, True]
    x, y = result.grid.width - subs[1].width, result.grid.height - subs[1].height
    assert pixels(result.grid.crop((x, y, result.grid.width, result.grid.height))).tolist() == pixels(subs[1]).tolist()
