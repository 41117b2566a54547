"""img2img, inpainting with a mask, hires fix and styles through webuiapi against the real server."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.api.server import SMALL

pytestmark = pytest.mark.e2e


def _init_image(size=(96, 80)) -> Image.Image:
    image = Image.new("RGB", size, (30, 60, 200))
    ImageDraw.Draw(image).ellipse((20, 15, 70, 65), fill=(220, 40, 40))
    return image


def _mask(size=(64, 64)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, (24, 24, 40, 40))
    return mask


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_img2img_resizes_and_writes_its_infotext(api):
    result = api.img2img(images=[_init_image()], prompt="a green square", seed=77, denoising_strength=0.5, **SMALL)
    image = result.image
    assert image.size == (64, 64)
    text = image.info["parameters"]
    assert text.startswith("a green square\n")
    for part in ("Seed: 77,", "Size: 64x64", "Denoising strength: 0.5", "Steps: 4,"):
        assert part in text
    assert result.info["infotexts"] == [text]
    assert result.json["parameters"]["init_images"] is None  # echoed only with include_init_images
    resized = np.asarray(_init_image().resize((64, 64), Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(np.asarray(image).astype(int) - resized).mean() > 1  # it did generate


def test_inpaint_changes_only_the_masked_area_with_api_defaults(api):
    init = _init_image((64, 64))
    response = api.session.post(f"{api.baseurl}/img2img", json={
        "init_images": [_b64(init)], "mask": _b64(_mask()), "prompt": "a yellow star", "seed": 8, "steps": 4,
        "width": 64, "height": 64, "sampler_name": "Euler"})
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    text = info["infotexts"][0]
    # the API's inpainting defaults: only masked, padding 0, masked content "fill"; strength 0.75
    for part in ("Inpaint area: Only masked", "Masked area padding: 0", "Masked content: fill", "Mask blur: 4",
                 "Denoising strength: 0.75"):
        assert part in text
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(response.json()["images"][0]))).convert("RGB")).astype(int)
    original = np.asarray(init).astype(int)
    far = np.ones((64, 64), bool)
    far[12:52, 12:52] = False  # well outside the 16 px square plus the blur
    assert np.array_equal(out[far], original[far])
    assert np.abs(out[28:36, 28:36] - original[28:36, 28:36]).mean() > 5


def test_inpaint_through_webuiapi_with_a_mask_image(api):
    init = _init_image((64, 64))
    result = api.img2img(images=[init], mask_image=_mask(), prompt="a yellow star", seed=9, inpainting_fill=1,
                         **SMALL)
    assert result.image.size == (64, 64)
    text = result.image.info["parameters"]
    # "original" is what a reader assumes when the key is missing, so it is left out (as A1111 does)
    assert "Inpaint area: Only masked" in text and "Masked content" not in text
    out = np.asarray(result.image.convert("RGB")).astype(int)
    assert np.array_equal(out[:8], np.asarray(init).astype(int)[:8])


def test_img2img_bad_images_are_4xx(api):
    post = lambda body: api.session.post(f"{api.baseurl}/img2img", json={**SMALL, **body})  # noqa: E731
    assert post({"init_images": ["%%% not base64"]}).status_code == 422
    assert post({"init_images": [_b64(Image.new("RGB", (4104, 8)))]}).status_code == 413
    response = post({"init_images": []})
    assert response.status_code == 422 and "init_images" in response.json()["detail"]
    response = post({"init_images": [_b64(_init_image())], "mask": "nope!"})
    assert response.status_code == 422 and "mask" in response.json()["detail"]


def test_hires_fix_doubles_the_size(api):
    result = api.txt2img(prompt="a red circle", seed=4, enable_hr=True, hr_scale=2, hr_upscaler="Latent",
                         hr_second_pass_steps=2, denoising_strength=0.5, **SMALL)
    assert result.image.size == (128, 128)
    text = result.image.info["parameters"]
    assert "Hires upscale: 2" in text and "Hires upscaler: Latent" in text and "Denoising strength: 0.5" in text


def test_unknown_hires_upscaler_is_400(api):
    response = api.session.post(f"{api.baseurl}/txt2img", json={**SMALL, "enable_hr": True, "hr_upscaler": "Bogus"})
    assert response.status_code == 400 and "Bogus" in response.json()["detail"]


def test_styles_are_listed_and_applied(api, server):
    from webui.processing.styles import PromptStyle, StyleStore

    api.get_prompt_styles()  # the server creates styles.csv from the shipped defaults
    StyleStore(server.root / "data" / "styles.csv").save(PromptStyle("api-watercolor", "{prompt}, watercolor", "ugly"))
    assert {"name": "api-watercolor", "prompt": "{prompt}, watercolor", "negative_prompt": "ugly"} in \
        api.get_prompt_styles()
    result = api.txt2img(prompt="a red circle", styles=["api-watercolor"], seed=2, **SMALL)
    assert result.image.info["parameters"].startswith("a red circle, watercolor\nNegative prompt: ugly\n")
    assert result.info["styles"] == ["api-watercolor"] and result.info["prompt"] == "a red circle"
    assert result.info["all_prompts"] == ["a red circle, watercolor"]
    response = api.session.post(f"{api.baseurl}/txt2img", json={**SMALL, "styles": ["no such style"]})
    assert response.status_code == 400 and "no such style" in response.json()["detail"]


def test_img2img_takes_fields_from_a_txt2img_infotext_without_its_hires_keys(api):
    infotext = ("a blue circle\nNegative prompt: text\nSteps: 3, Sampler: Euler, CFG scale: 5, Seed: 12, Size: 64x64, "
                "Denoising strength: 0.4, Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent")
    response = api.session.post(f"{api.baseurl}/img2img", json={
        "init_images": [_b64(_init_image((64, 64)))], "infotext": infotext, "width": 64, "height": 64})
    assert response.status_code == 200, response.text
    text = json.loads(response.json()["info"])["infotexts"][0]
    assert text.startswith("a blue circle\nNegative prompt: text\n")
    for part in ("Steps: 3,", "Seed: 12,", "CFG scale: 5", "Denoising strength: 0.4"):
        assert part in text
    assert "Hires" not in text
