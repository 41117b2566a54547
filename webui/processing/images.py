"""Input pictures for img2img: any PIL mode to 8-bit RGB, EXIF orientation, size limit, A1111's resize modes."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageOps

from webui.errors import UserInputError

# A1111's setting img2img_background_color: transparent parts of an init image become this colour.
BACKGROUND = (255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def check_pixel_limit(image: Image.Image, limit: int, name: str = "image") -> None:
    """Refuse pictures above `limit` pixels before any work is done on them."""
    pixels = image.width * image.height
    if pixels > limit:
        raise UserInputError(f"{name} is {image.width}x{image.height} = {pixels:,} pixels, above the limit of "
                             f"{limit:,} pixels; make it smaller first")


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    # PIL opens 16-bit greyscale PNGs as "I;16"/"I"; convert("L") would clip at 255 instead of scaling.
    array = np.asarray(image, dtype=np.float64)
    peak = 65535.0 if array.max(initial=0) > 255 or image.mode != "I" else 255.0
    return Image.fromarray(np.clip(np.rint(array * 255.0 / peak), 0, 255).astype(np.uint8), mode="L")


def normalize_image(image: Image.Image, limit: int | None = None, name: str = "image",
                    background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Any input picture → upright 8-bit RGB: EXIF rotation applied, alpha flattened onto `background`."""
    if limit is not None:
        check_pixel_limit(image, limit, name)
    image = ImageOps.exif_transpose(image) or image
    if image.mode in _SIXTEEN_BIT_MODES:
        image = _sixteen_bit_to_l(image)
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0  # float pictures come as 0..1 or 0..255
        image = Image.fromarray(np.clip(np.rint(array * scale), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "RGBa", "PA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        flat = Image.new("RGBA", image.size, (*background, 255))
        flat.alpha_composite(image)
        return flat.convert("RGB")
    return image.convert("RGB")


def binary_mask(mask: Image.Image) -> Image.Image:
    """A mask picture → "L" with 0/255 (A1111: a transparent-backed RGBA mask uses its alpha, else its grey)."""
    mask = ImageOps.exif_transpose(mask) or mask
    if mask.mode in _SIXTEEN_BIT_MODES:
        mask = _sixteen_bit_to_l(mask)
    if mask.mode == "P":
        mask = mask.convert("RGBA")
    if mask.mode in ("RGBA", "LA") and mask.getextrema()[-1] != (255, 255):
        grey = mask.getchannel("A")
    else:
        grey = mask.convert("L")
    return grey.point(lambda value: 255 if value > 128 else 0)


def _lanczos(image: Image.Image, width: int, height: int) -> Image.Image:
    if image.size == (width, height):
        return image.copy()
    return image.resize((width, height), Image.Resampling.LANCZOS)


def resize_image(image: Image.Image, mode: int, width: int, height: int) -> Image.Image:
    """A1111's img2img resize modes: 0 (and 3) stretch, 1 cover then centre-crop, 2 fit then stretch the edges."""
    if mode in (0, 3):
        return _lanczos(image, width, height)
    ratio, source_ratio = width / height, image.width / image.height
    if mode == 1:
        # Cover the target, then cut the overflow equally from both sides.
        fit_w = width if ratio > source_ratio else image.width * height // image.height
        fit_h = height if ratio <= source_ratio else image.height * width // image.width
        resized = _lanczos(image, fit_w, fit_h)
        left, top = (fit_w - width) // 2, (fit_h - height) // 2
        return resized.crop((left, top, left + width, top + height))
    if mode != 2:
        raise UserInputError(f"unknown resize mode {mode}; use 0 to 3")
    fit_w = width if ratio < source_ratio else image.width * height // image.height
    fit_h = height if ratio >= source_ratio else image.height * width // image.width
    resized = _lanczos(image, fit_w, fit_h)
    canvas = Image.new(image.mode, (width, height))
    left, top = width // 2 - fit_w // 2, height // 2 - fit_h // 2
    canvas.paste(resized, (left, top))
    # The empty bands repeat the picture's outermost row/column, stretched across the band (A1111's fill).
    if ratio < source_ratio and top > 0:
        canvas.paste(resized.resize((width, top), box=(0, 0, width, 0)), (0, 0))
        bottom = height - (top + fit_h)
        if bottom > 0:
            canvas.paste(resized.resize((width, bottom), box=(0, fit_h, width, fit_h)), (0, top + fit_h))
    elif ratio > source_ratio and left > 0:
        canvas.paste(resized.resize((left, height), box=(0, 0, 0, height)), (0, 0))
        right = width - (left + fit_w)
        if right > 0:
            canvas.paste(resized.resize((right, height), box=(fit_w, 0, fit_w, height)), (left + fit_w, 0))
    return canvas


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGB PIL images of one size → (B, 3, H, W) float in [0, 1]."""
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0 for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
