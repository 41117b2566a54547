"""The demo model's training script runs end to end at a tiny scale; the app loads and samples what it writes."""
from __future__ import annotations

import json

import pytest

from scripts import train_demo_model
from scripts.eval_demo_model import demo_runtime
from webui.models.architectures import architecture_from_sidecar
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img

pytestmark = pytest.mark.slow


def test_a_tiny_run_writes_a_v_prediction_checkpoint_with_its_recipe(tmp_path, monkeypatch):
    monkeypatch.setattr(train_demo_model, "selection_score", lambda *args, **kwargs: {"fg64": 0.0})
    out = tmp_path / "demo-shapes.safetensors"
    train_demo_model.main(["--out", str(out), "--data-scale", "0.003", "--vae-steps", "2", "--steps", "3",
                           "--decoder-steps", "2", "--eval-every", "3", "--threads", "1",
                           "--prediction-type", "v_prediction", "--unet-levels", "4"])
    sidecar = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["prediction_type"] == "v_prediction"
    assert sidecar["unet"]["block_out_channels"] == [32, 64, 128, 128]
    assert sidecar["training"]["selected_step"] == 3 and sidecar["training"]["decoder_steps"] == 2
    assert "scheduler" not in sidecar  # SD's own schedule unless --beta-end says otherwise
    arch = architecture_from_sidecar(out)
    assert arch is not None and arch.prediction_type == "v_prediction"
    assert list(arch.unet_config()["block_out_channels"]) == [32, 64, 128, 128]
    runtime = demo_runtime(out, tmp_path / "scratch")
    request = make_request(Txt2ImgRequest, {"prompt": "a red circle on a white background", "steps": 2, "seed": 1,
                                            "width": 64, "height": 64, "checkpoint": out.stem, "save_images": False,
                                            "save_grid": False})
    assert txt2img(request, runtime).images[0].size == (64, 64)
