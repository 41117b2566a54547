"""Where finished pictures go: the infotext into each image, its record into the result, files under outputs/."""
from __future__ import annotations

from typing import Any

from PIL import Image

from webui.paths import resolve_inside
from webui.processing.infotext import format_infotext
from webui.processing.outputs import dated_folder, default_filename_pattern, make_grid, save_grid, save_image
from webui.processing.request import GenerationRequest
from webui.processing.results import GenerationResult, ImageResult
from webui.processing.runtime import Runtime


def store_image(result: GenerationResult, image: Image.Image, params: dict[str, Any], seed: int, subseed: int,
                request: GenerationRequest, runtime: Runtime, kind: str) -> None:
    """Write the infotext into the image, add its record to the result and save it under outputs/<kind>-images."""
    text = format_infotext(request.prompt, request.negative_prompt, params)
    image.info["parameters"] = text
    record = ImageResult(image, text, seed, subseed, request.prompt, request.negative_prompt, parameters=params)
    result.add(record)
    if request.save_images:
        settings = runtime.settings.current
        # A1111: "Output directory for images" replaces every mode's own folder. It comes from config.json or the
        # API's /options, so it must stay inside the data folder (no writing anywhere on the server).
        base = resolve_inside(runtime.folders.data, settings.outdir_samples) if settings.outdir_samples \
            else runtime.folders.outputs / f"{kind}-images"
        folder = dated_folder(base) if settings.save_to_dirs else base
        tags = {"prompt": request.prompt, "negative_prompt": request.negative_prompt, "steps": request.steps,
                "cfg": request.cfg_scale, "sampler": request.sampler_name, "width": request.width,
                "height": request.height}
        record.path = str(save_image(image, folder, seed=seed, infotext=text,
                                           pattern=settings.samples_filename_pattern
                                           or default_filename_pattern(settings.save_to_dirs),
                                           extension=settings.samples_format, tags=tags))


def finish_grid(result: GenerationResult, request: GenerationRequest, runtime: Runtime, kind: str) -> None:
    """A1111's grid of a multi-image result, saved under outputs/<kind>-grids when saving is on."""
    if len(result.images) > 1 and request.save_grid:
        result.grid = make_grid(result.images)
        if request.save_images:
            save_grid(
                result.grid, dated_folder(runtime.folders.outputs / f"{kind}-grids"), infotext=result.infotexts[0]
            )
