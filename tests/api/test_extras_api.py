"""Extras (upscaling) and the upscaler lists through webuiapi: sizes, kept infotext, errors."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.api.server import SMALL

pytestmark = pytest.mark.e2e


def test_extra_single_image_upscales_and_keeps_the_infotext(api):
    source = api.txt2img(prompt="a red circle", seed=11, **SMALL).image
    result = api.extra_single_image(source, upscaler_1="Lanczos", upscaling_resize=2)
    assert result.image.size == (128, 128)
    assert result.image.info["parameters"] == source.info["parameters"]
    assert result.image.info["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"
    assert "Postprocess upscaler: Lanczos" in result.info  # html_info


def test_extra_batch_images_upscales_each(api):
    images = [Image.new("RGB", (20, 10), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    result = api.extra_batch_images(images, name_list=["wide.png", "square.png"], upscaler_1="Nearest",
                                    upscaling_resize=3)
    # A1111 rounds an "upscale by" target down to a multiple of 8: 60x30 becomes 56x24
    assert [image.size for image in result.images] == [(56, 24), (24, 24)]
    assert result.images[1].convert("RGB").getpixel((5, 5)) == (0, 0, 255)


def test_extras_mistakes_are_4xx(api):
    image = Image.new("RGB", (16, 16))
    from webuiapi import raw_b64_img

    post = lambda body: api.session.post(f"{api.baseurl}/extra-single-image", json=body)  # noqa: E731
    response = post({"image": raw_b64_img(image), "upscaler_1": "Nonexistent 4x"})
    assert response.status_code == 400 and "Nonexistent 4x" in response.json()["detail"]
    assert post({"image": raw_b64_img(image), "upscaler_1": "Lanczos", "gfpgan_visibility": 0.5}).status_code == 422
    assert post({"image": "***", "upscaler_1": "Lanczos"}).status_code == 422


def test_upscaler_lists(api):
    names = [u["name"] for u in api.get_upscalers()]
    assert names[:3] == ["None", "Lanczos", "Nearest"]
    assert "Latent (bicubic antialiased)" in [m["name"] for m in api.get_latent_upscale_modes()]
