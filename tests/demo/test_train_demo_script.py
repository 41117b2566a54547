"""The demo model's training script runs end to end at a tiny scale; the app loads and samples what it writes."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

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
                           "--finetune-steps", "2", "--decoder-steps", "2", "--eval-every", "3", "--threads", "1",
                           "--prediction-type", "v_prediction", "--unet-levels", "4", "--settle-steps", "0",
                           "--pair-share", "0.5"])
    sidecar = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["prediction_type"] == "v_prediction"
    assert sidecar["unet"]["block_out_channels"] == [32, 64, 128, 128]
    assert sidecar["training"]["selected_step"] == 3 and sidecar["training"]["decoder_steps"] == 2
    (finetune,) = sidecar["training"]["finetunes"]
    assert finetune["selected_step"] == 2 and finetune["init_from"] == "" and finetune["word_loss"] > 0
    assert finetune["constant_lr"] and finetune["ema"] == 0.0
    assert sidecar["training"]["unet_mix"]["pair_share"] == 0.5 and "settles" not in sidecar["training"]

    # Stage 3b alone on that checkpoint keeps the file as it is when the fine-tune scores below its start.
    before = {suffix: out.with_suffix(suffix).read_bytes() for suffix in (".safetensors", ".json")}
    old = load_file(str(out))
    scores = iter([{"fg64": 0.5}, {"fg64": 0.25}])
    monkeypatch.setattr(train_demo_model, "selection_score", lambda *args, **kwargs: next(scores))
    train_demo_model.main(["--out", str(out), "--init-from", str(out), "--data-scale", "0.003",
                           "--finetune-steps", "2", "--eval-every", "2", "--threads", "1", "--settle-steps", "0"])
    assert next(scores, None) is None  # the start and the fine-tune's one evaluation were both scored
    assert {suffix: out.with_suffix(suffix).read_bytes() for suffix in before} == before

    # Stage 3c alone is kept whatever it scores (the selection does not see img2img), and changes only the UNet.
    scores = iter([{"fg64": 0.5}, {"fg64": 0.0}])
    monkeypatch.setattr(train_demo_model, "selection_score", lambda *args, **kwargs: next(scores))
    train_demo_model.main(["--out", str(out), "--init-from", str(out), "--data-scale", "0.003", "--threads", "1",
                           "--finetune-steps", "0", "--settle-steps", "2", "--settle-max-t", "10"])
    assert next(scores, None) is None
    sidecar = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    (settle,) = sidecar["training"]["settles"]
    assert settle["selected_step"] == 2 and settle["max_t"] == 10 and settle["init_from"] == out.name
    assert settle["plain"] and settle["mismatch"] == 0.3 and settle["native_weight"] == 3.0
    assert settle["train_text_encoder"] is False
    assert len(sidecar["training"]["finetunes"]) == 1  # --finetune-steps 0 adds no 3b record
    after = load_file(str(out))
    for key, changed in (("first_stage_model.decoder.conv_out.weight", False),
                         ("cond_stage_model.transformer.text_model.final_layer_norm.weight", False),
                         ("cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", False),
                         ("model.diffusion_model.out.2.weight", True)):
        assert torch.equal(after[key], old[key]) is not changed, key
    arch = architecture_from_sidecar(out)
    assert arch is not None and arch.prediction_type == "v_prediction"
    assert list(arch.unet_config()["block_out_channels"]) == [32, 64, 128, 128]
    runtime = demo_runtime(out, tmp_path / "scratch")
    request = make_request(Txt2ImgRequest, {"prompt": "a red circle on a white background", "steps": 2, "seed": 1,
                                            "width": 64, "height": 64, "checkpoint": out.stem, "save_images": False,
                                            "save_grid": False})
    assert txt2img(request, runtime).images[0].size == (64, 64)
