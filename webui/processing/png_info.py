"""Read and write the infotext stored in images: PNG text chunks, JPEG/WebP EXIF UserComment, GIF comments."""
from __future__ import annotations

import json

from PIL import Image, PngImagePlugin

from webui.sampling.names import UnknownSamplerError, find_sampler

PARAMETERS_KEY = "parameters"
EXIF_IFD_TAG = 0x8769  # pointer to the Exif sub-IFD, where UserComment lives
USER_COMMENT_TAG = 0x9286

# EXIF UserComment starts with an 8-byte character-code header (EXIF 2.3, table 9).
_UNICODE_HEADER = b"UNICODE\x00"
_ASCII_HEADER = b"ASCII\x00\x00\x00"
_JIS_HEADER = b"JIS\x00\x00\x00\x00\x00"

# PIL info entries that describe the file format rather than user data; A1111 hides them too.
IGNORED_INFO_KEYS: frozenset[str] = frozenset({
    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "exif", "loop", "background", "timestamp",
    "duration", "progressive", "progression", "icc_profile", "chromaticity", "photoshop",
})


def pnginfo_for(infotext: str | None, extra: dict[str, str] | None = None) -> PngImagePlugin.PngInfo:
    """A PngInfo with a `parameters` chunk: tEXt when the text is Latin-1, else iTXt (UTF-8).

    `extra` adds further text chunks (same rule) after `parameters`.
    """
    info = PngImagePlugin.PngInfo()
    items: dict[str, str] = {}
    if infotext:
        items[PARAMETERS_KEY] = infotext
    items.update(extra or {})
    for key, text in items.items():
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            info.add_itxt(key, text)  # tEXt is Latin-1 only; iTXt carries UTF-8
        else:
            info.add_text(key, text)
    return info


def user_comment_bytes(text: str) -> bytes:
    """Encode text as an EXIF UserComment in the UNICODE character code (UTF-16 big-endian, as A1111 writes)."""
    return _UNICODE_HEADER + text.encode("utf-16-be")


def exif_bytes_for(infotext: str | None) -> bytes:
    """EXIF block (for JPEG/WebP `save(exif=…)`) holding the infotext as the Exif IFD's UserComment."""
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD_TAG)[USER_COMMENT_TAG] = user_comment_bytes(infotext or "")
    return exif.tobytes()


def decode_user_comment(data: bytes | str) -> str:
    """Decode an EXIF UserComment; unknown or missing headers fall back to UTF-8 with errors ignored."""
    if isinstance(data, str):
        return data
    header, body = data[:8], data[8:]
    if header == _UNICODE_HEADER:
        return _decode_utf16(body)
    if header == _ASCII_HEADER:
        return body.decode("ascii", errors="ignore")
    if header == _JIS_HEADER:
        return body.decode("shift_jis", errors="ignore")
    return data.decode("utf-8", errors="ignore")


def _decode_utf16(body: bytes) -> str:
    # The standard says big-endian, but some Windows tools write little-endian; a BOM or the position of
    # the zero bytes in ASCII-heavy text tells them apart.
    if body.startswith(b"\xff\xfe"):
        return body[2:].decode("utf-16-le", errors="ignore")
    if body.startswith(b"\xfe\xff"):
        return body[2:].decode("utf-16-be", errors="ignore")
    even_zeros = body[0::2].count(0)
    odd_zeros = body[1::2].count(0)
    encoding = "utf-16-le" if odd_zeros > even_zeros else "utf-16-be"
    return body.decode(encoding, errors="ignore").rstrip("\x00")


def _exif_comment(raw_exif: bytes) -> str:
    exif = Image.Exif()
    try:
        exif.load(raw_exif)
        comment = exif.get_ifd(EXIF_IFD_TAG).get(USER_COMMENT_TAG, b"")
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not stop us reading the rest
        return ""
    return decode_user_comment(comment) if comment else ""


def read_png_parameters(image: Image.Image) -> tuple[str | None, dict]:
    """The infotext stored in an image, and its other info items.

    Sources, as A1111 reads them: the PNG `parameters` text chunk (tEXt or iTXt); for JPEG/WebP the EXIF
    UserComment (it wins over `parameters` when non-empty); for GIF the `comment`. NovelAI PNGs are converted
    to an A1111 infotext. Format-describing items (IGNORED_INFO_KEYS) are left out of the returned dict.
    """
    items = dict(image.info or {})
    infotext = items.pop(PARAMETERS_KEY, None)
    if "exif" in items:
        raw_exif = items.pop("exif")
        comment = _exif_comment(bytes(raw_exif)) if isinstance(raw_exif, (bytes, bytearray)) else ""
        if comment:
            infotext = comment
    elif "comment" in items:
        comment = items["comment"]
        infotext = comment.decode("utf-8", errors="ignore") if isinstance(comment, bytes) else comment
    for key in IGNORED_INFO_KEYS:
        items.pop(key, None)
    if items.get("Software") == "NovelAI":
        infotext = _from_novelai(items, image.size) or infotext
    if isinstance(infotext, bytes):
        infotext = infotext.decode("utf-8", errors="ignore")
    return infotext, items


def _from_novelai(items: dict, size: tuple[int, int]) -> str | None:
    # NovelAI keeps the prompt in "Description" and the settings as JSON in "Comment".
    try:
        settings = json.loads(items["Comment"])
        try:
            sampler = find_sampler(str(settings["sampler"])).name
        except UnknownSamplerError:
            sampler = "Euler a"
        return (
            f"{items['Description']}\nNegative prompt: {settings['uc']}\n"
            f"Steps: {settings['steps']}, Sampler: {sampler}, CFG scale: {settings['scale']}, "
            f"Seed: {settings['seed']}, Size: {size[0]}x{size[1]}, Clip skip: 2, ENSD: 31337"
        )
    except (KeyError, TypeError, ValueError):
        return None  # not the layout we know: leave the text as found
