"""Caption a training folder with a tagger or BLIP model: one function per image, and a folder run with progress."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from PIL import Image

from webui.errors import UserInputError
from webui.files import atomic_write_text
from webui.training.blip import CaptionSettings
from webui.training.interrogate import Interrogator
from webui.training.preprocess import CAPTION_SUFFIX, image_files, read_image
from webui.training.tagger import TagSettings
from webui.training.tags import join_tags, read_caption

Captioner = Callable[[Image.Image], str]


class ExistingCaption(str, Enum):
    OVERWRITE = "overwrite"
    APPEND = "append"  # new tags after the old ones, without repeating any
    SKIP = "skip"


def make_captioner(interrogator: Interrogator, model: str, settings: TagSettings,
                   blip_settings: CaptionSettings | None = None) -> Captioner:
    """Tagger (by folder name) or BLIP model (by folder name) as image -> caption, trigger word first."""
    if model in interrogator.taggers.names():
        tagger = interrogator.taggers.get(model)
        return lambda image: tagger.tag(image, settings).caption(settings)
    if model in interrogator.blip.names():
        captioner = interrogator.blip.get(model)
        trigger, lengths = settings.trigger.strip(), blip_settings or CaptionSettings()
        return lambda image: join_tags([part for part in (trigger, captioner.caption(image, lengths)) if part])
    raise UserInputError(f"No tagger or BLIP model called {model!r}. "
                         f"{interrogator.taggers.hint()} {interrogator.blip.hint()}")


@dataclass
class CaptionReport:
    written: int = 0
    kept: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Captioned {self.written} image(s); kept {self.kept} existing caption(s); "
                 f"{len(self.failed)} failed."]
        return "\n".join(lines + [f"- {name}: {why}" for name, why in self.failed])


def image_folders(root: Path) -> list[Path]:
    """`root` itself when it holds images, else its sub-folders that do (a whole train_data_dir at once)."""
    if image_files(root):
        return [root]
    return [folder for folder in sorted(root.iterdir()) if folder.is_dir() and image_files(folder)]


def caption_folder(root: Path, captioner: Captioner, existing: ExistingCaption = ExistingCaption.OVERWRITE,
                   progress: Callable[[int, int, str], None] | None = None) -> CaptionReport:
    """Write `<image>.txt` for every image under `root`; unreadable images are listed, never stop the run."""
    images = [image for folder in image_folders(root) for image in image_files(folder)]
    if not images:
        raise UserInputError(f"No images in {root} or its sub-folders")
    report = CaptionReport()
    for index, path in enumerate(images):
        if progress:
            progress(index, len(images), path.name)
        caption_file = path.with_suffix(CAPTION_SUFFIX)
        try:
            old = read_caption(caption_file)
            if old and existing is ExistingCaption.SKIP:
                report.kept += 1
                continue
            tags = [tag.strip() for tag in captioner(read_image(path)).split(",") if tag.strip()]
        except (ValueError, OSError) as error:  # UserInputError (a non-UTF-8 caption) is a ValueError too
            report.failed.append((path.name, str(error)))
            continue
        if existing is ExistingCaption.APPEND:
            known = {tag.lower() for tag in old}
            tags = old + [tag for tag in tags if tag.lower() not in known]
        atomic_write_text(caption_file, join_tags(tags) + "\n", keep_backup=True)
        report.written += 1
    if progress:
        progress(len(images), len(images), "done")
    return report
