"""Scripts over the API as A1111 clients drive them (webuiapi): script_name + positional script_args, axis
indices looked up in /script-info, the grid first and then the cells."""
from __future__ import annotations

import numpy as np
from PIL import Image

from tests.api.server import SMALL

PROMPT = "a red circle on a white background"


def _script_args(api, mode: str, name: str) -> list[dict]:
    response = api.session.get(f"{api.baseurl}/script-info")
    assert response.status_code == 200
    return next(s["args"] for s in response.json() if s["name"] == name and s["is_img2img"] == (mode == "img2img"))


def _xyz_args(x_type: int, x_values: str, y_type: int = 0, y_values: str = "", lone: bool = True) -> list:
    # A1111 v1.10.1's order: x/y/z (type, values, dropdown), draw_legend, include_lone_images, include_sub_grids,
    # no_fixed_seeds, vary_seeds_x/y/z, margin_size, csv_mode
    return [x_type, x_values, [], y_type, y_values, [], 0, "", [], True, lone, False, False, False, False, False,
            0, False]


def test_xyz_plot_by_axis_indices_returns_the_grid_then_the_cells(api):
    choices = _script_args(api, "txt2img", "x/y/z plot")[0]["choices"]
    prompt_sr, seed = choices.index("Prompt S/R"), choices.index("Seed")
    result = api.txt2img(prompt=PROMPT, seed=3, script_name="x/y/z plot",
                         script_args=_xyz_args(prompt_sr, "red, blue", seed, "1, 2"), **SMALL)
    grid, cells = result.images[0], result.images[1:]
    assert len(cells) == 4 and all(cell.size == (64, 64) for cell in cells)
    assert grid.width > 2 * 64 and grid.height > 2 * 64
    assert result.info["index_of_first_image"] == 1
    assert 'Script: X/Y/Z plot, X Type: Prompt S/R, X Values: "red, blue"' in grid.info["parameters"]
    assert cells[3].info["parameters"].startswith("a blue circle on a white background\n")
    assert "Seed: 2," in cells[3].info["parameters"]
    alone = api.txt2img(prompt="a blue circle on a white background", seed=2, **SMALL).image
    assert np.array_equal(np.asarray(alone), np.asarray(cells[3]))
    only_grid = api.txt2img(prompt=PROMPT, seed=3, script_name="X/Y/Z plot",
                            script_args=_xyz_args(prompt_sr, "red, blue", lone=False), **SMALL)
    assert len(only_grid.images) == 1 and only_grid.images[0].width == 2 * 64 and only_grid.images[0].height > 64


def test_xyz_values_are_checked_before_rendering(api):
    choices = _script_args(api, "txt2img", "x/y/z plot")[0]["choices"]
    body = {**SMALL, "prompt": PROMPT, "script_name": "x/y/z plot",
            "script_args": _xyz_args(choices.index("Sampler"), "Euler, Euler z")}
    response = api.session.post(f"{api.baseurl}/txt2img", json=body)
    assert response.status_code == 400 and "Euler z" in response.json()["detail"]
    body["script_args"] = _xyz_args(choices.index("Checkpoint name"), "no-such-model")
    response = api.session.post(f"{api.baseurl}/txt2img", json=body)
    assert response.status_code == 400 and "no-such-model" in response.json()["detail"]


def test_img2img_xyz_uses_the_img2img_axis_list(api):
    args = _script_args(api, "img2img", "x/y/z plot")
    choices = args[0]["choices"]
    assert "Hires upscaler" not in choices and "Image CFG Scale" in choices
    init = Image.new("RGB", (64, 64), (250, 250, 250))
    result = api.img2img(images=[init], prompt=PROMPT, seed=4, script_name="x/y/z plot",
                         script_args=_xyz_args(choices.index("Denoising"), "0.3, 0.9"), **SMALL)
    assert len(result.images) == 3
    assert "Denoising strength: 0.3" in result.images[1].info["parameters"]
    assert "Denoising strength: 0.9" in result.images[2].info["parameters"]


def test_prompt_matrix_and_prompts_from_textbox(api):
    matrix = api.txt2img(prompt=PROMPT + "|sharp|plain", seed=3, script_name="prompt matrix",
                         script_args=[False, False, "positive", "comma", 0], **SMALL)
    assert len(matrix.images) == 5 and matrix.info["index_of_first_image"] == 1
    assert matrix.images[4].info["parameters"].startswith(PROMPT + ", sharp, plain\n")
    lines = f"{PROMPT}\n--prompt \"a blue square on a black background\" --seed 9"
    listed = api.txt2img(prompt="", seed=3, script_name="prompts from file or textbox",
                         script_args=[False, False, "start", lines], **SMALL)
    assert len(listed.images) == 2 and "Seed: 9," in listed.images[1].info["parameters"]
