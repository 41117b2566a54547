"""Hires fix end to end: every latent mode and image upscaler reaches the target size; keys, prompts, LoRAs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from tests.demo.analyser import analyse
from tests.helpers.demo_fixtures import demo_runtime_fixture, one_thread  # noqa: F401 (autouse fixture)
from tests.helpers.tiny_models import build_tiny_checkpoint
from tests.networks.tiny import kohya_lora, lora_targets
from webui.errors import UserInputError
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing import model_calls
from webui.processing.images import to_tensor
from webui.processing.infotext import parse_infotext
from webui.processing.infotext_request import request_from_infotext
from webui.processing.jobs import JobState
from webui.processing.model_calls import decode_latents, encode_images, to_pil
from webui.processing.png_info import read_png_parameters
from webui.processing.prompt_conds import ScheduleEntry, plan_prompt
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img
from webui.processing.upscale import LATENT_UPSCALE_MODES

pytestmark = pytest.mark.e2e

RED = "a red circle on a white background"


runtime = demo_runtime_fixture("hires")


def hires(runtime, **fields):
    # Few steps keep the size/keys tests fast; the picture-content tests ask for the 20/10 the demo model needs.
    base = dict(prompt=RED, steps=4, sampler_name="Euler a", width=64, height=64, seed=3, save_images=False,
                enable_hr=True, hr_second_pass_steps=2, denoising_strength=0.5)
    base.update(fields)
    return txt2img(make_request(Txt2ImgRequest, base), runtime)


@pytest.mark.parametrize("upscaler", [*LATENT_UPSCALE_MODES, "Lanczos", "Nearest", "None"])
def test_every_upscaler_reaches_the_target_size(runtime, upscaler):
    result = hires(runtime, hr_upscaler=upscaler)
    image = result.images[0]
    assert image.size == (128, 128)
    assert np.asarray(image, dtype=float).std() > 10  # a picture, not a flat or broken decode
    assert f"Hires upscaler: {upscaler}" in result.infotexts[0]


def _small(result):
    return analyse(result.images[0].resize((64, 64), Image.Resampling.LANCZOS))


def test_second_pass_keeps_the_picture_and_follows_the_hires_prompt(runtime):
    kept = _small(hires(runtime, steps=20, hr_second_pass_steps=10, hr_upscaler="Latent"))
    assert (kept.foreground, kept.background, kept.shape) == ("red", "white", "circle"), kept
    redrawn = _small(hires(runtime, steps=20, hr_second_pass_steps=10, hr_upscaler="Lanczos", denoising_strength=0.9,
                           hr_prompt="a blue circle on a white background"))
    red, green, blue = redrawn.foreground_rgb
    assert redrawn.background == "white" and blue > red + 80 and blue > green + 80, redrawn


@pytest.mark.parametrize("resize, size", [((96, 160), (96, 160)), ((128, 0), (128, 128)), ((0, 80), (80, 80))])
def test_resize_to_covers_then_crops(runtime, resize, size):
    result = hires(runtime, hr_resize_x=resize[0], hr_resize_y=resize[1], hr_upscaler="Latent (bicubic)")
    assert result.images[0].size == size
    text = result.infotexts[0]
    assert f"Hires resize: {resize[0]}x{resize[1]}" in text and "Hires upscale:" not in text


def test_second_pass_runs_the_hires_steps(runtime):
    totals = []
    job = JobState(on_step=lambda state: totals.append((state.job_no, state.sampling_steps)))
    request = make_request(Txt2ImgRequest, dict(prompt=RED, steps=6, sampler_name="Euler", width=64, height=64,
                                                seed=1, save_images=False, enable_hr=True, hr_second_pass_steps=3,
                                                denoising_strength=0.3))
    txt2img(request, runtime, job)
    assert [t for t in totals if t[0] == 0] == [(0, 6)] * 6
    assert [t for t in totals if t[0] == 1] == [(1, 3)] * 3  # exactly the hires steps, whatever the strength
    assert job.job_count == 2


def test_infotext_keys_and_round_trip(runtime):
    result = hires(runtime, hr_scale=1.5, hr_prompt="a blue circle on a white background",
                   hr_sampler_name="Euler", hr_scheduler="Karras", save_images=True)
    text, _ = read_png_parameters(Image.open(result.paths[0]))
    assert text == result.infotexts[0]
    params = parse_infotext(text)
    assert params["Size"] == "64x64" and params["Denoising strength"] == 0.5
    assert params["Hires upscale"] == 1.5 and params["Hires steps"] == 2 and params["Hires upscaler"] == "Latent"
    assert params["Hires prompt"] == "a blue circle on a white background" and params["Hires sampler"] == "Euler"
    assert params["Hires schedule type"] == "Karras" and "Hires negative prompt" not in text
    assert result.images[0].size == (96, 96)
    again = request_from_infotext(text, save_images=False)
    assert again.enable_hr and again.hr_scale == 1.5 and again.hr_second_pass_steps == 2
    second = txt2img(again, runtime)
    assert np.array_equal(np.asarray(second.images[0]), np.asarray(result.images[0]))


def test_zero_strength_is_a_plain_upscale(runtime):
    result = hires(runtime, denoising_strength=0.0, hr_upscaler="Lanczos")
    first = txt2img(make_request(Txt2ImgRequest, dict(prompt=RED, steps=4, sampler_name="Euler a", width=64,
                                                      height=64, seed=3, save_images=False)), runtime).images[0]
    upscaled = first.resize((128, 128), Image.Resampling.LANCZOS)
    components, device = runtime.models.loaded.components, runtime.models.device
    with torch.no_grad():
        round_trip = to_pil(decode_latents(components, encode_images(components, to_tensor([upscaled]), device),
                                           device))[0]
    mse = ((np.asarray(result.images[0], dtype=float) - np.asarray(round_trip, dtype=float)) ** 2).mean()
    assert 10 * np.log10(255**2 / max(mse, 1e-10)) > 40  # the upscale through the VAE, nothing redrawn


def test_unknown_upscaler_is_refused_before_sampling(runtime):
    steps = []
    with pytest.raises(UserInputError, match=r"Unknown hires upscaler 'Wobble'.*Latent \(nearest-exact\).*Lanczos"):
        txt2img(make_request(Txt2ImgRequest, dict(prompt=RED, steps=2, width=64, height=64, enable_hr=True,
                                                  hr_upscaler="Wobble", save_images=False)), runtime,
                JobState(on_step=lambda s: steps.append(s)))
    assert steps == []


@pytest.mark.parametrize("fields", [dict(width=4096, hr_scale=4.0), dict(hr_resize_x=32, hr_resize_y=32)])
def test_impossible_hires_sizes_are_refused(runtime, fields):
    with pytest.raises(UserInputError, match="each side must be between 64 and 8192"):
        txt2img(make_request(Txt2ImgRequest, dict(prompt=RED, steps=2, height=64, enable_hr=True,
                                                  save_images=False, **{"width": 64, **fields})), runtime)


def test_big_vae_passes_are_tiled(runtime, monkeypatch):
    calls = []
    vae = runtime.models.load().components.vae
    monkeypatch.setattr(model_calls, "VAE_TILING_PIXELS", 100 * 100)
    original = type(vae).enable_tiling
    monkeypatch.setattr(type(vae), "enable_tiling", lambda self, *a, **k: (calls.append(1), original(self, *a, **k)))
    result = hires(runtime, hr_upscaler="Lanczos")
    assert result.images[0].size == (128, 128)
    assert len(calls) >= 2  # the decode before the upscaler and the re-encode after it, at 128x128
    assert not vae.use_tiling  # left as it was


def test_prompt_editing_switches_on_the_hires_timeline(runtime):
    # [red:blue:1.0]: red for the whole first pass (1.0 · 20 steps), blue from hires step int(0 · 10) = 0 on.
    result = hires(runtime, prompt="a [red:blue:1.0] circle on a white background", steps=20,
                   hr_second_pass_steps=10, hr_upscaler="Lanczos", denoising_strength=0.9)
    red, green, blue = _small(result).foreground_rgb
    assert blue > red + 80 and blue > green + 80, _small(result)
    first = txt2img(make_request(Txt2ImgRequest, dict(prompt="a [red:blue:1.0] circle on a white background",
                                                      steps=20, sampler_name="Euler a", width=64, height=64, seed=3,
                                                      save_images=False)), runtime)
    assert analyse(first.images[0]).foreground == "red"


def test_hires_prompt_editing_uses_the_hires_timeline():
    plan = plan_prompt("[cat:dog:25]", 20, 10)
    assert plan.parts[0].schedule == (ScheduleEntry(5, "cat"), ScheduleEntry(10, "dog"))
    fraction = plan_prompt("[cat:dog:1.5]", 20, 10)
    assert fraction.parts[0].schedule == (ScheduleEntry(5, "cat"), ScheduleEntry(10, "dog"))


@pytest.fixture(scope="module")
def lora_runtime(tmp_path_factory):
    root = tmp_path_factory.mktemp("hires-lora")
    for arch in ("sd1", "sd1-inpaint"):
        build_tiny_checkpoint(arch, root / "ckpt" / f"tiny-{arch}.safetensors")
    folders = Folders(checkpoints=root / "ckpt", vae=root / "VAE", lora=(root / "Lora",), embeddings=root / "emb",
                      outputs=root / "out", data=root)
    runtime = build_runtime(folders, device_config(device="cpu"), hashing=False)
    names = runtime.models.load("tiny-sd1").lora_names()
    (root / "Lora").mkdir(parents=True)
    tensors = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=1)
    save_file({k: v * 5 for k, v in tensors.items()}, str(root / "Lora" / "ink.safetensors"))
    return runtime


def _tiny(runtime, **fields):
    base = dict(prompt="a cat", steps=3, sampler_name="Euler", width=64, height=64, seed=2, save_images=False,
                enable_hr=True, hr_scale=1.5, denoising_strength=0.6, checkpoint="tiny-sd1")
    base.update(fields)
    result = txt2img(make_request(Txt2ImgRequest, base), runtime)
    return np.asarray(result.images[0]).astype(int), result


def test_lora_in_the_hires_prompt_applies_in_the_second_pass(lora_runtime):
    plain, _ = _tiny(lora_runtime)
    with_lora, result = _tiny(lora_runtime, hr_prompt="a cat <lora:ink:1>")
    assert result.warnings == []
    assert np.abs(with_lora - plain).mean() > 1.0
    assert 'Lora hashes: "ink: ' in result.infotexts[0]
    # The first pass did not carry it: the same request without hires matches a plain run's first pass.
    no_hr_plain, _ = _tiny(lora_runtime, enable_hr=False)
    no_hr_lora, _ = _tiny(lora_runtime, enable_hr=False, hr_prompt="a cat <lora:ink:1>")
    assert np.array_equal(no_hr_plain, no_hr_lora)
    again, _ = _tiny(lora_runtime)
    assert np.array_equal(again, plain)  # and the LoRA was taken off again


def test_nine_channel_model_hires(lora_runtime):
    image, _ = _tiny(lora_runtime, checkpoint="tiny-sd1-inpaint", hr_upscaler="Lanczos")
    assert image.shape == (96, 96, 3) and image.std() > 0.5
