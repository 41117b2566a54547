"""Inpainting on the demo model and a tiny 9-channel model: what is outside the mask survives, inside is redrawn."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.demo_fixtures import demo_runtime_fixture, one_thread  # noqa: F401 (autouse fixture)
from tests.helpers.tiny_models import build_tiny_checkpoint
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.img2img import EMPTY_MASK_WARNING, img2img
from webui.processing.infotext_request import request_fields_from_infotext
from webui.processing.masking import blur_mask
from webui.processing.request import Img2ImgRequest, Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img
from webui.sampling.denoisers import MaskBlendDenoiser

pytestmark = pytest.mark.e2e

RED = "a red circle on a white background"
BLUE = "a blue square on a black background"


runtime = demo_runtime_fixture("inpaint")


@pytest.fixture(scope="module")
def picture(runtime):
    request = make_request(Txt2ImgRequest, dict(prompt=RED, steps=12, sampler_name="Euler a", width=64, height=64,
                                                seed=1, save_images=False))
    return txt2img(request, runtime).images[0]


def square_mask(size, box):
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def inpaint(runtime, init, mask, **fields):
    base = dict(init_images=[init], mask=mask, prompt=BLUE, steps=10, sampler_name="Euler a", cfg_scale=5.0,
                width=64, height=64, seed=5, denoising_strength=1.0, save_images=False)
    base.update(fields)
    return img2img(make_request(Img2ImgRequest, base), runtime)


def diff(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max(axis=-1)


def test_only_masked_keeps_everything_beyond_blur_and_padding(runtime, picture):
    big = picture.resize((128, 128), Image.Resampling.LANCZOS)
    mask = square_mask(big.size, (40, 40, 88, 88))
    result = inpaint(runtime, big, mask, inpaint_full_res=True, inpaint_full_res_padding=8, mask_blur=4)
    out = result.images[0]
    assert out.size == (128, 128)  # the crop goes back into the full picture
    changed = diff(out, big)
    untouched = np.asarray(blur_mask(mask, 4)) == 0
    assert changed[untouched].max() <= 1, changed[untouched].max()
    assert changed[:30].max() <= 1 and changed[:, 100:].max() <= 1  # beyond blur (10 px) and padding
    assert changed[50:78, 50:78].mean() > 40  # redrawn inside
    text = result.infotexts[0]
    assert "Mask blur: 4" in text and "Inpaint area: Only masked" in text and "Masked area padding: 8" in text


def test_whole_picture_blends_and_keeps_the_outside(runtime, picture):
    mask = square_mask(picture.size, (20, 20, 44, 44))
    result = inpaint(runtime, picture, mask, mask_blur=2)
    changed = diff(result.images[0], picture)
    blurred = np.asarray(blur_mask(mask, 2))
    assert changed[blurred == 0].max() <= 1
    # In the seam the original shows through with weight 1 - 2·blur (A1111's doubled overlay mask).
    assert (changed <= 2 * blurred.astype(int) + 1).all()
    assert changed[24:40, 24:40].mean() > 40
    assert "Inpaint area" not in result.infotexts[0]


def test_invert_repaints_the_outside_instead(runtime, picture):
    mask = square_mask(picture.size, (16, 16, 48, 48))
    result = inpaint(runtime, picture, mask, inpainting_mask_invert=1, mask_blur=0)
    changed = diff(result.images[0], picture)
    assert changed[16:48, 16:48].max() <= 1
    assert changed[:8].mean() > 20
    assert "Mask mode: Inpaint not masked" in result.infotexts[0]


@pytest.mark.parametrize("fill, name", [(0, "fill"), (2, "latent noise"), (3, "latent nothing")])
def test_masked_content_modes(runtime, picture, fill, name):
    mask = square_mask(picture.size, (16, 16, 48, 48))
    result = inpaint(runtime, picture, mask, inpainting_fill=fill, denoising_strength=0.8)
    changed = diff(result.images[0], picture)
    assert changed[np.asarray(blur_mask(mask, 4)) == 0].max() <= 1
    assert changed[24:40, 24:40].mean() > 20
    assert f"Masked content: {name}" in result.infotexts[0]
    fields = request_fields_from_infotext(result.infotexts[0], "img2img")
    assert fields["inpainting_fill"] == fill and fields["mask_blur"] == 4 and fields["inpaint_full_res"] is False


def test_a_mask_of_another_size_is_stretched_onto_the_picture(runtime, picture):
    small_mask = square_mask((32, 32), (0, 0, 16, 16))  # the top-left quarter, at half size
    result = inpaint(runtime, picture, small_mask, mask_blur=0)
    changed = diff(result.images[0], picture)
    assert changed[:32, :32].mean() > 20
    assert changed[34:, :].max() <= 1 and changed[:, 34:].max() <= 1


def test_empty_mask_with_only_masked_falls_back_to_img2img(runtime, picture):
    result = inpaint(runtime, picture, Image.new("L", picture.size, 0), inpaint_full_res=True,
                     denoising_strength=0.5)
    assert EMPTY_MASK_WARNING in result.warnings
    assert result.images[0].size == (64, 64) and "Inpaint area" not in result.infotexts[0]


def test_mask_blend_keeps_the_init_latent_outside_the_mask():
    init = torch.full((1, 4, 4, 4), 2.0)
    keep = torch.zeros(1, 1, 4, 4)
    keep[..., :2] = 1

    class Inner:
        def __call__(self, x, sigma, *, step=0):
            return torch.full_like(x, -1.0)

        def denoise_with_uncond(self, x, sigma, scale_multiplier=1.0, *, step=0):
            return self(x, sigma), torch.zeros_like(x)

    blended = MaskBlendDenoiser(Inner(), init, keep)(torch.zeros(1, 4, 4, 4), torch.ones(1))
    assert blended[..., :2].eq(2.0).all() and blended[..., 2:].eq(-1.0).all()
    guided, _ = MaskBlendDenoiser(Inner(), init, keep).denoise_with_uncond(torch.zeros(1, 4, 4, 4), torch.ones(1))
    assert torch.equal(guided, blended)


@pytest.fixture(scope="module")
def inpaint_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("nine")
    build_tiny_checkpoint("sd1-inpaint", root / "ckpt" / "tiny-inpaint.safetensors")
    folders = Folders(checkpoints=root / "ckpt", vae=root / "VAE", lora=(root / "Lora",), embeddings=root / "emb",
                      outputs=root / "out", data=root)
    return build_runtime(folders, device_config(device="cpu"), hashing=False)


@pytest.mark.parametrize("only_masked", [False, True])
def test_nine_channel_inpainting_model(inpaint_model, only_masked):
    rng = np.random.default_rng(3)
    init = Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    mask = square_mask(init.size, (32, 32, 64, 64))
    seen = []

    def spy(module, args, kwargs):
        seen.append(args[0].shape[1])

    runtime = inpaint_model
    runtime.models.load()
    unet = runtime.models.loaded.components.unet
    handle = unet.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        result = inpaint(runtime, init, mask, prompt="x", steps=3, width=64, height=64, mask_blur=2,
                         inpaint_full_res=only_masked, inpaint_full_res_padding=4, denoising_strength=0.9)
    finally:
        handle.remove()
    assert seen and set(seen) == {9}  # 4 latent + 1 mask + 4 masked-picture channels
    assert "Conditional mask weight: 1.0" in result.infotexts[0]
    out = result.images[0]
    assert out.size == ((96, 96) if only_masked else (64, 64))
    reference = init if only_masked else init.resize((64, 64), Image.Resampling.LANCZOS)
    changed = diff(out, reference)
    keep_exact = np.asarray(blur_mask(square_mask(init.size, (32, 32, 64, 64)), 2).resize(out.size)) == 0
    assert changed[keep_exact].max() <= 1
    assert changed[~keep_exact].mean() > 5
