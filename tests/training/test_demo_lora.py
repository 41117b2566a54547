"""The bundled demo LoRA (made by our trainer): its trigger draws stripes the demo model alone cannot."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scripts.eval_demo_model import demo_runtime
from scripts.make_demo_lora import OUTPUT_NAME, TRIGGER
from tests.training.stripes import is_striped, stripe_score
from webui.networks import LoraLibrary
from webui.paths import REPO_ROOT
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img

LORA_DIR = REPO_ROOT / "models" / "Lora"
SEEDS = tuple(range(1, 11))


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, demo_checkpoint):
    assert (LORA_DIR / f"{OUTPUT_NAME}.safetensors").is_file(), "the demo LoRA must be committed in models/Lora"
    base = demo_runtime(demo_checkpoint, tmp_path_factory.mktemp("demo-lora"))
    return dataclasses.replace(base, loras=LoraLibrary([LORA_DIR]))


def _images(runtime, prompt: str) -> list:
    request = make_request(Txt2ImgRequest, {
        "prompt": prompt, "steps": 20, "sampler_name": "Euler a", "cfg_scale": 7, "width": 64, "height": 64,
        "seed": SEEDS[0], "batch_size": len(SEEDS), "save_images": False, "save_grid": False})
    return txt2img(request, runtime).images


def test_trigger_draws_stripes_and_the_effect_grows_with_weight(runtime):
    base = _images(runtime, TRIGGER)
    half = _images(runtime, f"{TRIGGER} <lora:{OUTPUT_NAME}:0.5>")
    full = _images(runtime, f"{TRIGGER} <lora:{OUTPUT_NAME}:1>")
    assert sum(is_striped(image) for image in full) >= 0.8 * len(SEEDS)
    assert not any(is_striped(image) for image in base)
    scores = [float(np.mean([stripe_score(image) for image in images])) for images in (base, half, full)]
    assert scores[0] < scores[1] < scores[2], scores
    zero = _images(runtime, f"{TRIGGER} <lora:{OUTPUT_NAME}:0>")
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(zero, base, strict=True))


def test_demo_lora_card_has_metadata_trigger_and_preview(runtime):
    info = runtime.loras.info(OUTPUT_NAME)
    assert info.user.activation_text == TRIGGER and info.preview is not None
    assert info.metadata["ss_output_name"] == OUTPUT_NAME and info.metadata["ss_base_model_version"] == "sd_v1"
    assert info.metadata["ss_sd_model_name"] == "demo-shapes.safetensors"
