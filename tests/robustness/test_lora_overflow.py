"""LoRAs whose merge overflows (NaN/Inf weights) are taken out again, weights bit-identical, with a warning naming
them; a picture whose latents or pixels are NaN comes with a warning instead of being silently black."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.networks.tiny import kohya_lora, lora_targets, param_hash, tiny_models
from webui.networks import LoraApplyError, LoraPatcher, ModelNames, parse_lora
from webui.processing import network_stack

SMALL = {"prompt": "a red circle", "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler", "seed": 11}


def _lora(names: ModelNames, name: str, scale: float, seed: int = 3):
    tensors = kohya_lora(names, lora_targets(names)[:6], seed=seed)
    return parse_lora(name, {key: value * scale for key, value in tensors.items()}, {}, names)


@pytest.fixture()
def sd1():
    models = tiny_models(sdxl=False)
    return models, ModelNames.from_models(models)


@pytest.fixture()
def sd1_half(sd1):
    """The tiny models in fp16 (as on a GPU), their names, and the hash of their pristine weights."""
    models, names = sd1
    for model in models.values():
        model.half()
    return models, names, param_hash(models)


def test_a_lora_near_1e30_is_undone_and_named_while_the_good_one_stays(sd1):
    models, names = sd1
    pristine = param_hash(models)
    good, huge = _lora(names, "good", 1.0), _lora(names, "huge-1e30", 1e15, seed=5)  # up·down ≈ 1e30 per element
    patcher = LoraPatcher(models)
    patcher.apply([(good, 1.0, 1.0)])
    good_only = param_hash(models)
    report = patcher.apply([(good, 1.0, 1.0), (huge, 1.0, 1.0)])
    assert report.applied == ["good"]
    assert "NaN/Inf" in report.rejected["huge-1e30"]
    assert param_hash(models) == good_only  # the good LoRA's merge, bit for bit
    assert all(torch.isfinite(p).all() for model in models.values() for p in model.parameters())
    patcher.restore()
    assert param_hash(models) == pristine


def test_an_fp16_overflow_the_estimate_allows_is_caught_on_the_real_weights(sd1_half):
    models, names, pristine = sd1_half
    # A change of ~1e5 is fine in fp32 (and under the estimate's limit) but above fp16's largest value, 65504.
    lora = _lora(names, "too-strong-for-fp16", 150.0)
    assert lora.peak_delta < network_stack.MAX_WEIGHT_CHANGE
    patcher = LoraPatcher(models)
    report = patcher.apply([(lora, 1.0, 1.0)])
    assert report.applied == [] and "too-strong-for-fp16" in report.rejected
    assert param_hash(models) == pristine
    with pytest.raises(LoraApplyError, match="too-strong-for-fp16"):
        patcher.apply([(lora, 1.0, 1.0)], strict=True)
    assert param_hash(models) == pristine


def test_two_loras_that_only_overflow_together_are_both_named(sd1_half):
    models, names, pristine = sd1_half
    one, two = _lora(names, "one", 110.0, seed=7), _lora(names, "two", 110.0, seed=7)  # same sign: the sum doubles
    patcher = LoraPatcher(models)
    alone = patcher.apply([(one, 1.0, 1.0)])
    assert alone.applied == ["one"]
    patcher.restore()
    report = patcher.apply([(one, 1.0, 1.0), (two, 1.0, 1.0)])
    assert set(report.rejected) == {"one", "two"}
    assert param_hash(models) == pristine


def _pixels(answer) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0]))).convert("RGB"))


def test_the_api_skips_an_overflowing_lora_past_the_estimate_and_keeps_serving(client, monkeypatch):
    plain = client.post("/sdapi/v1/txt2img", json=SMALL)
    monkeypatch.setattr(network_stack, "MAX_WEIGHT_CHANGE", float("inf"))  # the estimate misses it: the check must not
    answer = client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": SMALL["prompt"] + " <lora:huge:1>"})
    assert answer.status_code == 200, answer.text[:300]
    warnings = json.loads(answer.json()["info"])["warnings"]
    assert any("huge" in w and "NaN/Inf" in w for w in warnings), warnings
    assert np.array_equal(_pixels(answer), _pixels(plain))  # drawn with untouched weights
    after = client.post("/sdapi/v1/txt2img", json=SMALL)
    assert np.array_equal(_pixels(after), _pixels(plain))


def test_a_black_picture_from_nan_latents_is_reported_with_the_lora(client, robust_runtime, monkeypatch):
    # ×1e7: the merged weights stay finite in fp32, but the UNet's activations overflow and the latents turn NaN.
    folder = robust_runtime.loras.roots[0]
    good = load_file(str(folder / "good.safetensors"))
    save_file({key: value * 1e7 for key, value in good.items()}, str(folder / "blows-up.safetensors"))
    monkeypatch.setattr(network_stack, "MAX_WEIGHT_CHANGE", float("inf"))
    assert client.post("/sdapi/v1/refresh-loras").status_code == 200
    answer = client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": SMALL["prompt"] + " <lora:blows-up:1>"})
    assert answer.status_code == 200, answer.text[:300]
    warnings = json.loads(answer.json()["info"])["warnings"]
    assert any("NaN/Inf" in w and "blows-up" in w and "UNet" in w for w in warnings), warnings
    assert _pixels(answer).max() == 0  # the picture is black, and now the user is told why
    assert client.post("/sdapi/v1/txt2img", json=SMALL).status_code == 200
