"""The VAE for a generation: latents to pictures and back on the model's device, and inpainting models' c_concat."""
from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image
from torch import Tensor

from webui.models.device import on_device
from webui.processing.model_calls import decode_latents, encode_images, to_pil
from webui.processing.pipeline import ModelContext


def decode(ctx: ModelContext, latents: Tensor) -> Tensor:
    """Latents → (B, 3, H, W) pixels in [0, 1] on the CPU."""
    with torch.no_grad(), on_device(ctx.components.vae, ctx.device):
        return decode_latents(ctx.components, latents, ctx.device)


def decode_to_pil(ctx: ModelContext, latents: Tensor) -> list[Image.Image]:
    """Latents → 8-bit RGB pictures."""
    return to_pil(decode(ctx, latents))


def nonfinite_warning(stage: str, tensor: Tensor, loras: Sequence[str]) -> str | None:
    """A1111's "A tensor with all NaNs was produced in Unet/VAE", said plainly with the likely cause, or None."""
    if bool(torch.isfinite(tensor).all()):
        return None
    cause = (f"the LoRA(s) in use ({', '.join(loras)}) at this multiplier; lower it or remove them" if loras else
             "the model or VAE overflowing in half precision; try --no-half or --no-half-vae")
    return f"The {stage} produced NaN/Inf values, so these pictures are black or broken. Likely cause: {cause}"


def decode_checked(ctx: ModelContext, latents: Tensor, loras: Sequence[str], warnings: list[str]) -> list[Image.Image]:
    """decode_to_pil that adds a warning (once) when the sampled latents or the decoded pixels are not finite."""
    problem = nonfinite_warning("UNet", latents, loras)
    pixels = decode(ctx, latents)
    # Pixels are clamped to [0, 1], which keeps NaN: a finite latent that the VAE blew up shows here.
    problem = problem or nonfinite_warning("VAE", pixels, loras)
    if problem is None:
        return to_pil(pixels)
    if problem not in warnings:
        warnings.append(problem)
    return to_pil(torch.nan_to_num(pixels, nan=0.0))  # black where NaN, as A1111 shows it, without a cast warning


def encode(ctx: ModelContext, images: Tensor) -> Tensor:
    """(B, 3, H, W) pixels in [0, 1] → scaled latents on the compute device."""
    with torch.no_grad(), on_device(ctx.components.vae, ctx.device):
        return encode_images(ctx.components, images, ctx.device).to(ctx.device.device)


def inpainting_conditioning(ctx: ModelContext, images: Tensor | None, masks: Tensor | None, batch: int,
                            height: int, width: int) -> Tensor | None:
    """9-channel models' c_concat: the repaint mask at latent size + the latents of the picture with the mask grey.

    `images` (B, 3, H, W) in [0, 1] and `masks` (B or 1, 1, H, W) with 1 = repaint; None means a grey picture and
    an all-ones mask, as A1111's txt2img gives these models. Normal models get None.
    """
    if not ctx.model.architecture.inpainting:
        return None
    if images is None:
        images = torch.zeros(1, 3, height, width)
    if masks is None:
        masks = torch.ones(1, 1, height, width)
    masked = images * (1 - masks) + 0.5 * masks  # 0 in the model's [-1, 1] pixel range
    latent = encode(ctx, masked)
    small = torch.nn.functional.interpolate(masks, size=latent.shape[-2:]).to(latent)
    cond = torch.cat([small.expand(latent.shape[0], -1, -1, -1), latent], dim=1)
    return cond.expand(batch, -1, -1, -1) if cond.shape[0] == 1 else cond
