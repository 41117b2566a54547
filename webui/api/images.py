"""API images: base64 (bare or data URL) → PIL within size limits; PIL → base64 PNG with its infotext."""
from __future__ import annotations

import base64
import binascii
import io
import warnings

from PIL import Image, UnidentifiedImageError

from webui.api.errors import ApiError
from webui.processing.png_info import pnginfo_for
from webui.processing.request import MAX_SIDE

MAX_PIXELS = MAX_SIDE * MAX_SIDE


def decode_image(data: str, field: str = "image") -> Image.Image:
    """Decode one request image; 422 for anything that is not a readable image, 413 when it is too big."""
    if not isinstance(data, str) or not data.strip():
        raise ApiError(422, f"{field}: no image data", "InvalidImage")
    text = data.strip()
    if text.startswith(("http://", "https://")):
        raise ApiError(422, f"{field}: image URLs are not fetched (this app works offline); send base64 data",
                       "InvalidImage")
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ApiError(422, f"{field}: data URL is not base64", "InvalidImage")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{field}: malformed base64", "InvalidImage") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                raise ApiError(413, f"{field}: {width}x{height} is too large (at most {MAX_SIDE} px a side)",
                               "ImageTooLarge")
            image.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, f"{field}: image is too large to decode", "ImageTooLarge") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ApiError(422, f"{field}: not a readable image", "InvalidImage") from None
    return image


def encode_png(image: Image.Image, infotext: str | None = None, extra: dict[str, str] | None = None) -> str:
    """Base64 PNG without a data: prefix, carrying the infotext as the `parameters` chunk (as A1111 answers).

    `extra` adds further text chunks (the extras' `postprocessing` text, for instance).
    """
    buffer = io.BytesIO()
    texts = {key: value for key, value in (extra or {}).items() if isinstance(value, str)}
    image.save(buffer, format="PNG", pnginfo=pnginfo_for(infotext, texts) if infotext or texts else None)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
