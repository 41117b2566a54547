"""POST /interrogate: A1111's request and answer, served by the WD14 tagger or a BLIP model."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from webui.api.errors import ApiError
from webui.api.images import decode_image
from webui.processing.jobs import JobState
from webui.processing.runtime import Runtime
from webui.training.interrogate import CLIP, UnknownInterrogatorError, app_interrogator


class InterrogateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image: str = Field("", description="base64 image, bare or as a data URL")
    model: str = Field(CLIP, description='"clip" (BLIP caption), "deepdanbooru" (WD14 tags), or a tagger/BLIP '
                                         "folder name")


class InterrogateResponse(BaseModel):
    caption: str


def add_interrogate_routes(router: APIRouter, runtime: Runtime) -> None:
    interrogator = app_interrogator(runtime)

    @router.post("/interrogate", response_model=InterrogateResponse, summary="Caption or tag an image")
    def interrogate(body: InterrogateBody) -> InterrogateResponse:
        image = decode_image(body.image, "image")
        try:
            # In the queue: a BLIP model on the GPU competes with generation for the same memory.
            caption = runtime.queue.run(JobState(), lambda: interrogator.interrogate(image, body.model))
        except UnknownInterrogatorError as error:
            raise ApiError(404, str(error), "NotFound") from None
        return InterrogateResponse(caption=caption)
