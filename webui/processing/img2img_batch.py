"""A1111's img2img Batch: every picture of a folder (with same-name masks when given) through img2img."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from webui.errors import UserInputError
from webui.files import atomic_target
from webui.paths import resolve_inside
from webui.processing.img2img import img2img
from webui.processing.jobs import JobState
from webui.processing.png_info import pnginfo_for
from webui.processing.request import Img2ImgRequest, make_request
from webui.processing.results import GenerationResult
from webui.processing.runtime import Runtime

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class BatchFolders:
    """Where the pictures come from and go. `output_dir` is relative to (and kept inside) the data folder, as the
    output-directory setting is; empty means the usual outputs/img2img-images. `mask_dir` empty: no masks."""

    input_dir: str
    output_dir: str = ""
    mask_dir: str = ""


def _pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _open(path: Path, mode: str) -> Image.Image:
    with Image.open(path) as opened:
        return opened.convert(mode)


def img2img_batch(fields: Mapping[str, Any], folders: BatchFolders, runtime: Runtime,
                  job: JobState | None = None) -> GenerationResult:
    """`fields` are Img2ImgRequest values but the pictures; each input picture is one img2img request.

    Results are written as <input stem>[-N].png (infotext included) into the output folder, or saved the usual way
    when there is none. Checks every folder before the first picture, so a typo costs no generation.
    """
    source = Path(folders.input_dir or "").expanduser()
    if not folders.input_dir or not source.is_dir():
        raise UserInputError(f"Batch: input directory {folders.input_dir!r} does not exist")
    files = _pictures(source)
    if not files:
        raise UserInputError(f"Batch: no images in {source}")
    target = resolve_inside(runtime.folders.data, folders.output_dir) if folders.output_dir else None
    masks = Path(folders.mask_dir).expanduser() if folders.mask_dir else None
    if masks is not None and not masks.is_dir():
        raise UserInputError(f"Batch: mask directory {folders.mask_dir!r} does not exist")
    total = GenerationResult()
    for path in files:
        mask = None
        if masks is not None:
            same_name = [m for m in _pictures(masks) if m.stem == path.stem]
            mask = _open(same_name[0], "L") if same_name else None
        request = make_request(Img2ImgRequest, {**fields, "init_images": [_open(path, "RGB")], "mask": mask,
                                                "save_images": target is None})
        result = img2img(request, runtime, job)
        for index, item in enumerate(result.items):
            if target is not None:
                written = target / f"{path.stem}{f'-{index}' if index else ''}.png"
                with atomic_target(written) as partial:
                    item.image.save(partial, format="PNG", pnginfo=pnginfo_for(item.infotext))
                item.path = str(written)
        total.extend(result)
        if result.interrupted:
            break
    return total
