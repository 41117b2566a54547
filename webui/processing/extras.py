"""Extras tab / API: upscale one image or a batch with A1111's /extra-single-image fields, infotext kept."""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from webui.errors import UserInputError
from webui.processing.images import check_pixel_limit, normalize_image
from webui.processing.infotext import format_params_line
from webui.processing.jobs import JobInterrupted, JobState
from webui.processing.outputs import sanitize_filename_part, save_image
from webui.processing.png_info import read_png_parameters
from webui.processing.request import DEFAULT_MAX_INPUT_PIXELS
from webui.processing.runtime import Runtime
from webui.processing.upscale import upscale_by, upscale_image

EXTRAS_FOLDER = "extras-images"  # A1111's outdir_extras_samples, with no dated subfolder (no_prompt=True)
POSTPROCESSING_KEY = "postprocessing"  # A1111 keeps the extras text beside, not inside, `parameters`
EXTRAS_KEY = "extras"


class ExtrasResizeMode(IntEnum):
    """Extras' resize mode, A1111's values: scale by a factor, or to a width x height."""

    SCALE_BY = 0
    SCALE_TO = 1


class ExtrasRequest(BaseModel):
    """A1111's ExtrasBaseRequest fields (the image travels separately); face restoration is not offered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resize_mode: ExtrasResizeMode = ExtrasResizeMode.SCALE_BY  # by upscaling_resize, or to _w × _h
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(0.0, ge=0.0, le=1.0)
    codeformer_visibility: float = Field(0.0, ge=0.0, le=1.0)
    codeformer_weight: float = Field(0.0, ge=0.0, le=1.0)
    upscaling_resize: float = Field(2.0, ge=1.0, le=8.0)
    upscaling_resize_w: int = Field(512, ge=1, le=16384)
    upscaling_resize_h: int = Field(512, ge=1, le=16384)
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = Field(0.0, ge=0.0, le=1.0)
    upscale_first: bool = False  # only orders face restoration against upscaling in A1111; nothing to order here

    @field_validator("gfpgan_visibility", "codeformer_visibility")
    @classmethod
    def _no_face_restoration(cls, value: float) -> float:
        if value != 0:
            raise ValueError("face restoration (GFPGAN/CodeFormer) is not available; set it to 0")
        return value


@dataclass
class ExtrasResult:
    """One processed image: `infotext` is the postprocessing text, `parameters` the input's own infotext."""

    image: Image.Image
    infotext: str
    html_info: str
    parameters: str | None = None
    path: str | None = None
    info: dict[str, str] = field(default_factory=dict)


def plaintext_to_html(text: str) -> str:
    """A1111's plaintext_to_html: escaped lines joined with <br> inside one paragraph."""
    return "<p>" + "<br>\n".join(html.escape(line) for line in text.split("\n")) + "</p>"


def _number(value: float) -> float | int:
    # The UI slider gives 2, the API 2.0; both are written "2" as in A1111's UI-made infotexts.
    return int(value) if float(value).is_integer() else value


def _scale_for(request: ExtrasRequest, image: Image.Image) -> float:
    if request.resize_mode == ExtrasResizeMode.SCALE_TO:
        return max(request.upscaling_resize_w / image.width, request.upscaling_resize_h / image.height)
    return request.upscaling_resize


def _upscale_once(image: Image.Image, name: str, request: ExtrasRequest, runtime: Runtime,
                  check: Callable[[], None] | None) -> Image.Image:
    if request.resize_mode == ExtrasResizeMode.SCALE_TO and request.upscaling_crop:
        # Cover the target exactly, then centre-crop. (A1111 rounds the cover size down to a multiple of 8
        # and pastes it on a black canvas, which can leave black bands; covering first avoids them.)
        target_w, target_h = request.upscaling_resize_w, request.upscaling_resize_h
        scale = _scale_for(request, image)
        cover_w = max(target_w, math.ceil(image.width * scale - 1e-6))
        cover_h = max(target_h, math.ceil(image.height * scale - 1e-6))
        covered = upscale_image(image, name, cover_w, cover_h, runtime.upscalers, check)
        left, top = (cover_w - target_w) // 2, (cover_h - target_h) // 2
        return covered.crop((left, top, left + target_w, top + target_h))
    return upscale_by(image, name, _scale_for(request, image), runtime.upscalers, check)


