"""Scripts without a model: A1111's value syntax, axis lists and indices, validation messages, grid drawing,
prompt-matrix combinations and prompts-from-file lines."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image, ImageDraw

from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from webui.errors import UserInputError
from webui.processing.request import Txt2ImgRequest, make_request
from webui.scripts import ScriptContext, find_script, script_info
from webui.scripts.axes import axes_for, find_axis
from webui.scripts.grid import find_cjk_font, label_font, labelled_grid, row_of_grids, wrap
from webui.scripts.matrix import matrix_labels, matrix_prompts
from webui.scripts.prompts_file import parse_line, read_lines
from webui.scripts.values import parse_values, split_values
from webui.scripts.xyz import XyzArgs, loop_order, plan_plot

# (typed text, axis type, expansion) — A1111 v1.10.1's results, including its quirk that a descending stepped
# range stops before the end it names when the step does not land on it (range(10, 1 + 1, -3)).
VALUE_TABLE = [
    ("1-5", int, [1, 2, 3, 4, 5]),
    ("1-5 (+2)", int, [1, 3, 5]),
    ("1-10 (+3)", int, [1, 4, 7, 10]),
    ("10-1 (-3)", int, [10, 7, 4]),
    ("1-10 [5]", int, [1, 3, 5, 7, 10]),
    ("1-10 [4]", int, [1, 4, 7, 10]),
    ("0.0-1.0 [6]", float, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ("0-1 (+0.25)", float, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("1-2", float, [1.0, 2.0]),
    ("-1, 5, 7-8", int, [-1, 5, 7, 8]),
    ("3, 1-2, 10", int, [3, 1, 2, 10]),
    ("0.5, 1.5 ,2", float, [0.5, 1.5, 2.0]),
    ('red, "dark green, bright", blue', str, ["red", "dark green, bright", "blue"]),
    ("Euler a, DPM++ 2M", str, ["Euler a", "DPM++ 2M"]),
    (" , a,, b ", str, ["a", "b"]),
]


@pytest.mark.parametrize("text,kind,expected", VALUE_TABLE)
def test_a1111_value_syntax(text, kind, expected):
    values = parse_values(text, kind)
    assert values == pytest.approx(expected)
    assert all(type(value) is kind for value in values)


def test_values_that_are_not_numbers_name_the_value():
    with pytest.raises(UserInputError, match="'ten'"):
        parse_values("1, ten", int, "X values")
    with pytest.raises(UserInputError, match="step of 0"):
        parse_values("1-5 (+0)", int)
    assert split_values('a, "b, c"') == ["a", "b, c"]


def test_axis_lists_follow_a1111_order_per_tab_with_ours_at_the_end():
    txt, img = [a.label for a in axes_for("txt2img")], [a.label for a in axes_for("img2img")]
    assert txt[:11] == ["Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps", "CFG Scale",
                        "Prompt S/R", "Prompt order", "Sampler", "Hires sampler"]
    assert img[:10] == ["Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "CFG Scale", "Image CFG Scale",
                        "Prompt S/R", "Prompt order", "Sampler"]
    assert "Hires upscaler" in txt and "Hires upscaler" not in img and "Denoising" in txt and "Denoising" in img
    assert txt[-3:] == ["Size", "LoRA weight", "LoRA file"] and img[-2:] == ["LoRA weight", "LoRA file"]
    assert find_axis("txt2img", 7).label == "Prompt S/R" and find_axis("txt2img", "prompt s/r").label == "Prompt S/R"
    with pytest.raises(UserInputError, match="out of range"):
        find_axis("txt2img", len(txt))


def test_script_info_lists_args_with_choices_for_each_tab():
    info = {(s["name"], s["is_img2img"]): s for s in script_info()}
    xyz = info[("x/y/z plot", False)]
    assert xyz["args"][0]["label"] == "X type" and xyz["args"][0]["value"] == 1
    assert xyz["args"][0]["choices"] == [a.label for a in axes_for("txt2img")]
    assert [a["label"] for a in xyz["args"]][9:13] == ["Draw legend", "Include Sub Images", "Include Sub Grids",
                                                       "Keep -1 for seeds"]
    assert len(xyz["args"]) == 18
    assert info[("x/y/z plot", True)]["args"][0]["choices"] == [a.label for a in axes_for("img2img")]
    assert info[("prompt matrix", False)]["args"][2]["choices"] == ["positive", "negative"]
    assert find_script("X/Y/Z PLOT").title == "X/Y/Z plot"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return ScriptContext(demo_runtime(DEFAULT_CHECKPOINT, tmp_path_factory.mktemp("units")), "txt2img")


def _request(**extra):
    return make_request(Txt2ImgRequest, {"prompt": "a red circle <lora:a:0.6>", "steps": 4, "width": 64,
                                         "height": 64, "seed": 5, "save_images": False, **extra})


@pytest.mark.parametrize("args,message", [
    (XyzArgs("Sampler", "Euler, Eulr b"), "Eulr b"),
    (XyzArgs("Checkpoint name", "demo-shapes, nope-model"), "nope-model"),
    (XyzArgs("Steps", "4, lots"), "'lots'"),
    (XyzArgs("Prompt S/R", "purple, red"), "'purple'"),
    (XyzArgs("Face restore", "true"), "not supported"),
    (XyzArgs("Seed", ""), "at least one value"),
    (XyzArgs("Steps", "4, 999"), "steps"),
])
def test_bad_values_are_refused_before_rendering_naming_the_value(ctx, args, message):
    with pytest.raises(UserInputError, match=message):
        plan_plot(_request(), args, ctx)


def test_plan_fixes_seeds_applies_axes_and_puts_the_checkpoint_outermost(ctx):
    plan = plan_plot(_request(seed=-1), XyzArgs("Prompt S/R", "red, blue", None, "Checkpoint name",
                                                "demo-shapes, demo-shapes.safetensors", None, "LoRA weight",
                                                "0, 1"), ctx)
    assert len({r.seed for r in plan.requests}) == 1 and plan.requests[0].seed != -1
    assert [r.prompt for r in plan.requests[:2]] == ["a red circle <lora:a:0>", "a blue circle <lora:a:0>"]
    assert plan.requests[-1].prompt == "a blue circle <lora:a:1>"
    assert {r.checkpoint for r in plan.requests} == {"demo-shapes.safetensors"}
    # Y (checkpoint, the costliest) outermost, then Z (LoRA weight), X innermost
    assert plan.order == [0, 1, 4, 5, 2, 3, 6, 7]
    kept = plan_plot(_request(seed=-1), XyzArgs("Steps", "4, 5", no_fixed_seeds=True, vary_seeds_x=True), ctx)
    assert [r.seed for r in kept.requests] == [-1, 0]


def test_default_loop_order_is_z_then_y_then_x(ctx):
    plan = plan_plot(_request(), XyzArgs("Steps", "4, 5", None, "CFG Scale", "5, 7"), ctx)
    assert loop_order(plan.x, plan.y, plan.z) == [0, 1, 2, 3]
    assert [(r.steps, r.cfg_scale) for r in plan.requests] == [(4, 5.0), (5, 5.0), (4, 7.0), (5, 7.0)]


def test_chinese_font_is_found_and_draws_han_characters(caplog):
    assert find_cjk_font() is not None, "install fonts-wqy-zenhei (run_tests.sh does)"
    font = label_font(20)
    assert font.getmask("可爱的狗").getbbox() is not None
    assert font.getbbox("狗")[2] > font.getbbox("狗")[0]  # a real glyph, not a zero-width missing one
    with caplog.at_level(logging.WARNING):
        label_font(14)
    assert not caplog.records


def test_long_labels_wrap_and_grids_place_cells_exactly():
    cells = [Image.new("RGB", (64, 64), colour) for colour in ("red", "green", "blue", "white")]
    grid = labelled_grid(cells, 2, ["短", "一个很长的中文标签需要换行显示在格子上方"], ["Seed: 1", "Seed: 2"], margin=4)
    cell_w, pad_left = 64, max(64 * 3 // 4, 14 * 6)
    pad_top = grid.height - 2 * 64 - 4
    assert grid.width == pad_left + 2 * cell_w + 4
    for index, cell in enumerate(cells):
        x, y = pad_left + (64 + 4) * (index % 2), pad_top + (64 + 4) * (index // 2)
        assert np.array_equal(np.asarray(grid.crop((x, y, x + 64, y + 64))), np.asarray(cell))
    header = np.asarray(grid.crop((pad_left, 0, grid.width, pad_top)).convert("L"))
    assert (header < 100).any()
    left = np.asarray(grid.crop((0, pad_top, pad_left, grid.height)).convert("L"))
    assert (left < 100).any()
    long_label = "一个很长的中文标签需要换行显示在格子上方"
    lines = wrap(ImageDraw.Draw(Image.new("RGB", (1, 1))), long_label, label_font(14), 64)
    assert len(lines) > 1 and "".join(lines) == long_label
    z = row_of_grids([grid, grid], ["Z: 1", "Z: 2"])
    assert z.width == 2 * grid.width and z.height > grid.height


def test_prompt_matrix_combinations_and_labels():
    parts, prompts = matrix_prompts("a cat|hat|scarf", False, "comma")
    assert prompts == ["a cat", "a cat, hat", "a cat, scarf", "a cat, hat, scarf"]
    assert matrix_prompts("a cat|hat", True, "space")[1] == ["a cat", "hat a cat"]
    columns, rows = matrix_labels(parts)
    assert [[(label.text, label.active) for label in column] for column in columns] == [[("hat", False)],
                                                                                          [("hat", True)]]
    assert [[(label.text, label.active) for label in row] for row in rows] == [[("scarf", False)],
                                                                               [("scarf", True)]]


def test_prompts_from_file_lines():
    assert parse_line('--prompt "a red circle" on white --negative_prompt "blurry" --steps 20 --seed 5') == {
        "prompt": "a red circle on white", "negative_prompt": "blurry", "steps": 20, "seed": 5}
    assert parse_line("--sampler_name k_euler_a --cfg_scale 4.5")["sampler_name"] == "Euler a"
    assert read_lines("a blue square\n\n  --prompt x --width 64\n") == [{"prompt": "a blue square"},
                                                                      {"prompt": "x", "width": 64}]
    with pytest.raises(UserInputError, match="--colour"):
        parse_line("--prompt x --colour red")
    with pytest.raises(UserInputError, match="--steps"):
        parse_line("--steps many")
