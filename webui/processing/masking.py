"""Inpainting masks: blur, "only masked" crop region, masked-content fill, latent masks and the final paste-back."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from webui.processing.images import resize_image

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), as PIL's crop takes it


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    # A1111 sizes the kernel as OpenCV's GaussianBlur call it makes: 2·int(2.5σ + 0.5) + 1 taps.
    radius = int(2.5 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(offsets**2) / (2 * sigma * sigma))
    return kernel / kernel.sum()


def _blur_axis(array: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    radius = (len(kernel) - 1) // 2
    moved = array.movedim(dim, -1)
    rows = moved.reshape(-1, 1, moved.shape[-1])
    # Mirror the border without repeating the edge pixel (OpenCV's default), fall back to edge copies when the
    # kernel is wider than the picture.
    mode = "reflect" if radius < rows.shape[-1] else "replicate"
    padded = torch.nn.functional.pad(rows, (radius, radius), mode=mode)
    out = torch.nn.functional.conv1d(padded, kernel.view(1, 1, -1))
    return out.reshape(moved.shape).movedim(-1, dim)


def blur_mask(mask: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur of an "L" mask with std `sigma` pixels along x and y (A1111's mask blur)."""
    if sigma <= 0:
        return mask.copy()
    kernel = _gaussian_kernel(sigma)
    array = torch.from_numpy(np.asarray(mask, dtype=np.float64).copy())
    array = _blur_axis(_blur_axis(array, kernel, 1), kernel, 0)
    return Image.fromarray(np.clip(np.rint(array.numpy()), 0, 255).astype(np.uint8), mode="L")


def crop_region(mask: Image.Image, padding: int) -> Box | None:
    """The mask's bounding box grown by `padding` on every side, inside the picture; None for an empty mask."""
    box = mask.point(lambda value: 255 if value > 0 else 0).getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return (max(left - padding, 0), max(top - padding, 0), min(right + padding, mask.width),
            min(bottom + padding, mask.height))


def _grow_span(start: int, end: int, wanted: float, limit: int) -> tuple[int, int]:
    # Add the missing length half before, half after; slide back inside [0, limit) when it spills over.
    extra = int(wanted - (end - start))
    start -= extra // 2
    end += extra - extra // 2
    if end >= limit:
        start -= end - limit
        end = limit
    if start < 0:
        end -= start
        start = 0
    return start, min(end, limit)


def expand_to_aspect(box: Box, width: int, height: int, image_width: int, image_height: int) -> Box:
    """Grow a crop box to the width:height aspect of the processing size, staying inside the picture."""
    left, top, right, bottom = box
    if (right - left) / (bottom - top) > width / height:
        top, bottom = _grow_span(top, bottom, (right - left) * height / width, image_height)
    else:
        left, right = _grow_span(left, right, (bottom - top) * width / height, image_width)
    return left, top, right, bottom


def _wide_blur(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (C, H, W) planes; wide blurs run on a pooled copy, so a 64-px blur costs as a 2-px one."""
    factor = 1
    while factor * 4 <= sigma:
        factor *= 2
    small = torch.nn.functional.avg_pool2d(planes[None], factor, ceil_mode=True)[0] if factor > 1 else planes
    kernel = _gaussian_kernel(sigma / factor).to(planes.dtype)
    blurred = _blur_axis(_blur_axis(small, kernel, 2), kernel, 1)
    if factor > 1:
        blurred = torch.nn.functional.interpolate(blurred[None], size=planes.shape[-2:], mode="bilinear",
                                                  align_corners=False)[0]
    return blurred


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Masked content "fill": the hole takes the blurred colours of what surrounds it.

    Normalised convolution: blur colour·weight and weight (weight = 1 outside the mask) at falling radii, each
    finer pass overriding the coarser one where it has enough known pixels nearby; unmasked pixels keep theirs.
    """
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32).copy()).permute(2, 0, 1)
    known = torch.from_numpy(np.asarray(mask.convert("L")) < 128).float()[None]
    if known.sum() == 0 or known.min() == 1:
        return image.convert("RGB").copy()
    filled = ((rgb * known).sum((1, 2)) / known.sum())[:, None, None].expand_as(rgb)
    for sigma in (64.0, 16.0, 4.0, 1.0):
        blurred = _wide_blur(torch.cat([rgb * known, known]), sigma)
        colour, weight = blurred[:3], blurred[3:]
        filled = torch.where(weight > 1e-3, colour / weight.clamp_min(1e-6), filled)
    result = torch.where(known > 0, rgb, filled).permute(1, 2, 0)
    return Image.fromarray(np.clip(np.rint(result.numpy()), 0, 255).astype(np.uint8), mode="RGB")


def whole_picture_overlay_mask(mask: Image.Image) -> Image.Image:
    """In "whole picture" mode A1111 doubles the blurred mask, so only its outer half lets the original through."""
    array = np.asarray(mask, dtype=np.float32) * 2
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")


def make_overlay(image: Image.Image, overlay_mask: Image.Image) -> Image.Image:
    """The original picture as RGBA, opaque where the mask is black (kept) and clear where it is white."""
    overlay = image.convert("RGBA")
    overlay.putalpha(Image.eval(overlay_mask.convert("L"), lambda value: 255 - value))
    return overlay


def paste_back(generated: Image.Image, overlay: Image.Image, box: Box | None) -> Image.Image:
    """Composite the original (overlay) over the result; an "only masked" crop is first fitted into its box."""
    if box is not None:
        left, top, right, bottom = box
        canvas = Image.new("RGBA", overlay.size)
        canvas.paste(resize_image(generated.convert("RGB"), 1, right - left, bottom - top), (left, top))
        base = canvas
    else:
        base = generated.convert("RGBA")
    base.alpha_composite(overlay)
    return base.convert("RGB")


def latent_mask(mask: Image.Image, latent_height: int, latent_width: int, round_mask: bool = True) -> torch.Tensor:
    """The repaint mask at latent size, (1, 1, h, w) in [0, 1] (1 = repaint), rounded as A1111's mask_round."""
    small = mask.convert("L").resize((latent_width, latent_height), Image.Resampling.BICUBIC)
    tensor = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0)[None, None]
    return tensor.round() if round_mask else tensor


def conditioning_mask(mask: Image.Image | None, height: int, width: int) -> torch.Tensor:
    """The pixel-size mask an inpainting model's conditioning uses, (1, 1, H, W), rounded; all ones if no mask."""
    if mask is None:
        return torch.ones(1, 1, height, width)
    array = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).round()[None, None]


def blur_radius_pixels(sigma: float) -> int:
    """How far a blur of std `sigma` reaches (the kernel half-width)."""
    return int(2.5 * sigma + 0.5) if sigma > 0 else 0

