"""The calls processing makes into a loaded model: the UNet step function, VAE decode/encode, noise schedule."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from webui.models.device import DeviceConfig, on_device
from webui.models.loader import AutoencoderKL, LoadedComponents

# VAE passes over more pixels than this run tiled (when DeviceConfig.vae_tiling allows). A 2x hires of 512x768
# (1.5 MP) decodes and re-encodes tiled, so neither needs the full-resolution activations (~0.4 GB per 128-channel
# fp16 map) at once.
VAE_TILING_PIXELS = 1024 * 1024


@contextlib.contextmanager
def vae_tiling(vae: AutoencoderKL, device: DeviceConfig, pixels: int) -> Iterator[None]:
    """The one tiling rule: tile a VAE pass over more than VAE_TILING_PIXELS pixels, if the device config allows;
    the VAE is left as it was afterwards (a caller that already turned tiling on keeps it)."""
    wanted = device.vae_tiling and pixels > VAE_TILING_PIXELS and not getattr(vae, "use_tiling", False)
    if wanted:
        vae.enable_tiling()
    try:
        yield
    finally:
        if wanted:
            vae.disable_tiling()


def alphas_cumprod(scheduler: dict) -> torch.Tensor:
    """The training noise schedule of the checkpoint (SD: scaled-linear betas 0.00085 → 0.012 over 1000 steps)."""
    steps = int(scheduler.get("num_train_timesteps", 1000))
    start, end = float(scheduler.get("beta_start", 0.00085)), float(scheduler.get("beta_end", 0.012))
    kind = scheduler.get("beta_schedule", "scaled_linear")
    if kind == "scaled_linear":
        betas = torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2
    elif kind == "linear":
        betas = torch.linspace(start, end, steps, dtype=torch.float64)
    else:
        raise ValueError(f"unsupported beta schedule {kind!r}")
    return torch.cumprod(1.0 - betas, dim=0).float()


@contextlib.contextmanager
def text_encoders_on_device(components: LoadedComponents, device: DeviceConfig) -> Iterator[None]:
    """All text encoders on the compute device for the duration (a no-op unless --medvram/--lowvram)."""
    with contextlib.ExitStack() as stack:
        for encoder in components.text_encoders:
            stack.enter_context(on_device(encoder.model, device))
        yield


def latent_scale(components: LoadedComponents) -> int:
    """Pixels per latent cell: 8 for every SD VAE, smaller for tiny test/demo VAEs with fewer down blocks."""
    return 2 ** (len(components.vae.config["block_out_channels"]) - 1)


def make_unet_call(components: LoadedComponents, device: DeviceConfig) -> Callable:
    """A function (x_in, timesteps, cond) -> model output; cond holds batched tensors built by processing.

    cond keys: "context" (cross-attention states), optional "pooled" + "time_ids" (SDXL), optional "c_concat"
    (inpainting models' mask and masked-image latents, concatenated to the input channels).
    """
    unet = components.unet

    def call(x_in: torch.Tensor, timesteps: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        sample = x_in
        if "c_concat" in cond:
            sample = torch.cat([x_in, cond["c_concat"].to(x_in)], dim=1)
        added = None
        dtype = device.unet_input_dtype  # fp32 with --upcast-sampling: autocast then picks each op's precision
        if "time_ids" in cond:
            added = {"text_embeds": cond["pooled"].to(device.device, dtype),
                     "time_ids": cond["time_ids"].to(device.device, dtype)}
        with device.unet_autocast():
            output = unet(sample.to(device.device, dtype), timesteps.to(device.device),
                          encoder_hidden_states=cond["context"].to(device.device, dtype),
                          added_cond_kwargs=added, return_dict=False)[0]
        return output.to(x_in.dtype)

    return call


def decode_latents(components: LoadedComponents, latents: torch.Tensor, device: DeviceConfig) -> torch.Tensor:
    """Latents → images in [0, 1]; falls back to fp32 for this call when fp16 decoding overflows (SDXL VAE)."""
    vae = components.vae
    # diffusers types `config` as a plain dict (it is a FrozenDict that also allows attribute access).
    scaled = latents / vae.config["scaling_factor"]
    if vae.config.get("shift_factor"):
        scaled = scaled + vae.config["shift_factor"]
    pixels = latents.shape[-1] * latents.shape[-2] * latent_scale(components) ** 2
    with vae_tiling(vae, device, pixels):
        decoded = _decode(vae, scaled, device.device, device.vae_dtype)
        if not torch.isfinite(decoded).all() and device.vae_dtype != torch.float32:
            decoded = _decode(vae, scaled, device.device, torch.float32)
    return ((decoded.float() + 1.0) / 2.0).clamp(0.0, 1.0).cpu()


def _decode(vae: AutoencoderKL, latents: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    original = next(vae.parameters()).dtype
    if dtype != original:
        vae.to(dtype=dtype)  # type: ignore[call-arg]  # diffusers wraps ModelMixin.to; its stub hides `self`
    try:
        images = []
        for item in latents.split(1):  # one image at a time keeps peak memory flat across batch sizes
            images.append(vae.decode(item.to(device, dtype), return_dict=False)[0])
        return torch.cat(images)
    finally:
        if dtype != original:
            vae.to(dtype=original)  # type: ignore[call-arg]  # as above


def encode_images(components: LoadedComponents, images: torch.Tensor, device: DeviceConfig) -> torch.Tensor:
    """Images in [0, 1] (B, 3, H, W) → scaled latents (the distribution's mean, as A1111 uses for img2img)."""
    vae = components.vae
    pixels = (images * 2.0 - 1.0).to(device.device, device.vae_dtype)
    with vae_tiling(vae, device, images.shape[-1] * images.shape[-2]):
        latents = torch.cat([vae.encode(item, return_dict=False)[0].mode() for item in pixels.split(1)])
    if vae.config.get("shift_factor"):
        latents = latents - vae.config["shift_factor"]
    return (latents * vae.config["scaling_factor"]).float().cpu()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] → 8-bit RGB PIL images, rounding as A1111 does (x·255, truncated after clamp)."""
    array = (images.permute(0, 2, 3, 1).numpy() * 255.0).astype(np.uint8)
    return [Image.fromarray(item) for item in array]
