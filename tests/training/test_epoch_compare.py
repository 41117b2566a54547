"""Train → Run's "Compare epochs (X/Y/Z)": epoch files picked by kohya's names, and the txt2img X/Y/Z form filled."""
from __future__ import annotations

import random

import gradio as gr
import pytest
import torch
from safetensors.torch import save_file

from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from webui.errors import UserInputError
from webui.scripts.axes import AxisContext
from webui.scripts.xyz import XyzArgs, read_axis
from webui.training.outputs import epoch_file_name, epoch_names
from webui.ui.epoch_compare import plan_comparison, prompt_with_lora

RUN = "pet"
EPOCHS = (1, 2, 10)
EXPECTED = ["pet-000001", "pet-000002", "pet-000010", "pet"]


def test_epoch_names_follow_kohya_file_names_sorted_with_the_final_file_last():
    names = [epoch_file_name(RUN, e).removesuffix(".safetensors") for e in (10, 1, 2)] + [
        RUN, epoch_file_name(RUN, step=500).removesuffix(".safetensors"), "petal-000001", "pet-x", "other", "pet-00001"]
    random.Random(3).shuffle(names)
    assert epoch_names(RUN, names) == EXPECTED
    assert epoch_names(RUN, ["pet-000003", "pet-000001"]) == ["pet-000001", "pet-000003"]  # run still going
    assert epoch_names("pet", ["petal", "other"]) == []


def test_prompt_gets_the_tag_and_trigger_once_before_other_loras():
    files = ["pet-000001", "pet"]
    assert prompt_with_lora("1girl, smile", "pet", "sks", files) == "sks, 1girl, smile, <lora:pet:1>"
    assert prompt_with_lora("", "pet", "", files) == "<lora:pet:1>"
    assert prompt_with_lora("sks, dog <lora:style:0.5>", "pet", "sks", files) == \
        "sks, dog <lora:pet:1> <lora:style:0.5>"
    kept = "sks, dog, <lora:pet-000001:0.7>"
    assert prompt_with_lora(kept, "pet", "sks", files) == kept


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from webui.ui.app import build_ui

    scratch = tmp_path_factory.mktemp("epochs")
    lora_dir = scratch / "Lora"
    lora_dir.mkdir()
    for name in [epoch_file_name(RUN, e) for e in EPOCHS] + [epoch_file_name(RUN), "petal-000001.safetensors"]:
        save_file({"lora_unet_x.alpha": torch.tensor(1.0)}, str(lora_dir / name))
    runtime = demo_runtime(DEFAULT_CHECKPOINT, scratch)
    return build_ui(runtime), runtime


def _compare_handler(demo: gr.Blocks):
    button = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "train_compare_epochs")
    return next(fn for fn in demo.fns.values() if any(target[0] == button._id for target in fn.targets))


def test_the_button_fills_txt2img_xyz_with_epochs_by_weights(app):
    demo, runtime = app
    handler = _compare_handler(demo)
    assert [component.elem_id for component in handler.inputs] == ["train_output_name", "train_trigger_word",
                                                                    "txt2img_prompt"]
    updates = dict(zip((component.elem_id for component in handler.outputs),
                       handler.fn(RUN, "sks", "a photo of a dog"), strict=True))
    assert updates["tabs"]["selected"] == "txt2img"
    assert updates["txt2img_script"] == "X/Y/Z plot"
    assert updates["txt2img_prompt"] == "sks, a photo of a dog, <lora:pet:1>"
    assert updates["txt2img_xyz_X_type"] == "LoRA file"
    assert updates["txt2img_xyz_X_values_dropdown"]["value"] == EXPECTED
    assert updates["txt2img_xyz_Y_type"] == "LoRA weight"
    assert updates["txt2img_xyz_Y_values"] == "0.4, 0.6, 0.8, 1.0"
    assert updates["txt2img_xyz_Z_type"] == "Nothing"

    # What the plot will read from those controls passes its own validation, in both value modes.
    context = AxisContext(runtime, "txt2img")
    for csv_mode in (False, True):
        args = XyzArgs(csv_mode=csv_mode)
        x = read_axis(context, "X", updates["txt2img_xyz_X_type"], updates["txt2img_xyz_X_values"],
                      updates["txt2img_xyz_X_values_dropdown"]["value"], args)
        assert x.values == EXPECTED
    y = read_axis(context, "Y", updates["txt2img_xyz_Y_type"], updates["txt2img_xyz_Y_values"], None, XyzArgs())
    assert y.values == [0.4, 0.6, 0.8, 1.0]
    fields = {"prompt": updates["txt2img_prompt"]}
    x.axis.apply(fields, "pet-000002", x.values, context)  # type: ignore[misc]
    y.axis.apply(fields, 0.6, y.values, context)  # type: ignore[misc]
    assert fields["prompt"] == "sks, a photo of a dog, <lora:pet-000002:0.6>"


def test_a_run_without_files_gives_a_clear_message(app):
    demo, runtime = app
    with pytest.raises(UserInputError, match="no-such-run"):
        plan_comparison(runtime, [None, "no-such-run"], "", "")
    with pytest.raises(gr.Error):
        _compare_handler(demo).fn("", "", "")
    # The current/last run comes first; a run whose files are gone gives way to the form's output name.
    assert plan_comparison(runtime, ["pet", "petal"], "", "").files == EXPECTED
    assert plan_comparison(runtime, ["deleted-run", "pet"], "", "").files == EXPECTED