def _postprocess(image: Image.Image, request: ExtrasRequest, runtime: Runtime,
                 check: Callable[[], None] | None) -> tuple[Image.Image, dict]:
    """A1111's postprocessing upscale script: keys are added in the order A1111 adds them."""
    info: dict[str, object] = {}
    if request.upscaler_1 in ("", "None"):
        return image, info  # A1111: no first upscaler means no upscaling at all (upscaler 2 is ignored too)
    if request.resize_mode == ExtrasResizeMode.SCALE_TO:
        info["Postprocess upscale to"] = f"{request.upscaling_resize_w}x{request.upscaling_resize_h}"
    else:
        info["Postprocess upscale by"] = _number(request.upscaling_resize)
    upscaled = _upscale_once(image, request.upscaler_1, request, runtime, check)
    if request.resize_mode == ExtrasResizeMode.SCALE_TO and request.upscaling_crop:
        info["Postprocess crop to"] = f"{upscaled.width}x{upscaled.height}"
    info["Postprocess upscaler"] = request.upscaler_1
    if request.upscaler_2 not in ("", "None") and request.extras_upscaler_2_visibility > 0:
        second = _upscale_once(image, request.upscaler_2, request, runtime, check)
        if second.mode != upscaled.mode:
            second = second.convert(upscaled.mode)
        upscaled = Image.blend(upscaled, second, request.extras_upscaler_2_visibility)
        info["Postprocess upscaler 2"] = request.upscaler_2
    return upscaled, info


def _process(request: ExtrasRequest, image: Image.Image, runtime: Runtime, *, save: bool, name: str | None,
             max_input_pixels: int, job: JobState | None) -> ExtrasResult:
    if not isinstance(image, Image.Image):
        raise UserInputError("extras needs an image")
    check_pixel_limit(image, max_input_pixels, name or "image")
    parameters, items = read_png_parameters(image)
    rgb = normalize_image(image, name=name or "image")
    result_image, info = _postprocess(rgb, request, runtime, job.check if job is not None else None)
    text = format_params_line(info)
    if result_image is rgb or result_image is image:
        result_image = result_image.copy()
    stored: dict[str, str] = {key: value for key, value in items.items() if isinstance(value, str)}
    if parameters:
        stored["parameters"] = parameters
    if text:
        stored[POSTPROCESSING_KEY] = text
        stored[EXTRAS_KEY] = text
    pil_info: dict[str | tuple[int, int], Any] = {key: value for key, value in stored.items()}  # PIL's key type
    result_image.info = pil_info
    path = None
    if save:
        path = str(_save(result_image, runtime, parameters, name))
    return ExtrasResult(result_image, text, plaintext_to_html(text), parameters, path, stored)


def _save(image: Image.Image, runtime: Runtime, parameters: str | None, name: str | None) -> Path:
    folder = runtime.folders.outputs / EXTRAS_FOLDER
    extension = runtime.settings.current.samples_format
    if name:
        # A1111's use_original_name_batch: a batch file keeps its own name (here never overwriting one).
        stem = sanitize_filename_part(Path(name).stem, replace_spaces=False) or "image"
        return save_image(image, folder, seed=None, infotext=parameters, pattern=stem, extension=extension,
                          add_number=False)
    return save_image(image, folder, seed=None, infotext=parameters, pattern="", extension=extension)


def extras_single(request: ExtrasRequest, image: Image.Image, runtime: Runtime, *, save: bool = False,
                  max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS, job: JobState | None = None) -> ExtrasResult:
    """Upscale one image as A1111's Extras tab; `save` writes it to outputs/extras-images (the UI saves,
    A1111's API does not). `job`'s Interrupt stops the upscaler between model tiles: JobInterrupted is raised."""
    if job is not None:
        job.job_count = 1
        job.begin(0)
    return _process(request, image, runtime, save=save, name=None, max_input_pixels=max_input_pixels, job=job)


def extras_batch(request: ExtrasRequest, images: Sequence[Image.Image], runtime: Runtime, *,
                 names: Sequence[str | None] | None = None, save: bool = False,
                 max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS, job: JobState | None = None) -> list[ExtrasResult]:
    """Upscale each image in turn (one model load for all); `names` are the uploaded file names, used
    for error messages and, when saving, as the output file names (A1111's use_original_name_batch).

    `job`'s Interrupt stops between model tiles and returns the images finished before it (as A1111's batch
    stops at the next image); the one in progress is dropped."""
    if not images:
        raise UserInputError("extras batch needs at least one image")
    if names is not None and len(names) != len(images):
        raise UserInputError(f"{len(images)} images but {len(names)} names")
    results: list[ExtrasResult] = []
    if job is not None:
        job.job_count = len(images)
    for index, image in enumerate(images):
        name = names[index] if names is not None else None
        if job is not None:
            job.begin(index)
        try:
            if job is not None:
                job.check()  # built-in resizes have no tiles to check between: stop here at the latest
            results.append(_process(request, image, runtime, save=save, name=name,
                                    max_input_pixels=max_input_pixels, job=job))
        except JobInterrupted:
            break
    return results
