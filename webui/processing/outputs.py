"""Save images and grids with A1111's folder layout, counters, file-name patterns and embedded infotext."""
from __future__ import annotations

import math
import os
import re
import string
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageColor

from webui.files import atomic_write_text
from webui.paths import resolve_inside
from webui.processing.png_info import exif_bytes_for, pnginfo_for

MAX_PART_LENGTH = 128  # A1111's --filenames-max-length default, per pattern part
MAX_NAME_BYTES = 255  # usual file-system limit for one name
PROMPT_WORDS = 8  # A1111's directories_max_prompt_words default
JPEG_QUALITY = 80
_COUNTER_ATTEMPTS = 500  # how many numbers to try before giving up, as A1111

_INVALID_CHARS = '#<>:"/\\|?*\n\r\t'
_INVALID_TRANSLATION = {ord(ch): "_" for ch in _INVALID_CHARS}
_NON_LETTERS = re.compile(r"[\s" + re.escape(string.punctuation) + r"]+")
_TAG_RE = re.compile(r"\[([^\[\]<>]+)(?:<([^<>]*)>)?\]")
_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}


def sanitize_filename_part(text: str, replace_spaces: bool = True, max_length: int = MAX_PART_LENGTH) -> str:
    """Make text usable inside a file name: no separators or reserved characters, no leading space,
    no trailing space or dot (Windows drops those), at most `max_length` characters."""
    if replace_spaces:
        text = text.replace(" ", "_")
    text = text.translate(_INVALID_TRANSLATION)
    return text.lstrip(" ")[:max_length].rstrip(" .")


def dated_folder(base: Path, now: datetime | None = None) -> Path:
    """`base/YYYY-MM-DD`: the folder A1111's default `[date]` directory pattern gives."""
    return Path(base) / (now or datetime.now()).strftime("%Y-%m-%d")


def _prompt_words(prompt: str) -> str:
    words = [word for word in _NON_LETTERS.split(prompt) if word] or ["empty"]
    return sanitize_filename_part(" ".join(words[:PROMPT_WORDS]), replace_spaces=False)


def apply_pattern(
    pattern: str, *, seed: int | None = None, tags: Mapping[str, object] | None = None, now: datetime | None = None
) -> str:
    """Expand a file-name pattern.

    Built in: `[seed]`, `[date]`, `[datetime]` / `[datetime<strftime format>]`, `[none]` (drops itself and the
    literal text just before it); with a "prompt" entry in `tags` also `[prompt]`, `[prompt_spaces]` and
    `[prompt_words]`. Any other `[name]` takes `tags[name]` (a None value or a missing name leaves the tag
    as written, as A1111 does). Tag values are sanitised; literal text only loses reserved characters.
    """
    moment = now or datetime.now()
    values: dict[str, object] = {key.lower(): value for key, value in (tags or {}).items()}
    prompt = values.get("prompt")
    if isinstance(prompt, str):
        values.setdefault("prompt_spaces", sanitize_filename_part(prompt, replace_spaces=False))
        values.setdefault("prompt_words", _prompt_words(prompt))
        values["prompt"] = sanitize_filename_part(prompt)
    if seed is not None:
        values.setdefault("seed", seed)
    values.setdefault("date", moment.strftime("%Y-%m-%d"))
    pieces: list[str] = []
    last = 0
    for match in _TAG_RE.finditer(pattern):
        literal = pattern[last:match.start()].translate(_INVALID_TRANSLATION)  # no path separators from text
        last = match.end()
        name, argument = match.group(1).lower(), match.group(2)
        if name == "none":
            continue  # A1111: nothing, and the text before it goes too
        if name == "datetime":
            replacement: object = moment.strftime(argument or "%Y%m%d%H%M%S")
        else:
            replacement = values.get(name)
        if replacement is None:
            pieces.append(literal + match.group(0).translate(_INVALID_TRANSLATION))
        else:
            pieces.append(literal + sanitize_filename_part(str(replacement), replace_spaces=False))
    pieces.append(pattern[last:].translate(_INVALID_TRANSLATION))
    return "".join(pieces)


def next_sequence_number(folder: Path, basename: str = "") -> int:
    """Highest counter among `folder`'s files (`NNNNN-…`, or `basename-NNNN…`) plus one; 0 for none."""
    prefix = f"{basename}-" if basename else ""
    highest = -1
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    for name in names:
        if not name.startswith(prefix):
            continue
        first = os.path.splitext(name[len(prefix):])[0].split("-")[0]
        if first.isdigit():
            highest = max(highest, int(first))
    return highest + 1


def _fit_stem(stem: str, extension: str) -> str:
    # Keep room for ".ext" (and a possible ".txt" sidecar) inside the file-system's name limit (in bytes).
    limit = MAX_NAME_BYTES - max(4, len(extension) + 1)
    while len(stem.encode("utf-8")) > limit:
        stem = stem[:-1]
    return stem


def _write_image(handle, image: Image.Image, fmt: str, infotext: str | None, quality: int, lossless: bool) -> None:
    if fmt == "PNG":
        image.save(handle, format=fmt, pnginfo=pnginfo_for(infotext))
        return
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # JPEG has no alpha or palette
    options: dict[str, object] = {"quality": quality, "exif": exif_bytes_for(infotext)}
    if fmt == "WEBP":
        options["lossless"] = lossless
    image.save(handle, format=fmt, **options)


