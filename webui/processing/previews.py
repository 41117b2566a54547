"""Cheap live previews: a linear latent→RGB map fitted once per loaded model from that model's own VAE."""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import torch
from PIL import Image

from webui.models.device import DeviceConfig, on_device
from webui.models.manager import LoadedModel
from webui.processing.model_calls import decode_latents, encode_images, latent_scale

FIT_SIZE = 64  # pixels; small so fitting costs well under a second even for SD1.5's VAE on a CPU
# Flat backgrounds with one block of another colour: close to what any VAE reconstructs well (the bundled
# demo's VAE only ever saw flat shapes), with both colours present in every picture.
PALETTE = ((0, 0, 0), (1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (0.5, 0.5, 0.5),
           (1, 0.5, 0), (0, 0, 0.5), (0.5, 0.25, 0.1), (1, 0.7, 0.8), (0.5, 0, 0.5))


@dataclass(frozen=True)
class LatentRgbMap:
    """rgb[-1..1] = weight @ latent + bias, per latent pixel (like A1111's "Approx cheap", but fitted, not shipped)."""

    weight: torch.Tensor  # (3, C)
    bias: torch.Tensor  # (3,)

    def to_image(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
        """First image of a (B, C, h, w) batch as a PIL image, scaled to `size` (width, height) when given."""
        latent = latents[0].detach().float().cpu()
        rgb = torch.einsum("oc,chw->ohw", self.weight, latent) + self.bias[:, None, None]
        array = ((rgb.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        image = Image.fromarray(array)
        return image.resize(size, Image.Resampling.BILINEAR) if size else image


def synthetic_images(size: int = FIT_SIZE) -> torch.Tensor:
    """One picture per palette colour: that colour as background, the next one as a centred block; in [0, 1]."""
    colours = torch.tensor(PALETTE, dtype=torch.float32)
    images = colours[:, :, None, None].expand(-1, -1, size, size).clone()
    inner = slice(size // 4, size - size // 4)
    images[:, :, inner, inner] = colours.roll(-1, dims=0)[:, :, None, None]
    return images


def fit_latent_rgb_map(model: LoadedModel, device: DeviceConfig) -> LatentRgbMap:
    """Least squares from the VAE's latents of known pictures to what its decoder makes of them, per latent cell.

    Fitting to the decoder's output (not the input pictures) makes the preview match the final image even where
    the VAE reconstructs imperfectly.
    """
    components = model.components
    with torch.no_grad(), on_device(components.vae, device):
        latents = encode_images(components, synthetic_images(), device)
        decoded = decode_latents(components, latents, device)
    scale = latent_scale(components)
    targets = torch.nn.functional.avg_pool2d(decoded * 2.0 - 1.0, scale)
    features = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    rgb = targets.permute(0, 2, 3, 1).reshape(-1, 3)
    design = torch.cat([features, torch.ones(len(features), 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, rgb.double()).solution.float()  # (C + 1, 3)
    return LatentRgbMap(weight=solution[:-1].T.contiguous(), bias=solution[-1].contiguous())


class LatentPreviewer:
    """Keeps one fitted map per loaded VAE module (weakly), so the entry goes when the model is unloaded."""

    def __init__(self) -> None:
        self._maps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def map_for(self, model: LoadedModel, device: DeviceConfig) -> LatentRgbMap:
        with self._lock:
            found = self._maps.get(model.components.vae)  # the VAE module: a new VAE file means a new map
            if found is None:
                found = fit_latent_rgb_map(model, device)
                self._maps[model.components.vae] = found
            return found

    def render(self, model: LoadedModel | None, device: DeviceConfig, latents: torch.Tensor) -> Image.Image | None:
        """A preview of the first image in the batch at its final size; None when no model is loaded."""
        if model is None:
            return None
        scale = latent_scale(model.components)
        size = (latents.shape[-1] * scale, latents.shape[-2] * scale)
        return self.map_for(model, device).to_image(latents, size)
