"""Infotext → request: A1111's "paste parameters", so generate → parse → generate reproduces the image."""
from __future__ import annotations

from typing import Any, Callable

from PIL import Image

from webui.processing.infotext import parse_infotext
from webui.processing.request import (
    INPAINTING_FILLS,
    Img2ImgRequest,
    InpaintingFill,
    MaskMode,
    Txt2ImgRequest,
    make_request,
)

# (infotext key, request field); the model hash is not mapped, as A1111 ignores it by default.
INFOTEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("Prompt", "prompt"), ("Negative prompt", "negative_prompt"), ("Steps", "steps"), ("Sampler", "sampler_name"),
    ("Schedule type", "scheduler"), ("CFG scale", "cfg_scale"), ("Seed", "seed"), ("Size-1", "width"),
    ("Size-2", "height"), ("Clip skip", "clip_skip"), ("Variation seed", "subseed"),
    ("Variation seed strength", "subseed_strength"), ("Seed resize from-1", "seed_resize_from_w"),
    ("Seed resize from-2", "seed_resize_from_h"), ("Emphasis", "emphasis"), ("Eta", "eta"), ("VAE", "vae"),
    ("ENSD", "eta_noise_seed_delta"), ("Denoising strength", "denoising_strength"),
)

# The "use the first pass's" values A1111 writes or fills in, which our requests spell as "".
_SAME = frozenset({"Use same sampler", "Use same scheduler"})

HIRES_FIELDS: tuple[tuple[str, str], ...] = (
    ("Hires upscale", "hr_scale"), ("Hires resize-1", "hr_resize_x"), ("Hires resize-2", "hr_resize_y"),
    ("Hires steps", "hr_second_pass_steps"), ("Hires upscaler", "hr_upscaler"), ("Hires prompt", "hr_prompt"),
    ("Hires negative prompt", "hr_negative_prompt"), ("Hires sampler", "hr_sampler_name"),
    ("Hires schedule type", "hr_scheduler"),
)

# (infotext key, request field, text → value) for img2img and inpainting.
IMG2IMG_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("Mask blur", "mask_blur", int),
    ("Masked content", "inpainting_fill",
     lambda v: InpaintingFill(INPAINTING_FILLS.index(v)) if v in INPAINTING_FILLS else InpaintingFill.ORIGINAL),
    ("Inpaint area", "inpaint_full_res", lambda v: v == "Only masked"),
    ("Masked area padding", "inpaint_full_res_padding", int),
    ("Mask mode", "inpainting_mask_invert",
     lambda v: MaskMode.INPAINT_NOT_MASKED if v == "Inpaint not masked" else MaskMode.INPAINT_MASKED),
    ("Noise multiplier", "initial_noise_multiplier", float),
    ("Image CFG scale", "image_cfg_scale", float),
)


def request_fields_from_infotext(text: str, mode: str = "txt2img") -> dict[str, Any]:
    """The request fields an infotext sets; keys it does not carry are left out (the form keeps its value).

    `mode` "txt2img" adds the hires fix fields (and turns it on as A1111's paste does: denoising strength
    plus a hires key); "img2img" adds the inpainting fields.
    """
    parsed = parse_infotext(text)
    fields = {field: parsed[key] for key, field in INFOTEXT_FIELDS if key in parsed}
    if mode == "txt2img":
        for key, field in HIRES_FIELDS:
            if key in parsed:
                fields[field] = "" if parsed[key] in _SAME else parsed[key]
        fields["enable_hr"] = "Denoising strength" in parsed and any(
            key in parsed for key in ("Hires upscale", "Hires upscaler", "Hires resize"))
    elif mode == "img2img":
        for key, field, convert in IMG2IMG_FIELDS:
            if key in parsed:
                fields[field] = convert(parsed[key])
    else:
        raise ValueError(f"mode must be 'txt2img' or 'img2img', got {mode!r}")
    return fields


def request_from_infotext(text: str, **overrides: Any) -> Txt2ImgRequest:
    fields = request_fields_from_infotext(text)
    fields.update(overrides)
    return make_request(Txt2ImgRequest, fields)


def img2img_request_from_infotext(text: str, init_images: list[Image.Image], mask: Image.Image | None = None,
                                  **overrides: Any) -> Img2ImgRequest:
    """The pictures are not in the infotext; the caller gives them again."""
    fields = request_fields_from_infotext(text, "img2img")
    fields.update(init_images=init_images, mask=mask, **overrides)
    return make_request(Img2ImgRequest, fields)