def default_filename_pattern(save_to_dirs: bool) -> str:
    """A1111's pattern when "Images filename pattern" is empty: the seed, plus the prompt when not in subfolders."""
    return "[seed]" if save_to_dirs else "[seed]-[prompt_spaces]"


def save_image(
    image: Image.Image,
    folder: Path,
    *,
    seed: int | None,
    infotext: str | None,
    pattern: str = "[seed]",
    extension: str = "png",
    basename: str = "",
    suffix: str = "",
    tags: Mapping[str, object] | None = None,
    add_number: bool = True,
    save_txt: bool = False,
    jpeg_quality: int = JPEG_QUALITY,
    webp_lossless: bool = False,
    now: datetime | None = None,
) -> Path:
    """Write `image` into `folder` (created if needed) and return its path.

    Name: `NNNNN-<pattern>` (5 digits) or, with a `basename`, `<basename>-NNNN-<pattern>` (4 digits); the
    counter is the highest one already in the folder + 1. Files are created exclusively, so an existing file
    is never overwritten: if another writer takes the name first the next number is tried. `suffix` is added
    after the expanded pattern (e.g. "-before-highres-fix"). PNG gets a `parameters` text chunk; JPEG/WebP/
    AVIF an EXIF UserComment. `save_txt` also writes the infotext to a `.txt` file next to the image.
    Pass `dated_folder(base, now)` as `folder` for A1111's default `[date]` subfolders.
    """
    extension = extension.lower().lstrip(".")
    fmt = _FORMATS.get(extension)
    if fmt is None:
        raise ValueError(f"Unsupported image format {extension!r}; use one of: {', '.join(_FORMATS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    decoration = apply_pattern(pattern, seed=seed, tags=tags, now=now) + sanitize_filename_part(suffix)
    if not add_number and decoration == "":
        add_number = True  # a name needs something in it
    for attempt in range(_COUNTER_ATTEMPTS):
        if add_number:
            number = next_sequence_number(folder, basename) + attempt
            counter = f"{basename}-{number:04}" if basename else f"{number:05}"
            stem = f"{counter}-{decoration}" if decoration else counter
        else:
            stem = decoration if attempt == 0 else f"{decoration}-{attempt}"
        path = resolve_inside(folder, f"{_fit_stem(stem, extension)}.{extension}")
        try:
            handle = open(path, "xb")  # exclusive create: fails instead of overwriting
        except FileExistsError:
            continue
        try:
            with handle:
                _write_image(handle, image, fmt, infotext, jpeg_quality, webp_lossless)
        except BaseException:
            path.unlink(missing_ok=True)  # no half-written file left behind
            raise
        if save_txt and infotext is not None:
            atomic_write_text(path.with_suffix(".txt"), infotext)
        return path
    raise FileExistsError(f"Could not find a free file name in {folder} after {_COUNTER_ATTEMPTS} tries")


def grid_layout(count: int, rows: int | None = None, prevent_empty_spots: bool = False) -> tuple[int, int]:
    """(rows, cols) of A1111's default grid for `count` images.

    Default: rows = round(sqrt(count)) (Python rounding), cols = ceil(count / rows), so 3 images give 2x2 with
    one empty cell. `prevent_empty_spots` (A1111's grid_prevent_empty_spots) lowers rows until they divide
    count. An explicit `rows` > 0 is used as given (capped at count).
    """
    if count <= 0:
        raise ValueError("a grid needs at least one image")
    if rows is None or rows <= 0:
        if prevent_empty_spots:
            rows = math.floor(math.sqrt(count))
            while count % rows != 0:
                rows -= 1
        else:
            rows = round(math.sqrt(count))
    rows = min(rows, count)
    return rows, math.ceil(count / rows)


def make_grid(
    images: Sequence[Image.Image],
    rows: int | None = None,
    *,
    prevent_empty_spots: bool = False,
    background: str = "#ffffff",
) -> Image.Image:
    """Paste images row by row into one RGB image; cells are the largest width x height, smaller images are
    centred in their cell, and empty cells show `background` (A1111's grid_background_color default)."""
    rows, cols = grid_layout(len(images), rows, prevent_empty_spots)
    cell_w = max(image.width for image in images)
    cell_h = max(image.height for image in images)
    grid = Image.new("RGB", (cols * cell_w, rows * cell_h), ImageColor.getcolor(background, "RGB"))
    for index, image in enumerate(images):
        offset_x = (cell_w - image.width) // 2
        offset_y = (cell_h - image.height) // 2
        grid.paste(image, (index % cols * cell_w + offset_x, index // cols * cell_h + offset_y))
    return grid


def save_grid(
    grid: Image.Image,
    folder: Path,
    *,
    infotext: str | None,
    extension: str = "png",
    basename: str = "grid",
    save_txt: bool = False,
    now: datetime | None = None,
) -> Path:
    """Write a grid as `<basename>-NNNN.<ext>` (4-digit counter) into `folder`.

    A1111 puts grids in `outputs/txt2img-grids/<date>`: pass `dated_folder(outputs / "txt2img-grids", now)`.
    """
    return save_image(
        grid, folder, seed=None, infotext=infotext, pattern="", extension=extension, basename=basename,
        save_txt=save_txt, now=now,
    )
