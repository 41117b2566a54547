"""Stop/resume equivalence and the bad inputs a user can cause: each a clear message and no half-written LoRA."""
from __future__ import annotations

import errno

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.training.conftest import make_star_dataset
from webui.errors import UserInputError
from webui.training.config import config_from_dict
from webui.training.dataset import DatasetError
from webui.training.train_network import main
from webui.training.trainer import train


def _config(checkpoint, data, out, **extra):
    values = {"pretrained_model_name_or_path": str(checkpoint), "train_data_dir": str(data), "output_dir": str(out),
              "output_name": "run", "resolution": "64", "network_dim": 2, "learning_rate": 1e-2,
              "max_train_steps": 6, "seed": 3, "save_precision": "float", "shuffle_caption": True,
              "caption_dropout_rate": 0.2, "noise_offset": 0.05, "flip_aug": True}
    values.update(extra)
    return config_from_dict(values)


def test_stop_then_resume_gives_the_uninterrupted_weights(tmp_path, demo_checkpoint):
    data = make_star_dataset(tmp_path / "img", count=2, repeats=2)
    straight = train(_config(demo_checkpoint, data, tmp_path / "a", lr_scheduler="cosine", lr_warmup_steps=2))
    assert straight.final is not None
    calls = {"n": 0}

    def stop_after_three_steps() -> bool:
        calls["n"] += 1
        return straight_steps(calls["n"])

    logs = tmp_path / "tb"
    first = train(_config(demo_checkpoint, data, tmp_path / "b", lr_scheduler="cosine", lr_warmup_steps=2,
                          logging_dir=str(logs)), should_stop=stop_after_three_steps)
    assert first.stopped and first.final is None and first.state is not None
    assert not list((tmp_path / "b").glob("*.safetensors"))
    resumed = train(_config(demo_checkpoint, data, tmp_path / "b", lr_scheduler="cosine", lr_warmup_steps=2,
                            resume=str(first.state), logging_dir=str(logs)))
    assert resumed.history.steps == list(range(1, 7))
    a, b = load_file(str(straight.final)), load_file(str(resumed.final))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert resumed.history.losses == straight.history.losses
    # --logging_dir: kohya's TensorBoard scalars in <logging_dir>/<output_name>/, one file per run, read back the
    # way TensorBoard reads them (the resumed run continues the stopped one's curve).
    assert len(list((logs / "run").glob("events.out.tfevents.*"))) == 2
    assert (logs / "loss.csv").is_file() and not (tmp_path / "b" / "log").exists()
    scalars = _tensorboard_scalars(logs / "run")
    assert set(scalars) == {"loss/current", "loss/average", "loss/epoch_average", "lr/unet", "lr/textencoder"}
    assert [step for step, _ in scalars["loss/current"]] == list(range(1, 7))
    assert [value for _, value in scalars["loss/current"]] == pytest.approx(resumed.history.losses, rel=1e-6)
    assert [value for _, value in scalars["loss/average"]] == pytest.approx(resumed.history.averages, rel=1e-6)
    assert [value for _, value in scalars["lr/unet"]] == pytest.approx([u for u, _ in resumed.history.lrs], rel=1e-6)
    epoch_averages = resumed.history.epoch_running_averages()
    assert [value for _, value in scalars["loss/epoch_average"]] == pytest.approx(epoch_averages, rel=1e-6)


def _tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def straight_steps(polls: int) -> bool:
    """The stop flag is polled once while reading the dataset per image, once per cached image and once before
    each step; stop before the fourth step (after caching two images, reading two)."""
    return polls > 2 + 3


def test_stop_during_caching_writes_nothing(tmp_path, demo_checkpoint):
    data = make_star_dataset(tmp_path / "img", count=3)
    polls = {"n": 0}

    def stop_in_cache() -> bool:
        polls["n"] += 1
        return polls["n"] > 4  # 3 polls while reading the dataset, then one image cached

    with pytest.raises(DatasetError, match="caching latents"):
        train(_config(demo_checkpoint, data, tmp_path / "out", cache_latents=True), should_stop=stop_in_cache)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.safetensors"))


def test_full_disk_while_saving_leaves_no_file(tmp_path, demo_checkpoint, monkeypatch):
    import webui.files

    data = make_star_dataset(tmp_path / "img", count=1, repeats=1)

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(webui.files.os, "fsync", no_space)
    with pytest.raises(UserInputError, match="disk full"):
        train(_config(demo_checkpoint, data, tmp_path / "out", max_train_steps=1))
    assert not list((tmp_path / "out").glob("run*.safetensors*"))


def test_network_weights_of_another_family_are_refused(tmp_path, demo_checkpoint):
    data = make_star_dataset(tmp_path / "img", count=1, repeats=1)
    foreign = tmp_path / "sdxl.safetensors"
    save_file({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(4, 640),
               "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 1280)}, str(foreign))
    with pytest.raises(UserInputError, match="another model family"):
        train(_config(demo_checkpoint, data, tmp_path / "out", network_weights=str(foreign)))


def test_cli_gives_clear_messages_for_bad_folders(tmp_path, demo_checkpoint, capsys):
    (tmp_path / "empty").mkdir()
    data = make_star_dataset(tmp_path / "img", count=1)
    base = ["--pretrained_model_name_or_path", str(demo_checkpoint), "--output_dir", str(tmp_path / "out"),
            "--resolution", "64"]
    assert main([*base, "--train_data_dir", str(tmp_path / "empty")]) == 2
    assert "No data found" in capsys.readouterr().err
    assert main([*base, "--train_data_dir", str(data / "2_zkstar")]) == 2
    assert f"choose its parent {data}" in capsys.readouterr().err
    assert main([*base, "--train_data_dir", str(data), "--optimizer_type", "Lion8bit"]) == 2
    assert "Lion8bit" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
