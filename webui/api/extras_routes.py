"""Extras (upscaling) and the upscaler lists: /extra-single-image, /extra-batch-images, /upscalers."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from webui.api.images import decode_image, encode_png
from webui.api.mapping import build
from webui.processing.extras import ExtrasRequest, extras_batch, extras_single, plaintext_to_html
from webui.processing.jobs import JobInterrupted, JobState
from webui.processing.runtime import Runtime
from webui.processing.upscale import LATENT_UPSCALE_MODES, upscaler_list

INTERRUPTED = "Interrupted"  # html_info of an extras answer cut short by /interrupt


class ExtrasFields(BaseModel):
    """A1111's ExtrasBaseRequest with its defaults."""

    model_config = ConfigDict(extra="ignore")

    resize_mode: int = 0
    show_extras_results: bool = True
    gfpgan_visibility: float = 0.0
    codeformer_visibility: float = 0.0
    codeformer_weight: float = 0.0
    upscaling_resize: float = 2.0
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = 0.0
    upscale_first: bool = False


class ExtrasSingleBody(ExtrasFields):
    image: str = Field("", description="base64 image, bare or as a data URL")


class FileData(BaseModel):
    data: str = Field(description="base64 image, bare or as a data URL")
    name: str = ""


class ExtrasBatchBody(ExtrasFields):
    imageList: list[FileData] = Field(default_factory=list)  # noqa: N815 - A1111's field name


class ExtrasSingleResponse(BaseModel):
    html_info: str
    image: str | None = None


class ExtrasBatchResponse(BaseModel):
    html_info: str
    images: list[str]


def _request(body: ExtrasFields) -> ExtrasRequest:
    return build(ExtrasRequest, body.model_dump(include=set(ExtrasRequest.model_fields)))


def _encoded(result: Any) -> str:
    # The answer keeps the input's infotext and adds the postprocessing text, as A1111's does.
    extra = {key: value for key, value in result.info.items() if key != "parameters"}
    return encode_png(result.image, result.info.get("parameters"), extra)


def add_extras_routes(router: APIRouter, runtime: Runtime) -> None:
    @router.post("/extra-single-image", response_model=ExtrasSingleResponse, summary="Upscale one image")
    def extra_single_image(body: ExtrasSingleBody) -> ExtrasSingleResponse:
        request = _request(body)
        image = decode_image(body.image, "image")
        # In the queue: upscaler models compete with generation for the same memory; /interrupt stops it.
        job = JobState(text="extras")
        try:
            result = runtime.queue.run(job, lambda: extras_single(request, image, runtime, save=False, job=job))
        except JobInterrupted:
            return ExtrasSingleResponse(html_info=plaintext_to_html(INTERRUPTED), image=None)
        return ExtrasSingleResponse(html_info=result.html_info, image=_encoded(result))

    @router.post("/extra-batch-images", response_model=ExtrasBatchResponse, summary="Upscale several images")
    def extra_batch_images(body: ExtrasBatchBody) -> ExtrasBatchResponse:
        request = _request(body)
        images = [decode_image(item.data, f"imageList[{index}]") for index, item in enumerate(body.imageList)]
        names = [item.name or None for item in body.imageList]
        job = JobState(text="extras")
        results = runtime.queue.run(job, lambda: extras_batch(request, images, runtime, names=names, save=False,
                                                              job=job))
        if job.interrupted:  # the images finished before /interrupt come back
            return ExtrasBatchResponse(html_info=plaintext_to_html(INTERRUPTED),
                                       images=[_encoded(result) for result in results])
        return ExtrasBatchResponse(html_info=results[-1].html_info if results else "",
                                   images=[_encoded(result) for result in results])

    @router.get("/upscalers", summary="Upscalers for extras and hires fix")
    def upscalers() -> list[dict[str, Any]]:
        return upscaler_list(runtime.upscalers)

    @router.get("/latent-upscale-modes", summary="Latent upscale modes for hires fix")
    def latent_upscale_modes() -> list[dict[str, str]]:
        return [{"name": name} for name in LATENT_UPSCALE_MODES]
