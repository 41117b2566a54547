"""POST /img2img: A1111's img2img and inpainting body (API defaults: only masked, padding 0, fill) → img2img."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from webui.api.errors import ApiError
from webui.api.generation import GenerationDeps, run_generation
from webui.api.images import decode_image
from webui.api.mapping import add_specific_fields, common_fields
from webui.api.schemas import GenerationResponse, Img2ImgBody
from webui.processing.img2img import img2img
from webui.processing.request import Img2ImgRequest
from webui.processing.runtime import Runtime


def img2img_fields(runtime: Runtime, body: Img2ImgBody) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """Shared fields plus the init images, the mask and the inpainting options (images decoded here: 413/422)."""
    fields, settings, known = common_fields(runtime, body, mode="img2img")
    if not body.init_images:
        raise ApiError(422, "init_images: give at least one image", "InvalidRequest")
    refused = []
    if body.latent_mask:
        refused.append("latent_mask")
    if not body.mask_round:
        refused.append("mask_round=false (the mask is always rounded)")
    # A1111: mask_blur, when given, sets both directions; separate x/y blurs are not offered here.
    blur = body.mask_blur if body.mask_blur is not None else body.mask_blur_x
    if body.mask_blur is None and body.mask_blur_x != body.mask_blur_y:
        refused.append("different mask_blur_x and mask_blur_y")
    if refused:
        raise ApiError(422, "Not supported: " + "; ".join(refused), "NotSupported")
    add_specific_fields(fields, {
        "init_images": [decode_image(data, f"init_images[{index}]") for index, data in enumerate(body.init_images)],
        "mask": decode_image(body.mask, "mask") if body.mask else None,
        "resize_mode": body.resize_mode,
        "denoising_strength": 0.75 if body.denoising_strength is None else body.denoising_strength,
        "image_cfg_scale": body.image_cfg_scale,
        "initial_noise_multiplier": 1.0 if body.initial_noise_multiplier is None else body.initial_noise_multiplier,
        "mask_blur": blur, "inpainting_fill": body.inpainting_fill, "inpaint_full_res": body.inpaint_full_res,
        "inpaint_full_res_padding": body.inpaint_full_res_padding,
        "inpainting_mask_invert": body.inpainting_mask_invert,
    }, body)
    return fields, settings, known


def run_img2img(deps: GenerationDeps, body: Img2ImgBody) -> dict[str, Any]:
    fields, settings, known = img2img_fields(deps.runtime, body)
    response = run_generation(deps, body, fields, settings, known, Img2ImgRequest, img2img)
    if not body.include_init_images:  # A1111 echoes the (large) input pictures only when asked
        response["parameters"]["init_images"] = None
        response["parameters"]["mask"] = None
    return response


def add_img2img_routes(router: APIRouter, deps: GenerationDeps) -> None:
    @router.post("/img2img", response_model=GenerationResponse, summary="Image to image and inpainting")
    def img2img_route(body: Img2ImgBody) -> dict[str, Any]:
        return run_img2img(deps, body)
