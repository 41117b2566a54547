"""Hires fix for txt2img: target size, the upscale between passes, the second pass's settings and infotext keys."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from webui.errors import UserInputError
from webui.processing.images import to_tensor
from webui.processing.pipeline import (
    ModelContext,
    SamplingPass,
    model_calls_per_step,
    sampler_settings,
)
from webui.processing.prompt_conds import plan_prompt
from webui.processing.request import Txt2ImgRequest
from webui.processing.runtime import Runtime
from webui.processing.upscale import (
    LATENT_UPSCALE_MODES,
    canonical_upscaler_name,
    upscale_image,
    upscale_latents,
    upscaler_names,
)
from webui.processing.vae import decode_to_pil, encode, inpainting_conditioning
from webui.sampling.names import SamplerName, ScheduleName, schedule_label_for_infotext

# Largest hires side accepted; beyond it even a tiled VAE and the UNet's attention run out of memory.
MAX_HIRES_SIDE = 8192


@dataclass(frozen=True)
class HiresTarget:
    """The size the upscaler produces (covering the requested one) and how many latent cells to cut off."""

    upscale_width: int
    upscale_height: int
    crop_x: int = 0
    crop_y: int = 0


def hires_target(request: Txt2ImgRequest, scale: int) -> HiresTarget:
    """A1111's rule: hr_scale when both resize values are 0; one value keeps the aspect; both cover then crop."""
    width, height = request.width, request.height
    resize_x, resize_y = request.hr_resize_x, request.hr_resize_y
    if resize_x == 0 and resize_y == 0:
        return HiresTarget(int(width * request.hr_scale), int(height * request.hr_scale))
    if resize_y == 0:
        return HiresTarget(resize_x, resize_x * height // width)
    if resize_x == 0:
        return HiresTarget(resize_y * width // height, resize_y)
    if width / height < resize_x / resize_y:
        up_w, up_h = resize_x, resize_x * height // width
    else:
        up_w, up_h = resize_y * width // height, resize_y
    return HiresTarget(up_w, up_h, (up_w - resize_x) // scale, (up_h - resize_y) // scale)


def check_target(request: Txt2ImgRequest, scale: int) -> HiresTarget:
    """The hires target, refused with a message when it is smaller than the model's minimum or absurdly large."""
    target = hires_target(request, scale)
    final_w = target.upscale_width - target.crop_x * scale
    final_h = target.upscale_height - target.crop_y * scale
    if min(final_w, final_h) < 64 or max(target.upscale_width, target.upscale_height) > MAX_HIRES_SIDE:
        raise UserInputError(f"Hires fix would make a {final_w}x{final_h} image from {request.width}x{request.height}; "
                             f"each side must be between 64 and {MAX_HIRES_SIDE} (change the upscale factor or the "
                             f"resize width/height)")
    return target


def known_upscalers(runtime: Runtime) -> list[str]:
    """Every name hires fix accepts: the latent modes, then None/Lanczos/Nearest and the model files."""
    return [*LATENT_UPSCALE_MODES, *upscaler_names(runtime.upscalers)]


def check_upscaler(name: str, runtime: Runtime) -> None:
    """Fail before the first pass, not after it, when the hires upscaler does not exist."""
    try:  # a model's file stem or another letter case is accepted, as upscale_image accepts it
        canonical_upscaler_name(name, runtime.upscalers)
    except UserInputError:
        raise UserInputError(f"Unknown hires upscaler {name!r}. Known upscalers: "
                             f"{', '.join(known_upscalers(runtime))}") from None


def upscale_for_hires(ctx: ModelContext, latents: Tensor, request: Txt2ImgRequest, target: HiresTarget,
                      runtime: Runtime, check: Callable[[], None] | None = None) -> Tensor:
    """First-pass latents → hires latents: interpolated in latent space, or decoded, upscaled and re-encoded.

    `check` runs before every upscaler tile (the job's Interrupt); the VAE passes are checked by their hooks.
    """
    scale = ctx.scale
    if request.hr_upscaler in LATENT_UPSCALE_MODES:
        upscaled = upscale_latents(latents, request.hr_upscaler, target.upscale_height // scale,
                                   target.upscale_width // scale)
    else:
        images = [upscale_image(image, request.hr_upscaler, target.upscale_width, target.upscale_height,
                                runtime.upscalers, check) for image in decode_to_pil(ctx, latents)]
        upscaled = encode(ctx, to_tensor(images))
    height, width = upscaled.shape[-2:]
    cy, cx = target.crop_y, target.crop_x
    return upscaled[:, :, cy // 2:height - (cy + 1) // 2, cx // 2:width - (cx + 1) // 2]


def hires_sampler(request: Txt2ImgRequest) -> tuple[SamplerName, ScheduleName]:
    """The second pass's sampler and schedule; empty names mean "same as the first pass"."""
    return request.hires_sampler, request.hires_schedule


def hires_pass(ctx: ModelContext, request: Txt2ImgRequest, first_sampler: SamplerName, init_latent: Tensor,
               batch: int) -> SamplingPass:
    """The second pass: exactly the hires steps (A1111 always "fixes" them here), its own prompt timeline."""
    sampler, schedule = hires_sampler(request)
    steps = request.hr_second_pass_steps or request.steps
    first_calls = request.steps * model_calls_per_step(first_sampler)
    hires_calls = steps * model_calls_per_step(sampler)
    height, width = init_latent.shape[-2] * ctx.scale, init_latent.shape[-1] * ctx.scale
    return SamplingPass(
        sampler=sampler, schedule=schedule, steps=steps, cfg_scale=request.cfg_scale, clip_skip=request.clip_skip,
        width=width, height=height,
        plan=plan_prompt(request.hr_prompt or request.prompt, first_calls, hires_calls),
        negative_plan=plan_prompt(request.hr_negative_prompt or request.negative_prompt, first_calls,
                                           hires_calls, allow_and=False),
        settings=sampler_settings(request, img2img_fix_steps=True),
        denoise_strength=request.denoising_strength, init_latent=init_latent,
        image_cond=inpainting_conditioning(ctx, None, None, batch, height, width))


def hires_infotext(request: Txt2ImgRequest) -> dict:
    """A1111's hires keys, in the order it adds them (prompts only when they differ from the first pass's)."""
    params: dict = {"Denoising strength": request.denoising_strength}
    if request.hr_prompt and request.hr_prompt != request.prompt:
        params["Hires prompt"] = request.hr_prompt
    if request.hr_negative_prompt and request.hr_negative_prompt != request.negative_prompt:
        params["Hires negative prompt"] = request.hr_negative_prompt
    if request.hr_scheduler and request.hr_scheduler != request.scheduler:
        sampler, schedule = hires_sampler(request)
        params["Hires schedule type"] = schedule_label_for_infotext(sampler, schedule)
    if request.hr_resize_x == 0 and request.hr_resize_y == 0:
        params["Hires upscale"] = request.hr_scale
    else:
        params["Hires resize"] = f"{request.hr_resize_x}x{request.hr_resize_y}"
    if request.hr_second_pass_steps:
        params["Hires steps"] = request.hr_second_pass_steps
    params["Hires upscaler"] = request.hr_upscaler
    if request.hr_sampler_name and request.hr_sampler_name != request.sampler_name:
        params["Hires sampler"] = request.hr_sampler_name
    return params
