"""Interrogate one image (A1111's "clip" / "deepdanbooru" names, or a tagger or BLIP folder name) into a prompt."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from webui.errors import UserInputError
from webui.processing.runtime import Runtime
from webui.training.blip import BlipCaptioner, CaptionSettings, blip_cache
from webui.training.model_cache import LastLoaded
from webui.training.tagger import OnnxTagger, TagSettings, tagger_cache

CLIP = "clip"  # A1111: BLIP caption (+ CLIP ranking there); here the BLIP caption
DEEPDANBOORU = "deepdanbooru"  # A1111: DeepDanbooru tags; here the WD14 tagger that replaced it
# A1111's interrogate length limits for BLIP; tags as a prompt: spaces, escaped brackets.
INTERROGATE_CAPTION = CaptionSettings(num_beams=1, min_length=24, max_length=48)
INTERROGATE_TAGS = TagSettings(escape_brackets=True)


class UnknownInterrogatorError(UserInputError):
    """The model name names no interrogator, or the one it names has no model files (A1111 answers 404)."""


class Interrogator:
    """The taggers and BLIP models of the app's folders, one of each kind kept loaded."""

    def __init__(self, tagger_folder: Path, blip_folder: Path, device: str = "cpu") -> None:
        self.taggers: LastLoaded[OnnxTagger] = tagger_cache(tagger_folder)
        self.blip: LastLoaded[BlipCaptioner] = blip_cache(blip_folder, device)

    def model_names(self) -> list[str]:
        taggers, blips = self.taggers.names(), self.blip.names()
        return ([CLIP] if blips else []) + ([DEEPDANBOORU] if taggers else []) + taggers + blips

    def interrogate(self, image: Image.Image, model: str = CLIP) -> str:
        name = (model or CLIP).strip()
        taggers, blips = self.taggers.names(), self.blip.names()
        if name.lower() == DEEPDANBOORU:
            if not taggers:
                raise UnknownInterrogatorError(self.taggers.hint())
            name = taggers[0]
        elif name.lower() == CLIP:
            if not blips:
                raise UnknownInterrogatorError(self.blip.hint())
            name = blips[0]
        if name in taggers:
            return self.taggers.get(name).tag(image, INTERROGATE_TAGS).caption(INTERROGATE_TAGS)
        if name in blips:
            return self.blip.get(name).caption(image, INTERROGATE_CAPTION)
        known = ", ".join(self.model_names()) or "none installed"
        raise UnknownInterrogatorError(f"Model not found: {model!r} (available: {known})")


def app_interrogator(runtime: Runtime) -> Interrogator:
    """The app's one Interrogator (one tagger and one BLIP model kept loaded), shared by the API, the Interrogate
    button and the Dataset/Tagging tabs."""
    folders, device = runtime.folders, str(runtime.models.device.device)
    return runtime.service("interrogator", lambda: Interrogator(folders.taggers, folders.blip, device))
