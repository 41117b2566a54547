"""Per-image result records and the sampler a request resolves once: what adapters and scripts build on."""
from __future__ import annotations

import pytest
from PIL import Image

from webui.errors import UserInputError
from webui.processing.request import Img2ImgRequest, InpaintingFill, ResizeMode, Txt2ImgRequest, make_request
from webui.processing.results import GenerationResult, ImageResult


def _record(seed: int, path: str | None = None) -> ImageResult:
    return ImageResult(Image.new("RGB", (8, 8), (seed, 0, 0)), f"text {seed}", seed, seed + 100, "a cat", "",
                       path, {"Seed": seed})


def test_lists_are_views_of_the_records_in_image_order():
    result = GenerationResult(items=[_record(1, "/o/1.png"), _record(2), _record(3, "/o/3.png")])
    assert result.seeds == [1, 2, 3] and result.subseeds == [101, 102, 103]
    assert result.infotexts == ["text 1", "text 2", "text 3"]
    assert [image.getpixel((0, 0))[0] for image in result.images] == [1, 2, 3]
    assert result.paths == ["/o/1.png", "/o/3.png"]  # only the images that were saved have a file
    with pytest.raises(AttributeError):
        result.seeds = [9]  # type: ignore[misc]  # read-only: the records are the one source


def test_extend_gathers_images_warnings_and_interruption():
    total = GenerationResult(items=[_record(1)], warnings=["first"])
    total.extend(GenerationResult(items=[_record(2)], warnings=["second"], interrupted=True))
    assert total.seeds == [1, 2] and total.warnings == ["first", "second"] and total.interrupted


def test_request_resolves_sampler_names_once_and_copies_follow_their_own_names():
    request = Txt2ImgRequest(prompt="a cat", sampler_name="k_euler_a", seed=5, steps=4, width=64, height=64,
                             cfg_scale=5.0)
    assert (request.sampler.name, request.schedule.name) == ("Euler a", "automatic")
    assert request.hires_sampler is request.sampler  # empty hr names: the first pass's
    other = request.model_copy(update={"sampler_name": "DPM++ 2M", "scheduler": "Karras"})
    assert (other.sampler.name, other.schedule.name) == ("DPM++ 2M", "karras")
    assert request.sampler.name == "Euler a"
    hires = Txt2ImgRequest(sampler_name="Euler a", hr_sampler_name="DDIM")
    assert (hires.sampler.name, hires.hires_sampler.name) == ("Euler a", "DDIM")
    with pytest.raises(UserInputError, match="Euler Turbo"):
        make_request(Txt2ImgRequest, {"sampler_name": "Euler Turbo"})


def test_img2img_codes_are_enums_with_a1111_values_and_ints_still_work():
    request = make_request(Img2ImgRequest, {"init_images": [Image.new("RGB", (8, 8))], "resize_mode": 2,
                                            "inpainting_fill": 3})
    assert request.resize_mode is ResizeMode.RESIZE_AND_FILL and request.resize_mode == 2
    assert request.inpainting_fill is InpaintingFill.LATENT_NOTHING
    assert Img2ImgRequest.model_fields["inpainting_fill"].default is InpaintingFill.ORIGINAL
