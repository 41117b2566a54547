"""Prepare training images: read, crop to the training size, flip and split, and write kohya's DreamBooth layout."""
from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from PIL import Image, ImageOps

from webui.errors import UserInputError
from webui.files import atomic_target, atomic_write_text
from webui.training.focal import centre_crop, cover_scale, focal_crop, window_at

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # what kohya's loader picks up from a subset folder
MAX_INPUT_PIXELS = 8192 * 8192
CAPTION_SUFFIX = ".txt"


class CropMode(str, Enum):
    FOCAL = "focal point"  # faces, then entropy and edges
    CENTRE = "centre"
    NONE = "keep aspect (resize only)"  # for bucketed training: scale the long side down, never crop


@dataclass(frozen=True)
class PreprocessOptions:
    width: int = 512
    height: int = 512
    crop: CropMode = CropMode.FOCAL
    detect_faces: bool = True
    flip_copies: bool = False
    split_oversized: bool = False
    split_threshold: float = 0.5  # split when target side / image side along the long axis is below this
    split_overlap: float = 0.2
    min_side: int = 64  # smaller images are skipped as too small to teach anything


@dataclass
class PreprocessReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    captioned: int = 0

    def summary(self) -> str:
        lines = [f"Wrote {len(self.written)} image(s) ({self.captioned} caption(s)); skipped {len(self.skipped)}."]
        lines += [f"- skipped {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)


def subset_folder_name(repeats: int, trigger: str, class_tokens: str) -> str:
    """kohya's `<repeats>_<trigger> <class>` folder name."""
    if repeats < 1:
        raise UserInputError("Repeats must be at least 1")
    tokens = " ".join(part.strip() for part in (trigger, class_tokens) if part and part.strip())
    if not tokens:
        raise UserInputError("Give a trigger word or class tokens: they name the image folder (e.g. 10_sks dog)")
    if re.search(r"[\\/:*?\"<>|]", tokens) or tokens in (".", ".."):
        raise UserInputError(f"{tokens!r} cannot be a folder name")
    return f"{repeats}_{tokens}"


def image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    if not folder.is_dir():
        raise UserInputError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path) -> Image.Image:
    """An RGB image with EXIF rotation applied and transparency put onto white; raises ValueError when unusable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(path.read_bytes())) as opened:
                if opened.width * opened.height > MAX_INPUT_PIXELS:
                    raise ValueError(f"too large ({opened.width}x{opened.height})")
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except (OSError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"unreadable image ({type(error).__name__}: {error})") from None
    return on_white(image)


def on_white(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def split_crops(image: Image.Image, width: int, height: int, threshold: float, overlap: float) -> list[Image.Image]:
    """Evenly spaced, overlapping target-sized crops along the long axis of an oversized image; [] if not oversized.

    N = ceil((L - T*overlap) / (T*(1 - overlap))) crops for a scaled long side L and target side T (A1111's rule).
    """
    scaled = cover_scale(image, width, height)
    along_x = scaled.width / width > scaled.height / height
    long_side, target = (scaled.width, width) if along_x else (scaled.height, height)
    if target / long_side >= threshold:
        return []
    count = max(2, math.ceil((long_side - target * overlap) / (target * (1 - overlap))))
    step = (long_side - target) / (count - 1)
    crops = []
    for index in range(count):
        offset = round(index * step)
        centre = (offset + width / 2, scaled.height / 2) if along_x else (scaled.width / 2, offset + height / 2)
        crops.append(scaled.crop(window_at(centre, scaled.size, width, height)))
    return crops


def fit_inside(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale down (never up) so the image fits the training area; bucketing handles the aspect ratio later."""
    scale = min(1.0, math.sqrt(width * height / (image.width * image.height)))
    if scale >= 1.0:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def prepare(image: Image.Image, options: PreprocessOptions) -> list[Image.Image]:
    """The training images made from one source image (crops, then their flipped copies)."""
    if options.crop is CropMode.NONE:
        results = [fit_inside(image, options.width, options.height)]
    else:
        results = (split_crops(image, options.width, options.height, options.split_threshold, options.split_overlap)
                   if options.split_oversized else [])
        if not results:
            results = [focal_crop(image, options.width, options.height, faces=options.detect_faces)
                       if options.crop is CropMode.FOCAL else centre_crop(image, options.width, options.height)]
    if options.flip_copies:
        results += [ImageOps.mirror(result) for result in results]
    return results


def _next_number(folder: Path) -> int:
    numbers = [int(p.stem) for p in folder.glob("*") if p.stem.isdigit() and p.suffix.lower() in IMAGE_SUFFIXES]
    return max(numbers, default=0) + 1


def preprocess_images(sources: Iterable[Path], out_root: Path, subset: str, options: PreprocessOptions,
                      captioner: Callable[[Image.Image], str] | None = None,
                      progress: Callable[[int, int, str], None] | None = None) -> PreprocessReport:
    """Write each usable source as `<out_root>/<subset>/NNNN.png` (+ NNNN.txt from `captioner`).

    Unreadable, corrupt or too-small files are listed in the report and skipped; the job always runs to the end.
    Numbering continues after the files already in the folder, so a second run adds instead of overwriting.
    """
    paths: Sequence[Path] = list(sources)
    folder = out_root / subset
    folder.mkdir(parents=True, exist_ok=True)
    number = _next_number(folder)
    report = PreprocessReport()
    for index, path in enumerate(paths):
        if progress:
            progress(index, len(paths), path.name)
        try:
            image = read_image(path)
        except (ValueError, OSError) as error:
            report.skipped.append((path.name, str(error)))
            continue
        if min(image.size) < options.min_side:
            report.skipped.append((path.name, f"too small ({image.width}x{image.height}, "
                                              f"need at least {options.min_side} px a side)"))
            continue
        results = prepare(image, options)
        originals = len(results) // 2 if options.flip_copies else len(results)
        captions: list[str] = []
        for position, result in enumerate(results):
            target = folder / f"{number:04d}.png"
            number += 1
            with atomic_target(target) as partial:
                result.save(partial, format="PNG")
            report.written.append(target)
            if captioner is not None:
                # A flipped copy shows the same things as its original, so it gets the original's caption.
                if position < originals:
                    captions.append(captioner(result))
                atomic_write_text(target.with_suffix(CAPTION_SUFFIX), captions[position % originals] + "\n")
                report.captioned += 1
    if progress:
        progress(len(paths), len(paths), "done")
    return report
