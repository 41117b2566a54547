"""Extras: A1111's single/batch upscale with the input's infotext kept and postprocess keys added."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from tests.helpers.upscaler_models import compact_model, save_model
from webui.errors import UserInputError
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.extras import ExtrasRequest, extras_batch, extras_single
from webui.processing.jobs import JobInterrupted, JobState
from webui.processing.png_info import exif_bytes_for, read_png_parameters
from webui.processing.request import make_request
from webui.processing.runtime import build_runtime

PARAMETERS = "a red fox, snow\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 42, Size: 64x48"


@pytest.fixture()
def runtime(tmp_path):
    root = tmp_path
    save_model(compact_model(scale=2, identity=True), root / "models" / "RealESRGAN" / "ident2x.pth")
    folders = Folders(checkpoints=root / "ckpt", vae=root / "VAE", lora=(root / "Lora",), embeddings=root / "emb",
                      outputs=root / "out", data=root,
                      upscalers=(root / "models" / "ESRGAN", root / "models" / "RealESRGAN"))
    return build_runtime(folders, device_config(device="cpu"), hashing=False)


def _picture(width: int = 64, height: int = 48, seed: int = 0, mode: str = "RGB") -> Image.Image:
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(array).convert(mode)


def _png_with_parameters(image: Image.Image, text: str = PARAMETERS) -> Image.Image:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_runtime_has_the_upscaler_library(runtime):
    assert runtime.upscalers.names() == ["ident2x"]


def test_scale_by_keeps_infotext_and_adds_postprocess_keys(runtime):
    source = _png_with_parameters(_picture())
    result = extras_single(ExtrasRequest(upscaler_1="Lanczos", upscaling_resize=2), source, runtime)
    assert result.image.size == (128, 96)
    assert result.parameters == PARAMETERS
    assert result.infotext == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"
    assert result.html_info == "<p>Postprocess upscale by: 2, Postprocess upscaler: Lanczos</p>"
    assert result.image.info["parameters"] == PARAMETERS
    assert result.image.info["postprocessing"] == result.infotext
    expected = np.asarray(_picture().resize((128, 96), Image.Resampling.LANCZOS))
    assert np.array_equal(np.asarray(result.image), expected)
    assert result.path is None


def test_jpeg_exif_infotext_is_kept(runtime):
    buffer = io.BytesIO()
    _picture().save(buffer, format="JPEG", exif=exif_bytes_for(PARAMETERS))
    result = extras_single(ExtrasRequest(upscaler_1="Nearest"), Image.open(buffer), runtime)
    assert result.parameters == PARAMETERS


def test_model_upscaler_by_name_gives_model_pixels(runtime):
    source = _picture(32, 24)
    result = extras_single(ExtrasRequest(upscaler_1="ident2x", upscaling_resize=4), source, runtime)
    expected = np.asarray(source).repeat(4, axis=0).repeat(4, axis=1)  # two passes of an exact 2x nearest
    assert np.array_equal(np.asarray(result.image), expected)
    assert result.infotext == "Postprocess upscale by: 4, Postprocess upscaler: ident2x"


def test_resize_to_with_crop_gives_exact_size(runtime):
    request = ExtrasRequest(resize_mode=1, upscaling_resize_w=100, upscaling_resize_h=100, upscaling_crop=True,
                            upscaler_1="Lanczos")
    result = extras_single(request, _picture(64, 48), runtime)
    assert result.image.size == (100, 100)
    assert result.infotext == ("Postprocess upscale to: 100x100, Postprocess crop to: 100x100, "
                               "Postprocess upscaler: Lanczos")
    # Centre crop of the cover (134x100 → 100x100): the middle column matches the uncropped cover's middle.
    cover = np.asarray(_picture(64, 48).resize((134, 100), Image.Resampling.LANCZOS))
    assert np.array_equal(np.asarray(result.image), cover[:, 17:117])


def test_resize_to_without_crop_keeps_the_aspect_ratio(runtime):
    request = ExtrasRequest(resize_mode=1, upscaling_resize_w=100, upscaling_resize_h=100, upscaling_crop=False,
                            upscaler_1="Lanczos")
    result = extras_single(request, _picture(64, 48), runtime)
    assert result.image.size == (128, 96)  # scale max(100/64, 100/48) = 2.083 → 133x100, rounded down to 8s
    assert "crop" not in result.infotext


def test_upscaler_none_leaves_the_image_alone(runtime):
    source = _png_with_parameters(_picture())
    result = extras_single(ExtrasRequest(upscaler_1="None", upscaler_2="Lanczos",
                                         extras_upscaler_2_visibility=1.0), source, runtime)
    assert np.array_equal(np.asarray(result.image), np.asarray(_picture()))
    assert result.infotext == "" and result.image.info == {"parameters": PARAMETERS}


def test_second_upscaler_is_blended(runtime):
    source = _picture(16, 16)
    request = ExtrasRequest(upscaler_1="Nearest", upscaler_2="Lanczos", extras_upscaler_2_visibility=0.25)
    result = extras_single(request, source, runtime)
    nearest = source.resize((32, 32), Image.Resampling.NEAREST)
    lanczos = source.resize((32, 32), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(result.image), np.asarray(Image.blend(nearest, lanczos, 0.25)))
    assert result.infotext.endswith("Postprocess upscaler: Nearest, Postprocess upscaler 2: Lanczos")


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "I;16", "LA"])
def test_odd_input_modes_become_rgb(runtime, mode):
    source = _picture(20, 10).convert(mode) if mode != "I;16" else Image.new("I;16", (20, 10), 65535)
    result = extras_single(ExtrasRequest(upscaler_1="Lanczos"), source, runtime)
    assert result.image.mode == "RGB" and result.image.size == (40, 16)
    if mode == "I;16":
        assert np.asarray(result.image).min() >= 254  # full-scale 16-bit white stays white, not clipped grey


def test_save_writes_into_extras_images_with_parameters(runtime):
    source = _png_with_parameters(_picture())
    result = extras_single(ExtrasRequest(upscaler_1="Lanczos"), source, runtime, save=True)
    path = runtime.folders.outputs / "extras-images" / "00000.png"
    assert result.path == str(path)
    saved = Image.open(path)
    assert saved.size == (128, 96)
    assert read_png_parameters(saved)[0] == PARAMETERS
    second = extras_single(ExtrasRequest(upscaler_1="Lanczos"), source, runtime, save=True)
    assert second.path.endswith("00001.png")


def test_batch_keeps_original_names_without_overwriting(runtime):
    images = [_png_with_parameters(_picture(seed=1)), _picture(seed=2), _picture(seed=3)]
    results = extras_batch(ExtrasRequest(upscaler_1="ident2x"), images, runtime,
                           names=["cat.png", "../dog.jpg", "cat.png"], save=True)
    assert [r.image.size for r in results] == [(128, 96)] * 3
    assert [r.parameters for r in results] == [PARAMETERS, None, None]
    folder = runtime.folders.outputs / "extras-images"
    assert sorted(p.name for p in folder.iterdir()) == ["cat-1.png", "cat.png", "dog.png"]
    assert np.array_equal(np.asarray(Image.open(folder / "dog.png")),
                          np.asarray(_picture(seed=2)).repeat(2, axis=0).repeat(2, axis=1))


def test_unknown_upscaler_lists_names(runtime):
    with pytest.raises(UserInputError, match="None, Lanczos, Nearest, ident2x"):
        extras_single(ExtrasRequest(upscaler_1="4x-UltraSharp"), _picture(), runtime)


def test_face_restoration_and_unknown_fields_are_refused():
    with pytest.raises(UserInputError, match="face restoration"):
        make_request(ExtrasRequest, {"gfpgan_visibility": 0.5})
    with pytest.raises(UserInputError, match="upscaler_3"):
        make_request(ExtrasRequest, {"upscaler_3": "Lanczos"})
    with pytest.raises(UserInputError, match="upscaling_resize"):
        make_request(ExtrasRequest, {"upscaling_resize": 0})
    assert make_request(ExtrasRequest, {"gfpgan_visibility": 0, "codeformer_visibility": 0}).upscaler_1 == "None"


def test_pixel_limit_refuses_big_inputs(runtime):
    with pytest.raises(UserInputError, match="above the limit"):
        extras_single(ExtrasRequest(upscaler_1="Lanczos"), _picture(64, 48), runtime, max_input_pixels=1000)


def test_empty_batch_is_an_error(runtime):
    with pytest.raises(UserInputError):
        extras_batch(ExtrasRequest(), [], runtime)


class _InterruptAt(JobState):
    """A job whose user presses Interrupt as image `at` of the batch starts."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def begin(self, job_no: int) -> None:
        super().begin(job_no)
        if job_no == self.at:
            self.interrupt()


@pytest.mark.parametrize("mode", [0, 1])
def test_interrupted_single_stops_before_the_model_runs(runtime, mode):
    # Scale to 128x96 (with crop) or scale by 2: both reach the model through the job's check.
    request = make_request(ExtrasRequest, dict(upscaler_1="ident2x", resize_mode=mode, upscaling_resize=2,
                                               upscaling_resize_w=128, upscaling_resize_h=96))
    with pytest.raises(JobInterrupted):
        extras_single(request, _picture(), runtime, job=_InterruptAt(0))
    assert extras_single(request, _picture(), runtime, job=JobState()).image.size == (128, 96)


@pytest.mark.parametrize("upscaler", ["ident2x", "Lanczos"])
def test_interrupted_batch_returns_the_images_finished_before(runtime, upscaler):
    request = make_request(ExtrasRequest, dict(upscaler_1=upscaler, upscaling_resize=2))
    pictures = [_picture(seed=seed) for seed in range(3)]
    job = _InterruptAt(1)
    results = extras_batch(request, pictures, runtime, job=job)
    assert len(results) == 1 and results[0].image.size == (128, 96)
    assert job.job_count == 3
    assert len(extras_batch(request, pictures, runtime, job=JobState())) == 3
