"""The Train tab builds, its form maps to kohya options, and presets round-trip through JSON files."""
from __future__ import annotations

import json

import gradio as gr
import pytest

from scripts.eval_demo_model import demo_runtime
from webui.errors import UserInputError
from webui.training.config import config_from_dict
from webui.training.presets import BUILTIN_PRESETS, load_preset, preset_names, save_preset
from webui.ui.train_tab import FIELDS, _default, build_train, form_to_options


def test_form_values_become_kohya_options(tmp_path):
    values = [_default(name) for name, _, _ in FIELDS]
    named = dict(zip((name for name, _, _ in FIELDS), range(len(FIELDS)), strict=True))
    values[named["train_data_dir"]] = str(tmp_path)
    values[named["conv_dim"]] = 4
    values[named["max_train_epochs"]] = 0  # 0 = not set: max_train_steps applies
    options = form_to_options(values, "demo-shapes", "zkstar --w 64 --h 64\n", tmp_path)
    assert options["network_args"] == ["conv_dim=4", "conv_alpha=1"] and "max_train_epochs" not in options
    assert open(options["sample_prompts"], encoding="utf-8").read().startswith("zkstar --w 64")
    config = config_from_dict(options)
    assert config.network_dim == 4 and config.network_arg("conv_dim") == "4" and config.max_train_steps == 1600


def test_presets_round_trip_and_builtins_are_valid(tmp_path):
    for name, values in BUILTIN_PRESETS.items():
        assert config_from_dict({"pretrained_model_name_or_path": "x", **values}).output_name == "last", name
    save_preset(tmp_path, "my style", {"network_dim": 32, "learning_rate": 2e-4})
    assert "my style" in preset_names(tmp_path)
    assert load_preset(tmp_path, "my style") == {"network_dim": 32, "learning_rate": 2e-4}
    assert json.loads((tmp_path / "training_presets" / "my style.json").read_text(encoding="utf-8"))
    with pytest.raises(UserInputError):
        save_preset(tmp_path, "../escape", {})
    with pytest.raises(UserInputError):
        save_preset(tmp_path, next(iter(BUILTIN_PRESETS)), {})


def test_train_tab_builds_with_the_app_runtime(tmp_path, demo_checkpoint):
    runtime = demo_runtime(demo_checkpoint, tmp_path)
    with gr.Blocks() as demo:
        build_train(runtime)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"train_start", "train_stop", "train_resume", "train_loss_plot", "train_samples", "train_network_dim",
            "train_preset"} <= ids
