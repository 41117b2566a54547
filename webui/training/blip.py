"""BLIP captioning from a transformers model folder in `models/BLIP/<name>/`, loaded offline."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from webui.errors import UserInputError
from webui.training.model_cache import LastLoaded
from webui.training.preprocess import on_white


def blip_hint(folder: Path) -> str:
    return (f"No BLIP model found. Put a transformers BLIP captioning model (for example the files of "
            f"Salesforce/blip-image-captioning-base: config.json, model.safetensors, preprocessor_config.json and "
            f"the tokenizer files) into {folder}/<name>/; nothing is downloaded.")


def list_blip_models(folder: Path) -> list[str]:
    """Sub-folders of `folder` whose config.json describes a BLIP model."""
    if not folder.is_dir():
        return []
    names = []
    for candidate in sorted(folder.iterdir()):
        config = candidate / "config.json"
        if not config.is_file():
            continue
        try:
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type", "")
        except (ValueError, OSError, AttributeError):
            continue
        if model_type == "blip":
            names.append(candidate.name)
    return names


@dataclass(frozen=True)
class CaptionSettings:
    """sd-scripts' defaults: greedy search, at most 75 tokens, at least 5."""

    num_beams: int = 1
    min_length: int = 5
    max_length: int = 75


class BlipCaptioner:
    """A loaded BLIP model and its processor on one device."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        import torch
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self.name = folder.name
        self.device = torch.device(device)
        try:
            # local_files_only: a missing file is an error here, never a download.
            processor: Any = BlipProcessor.from_pretrained(str(folder), local_files_only=True)
            model: Any = BlipForConditionalGeneration.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as error:
            raise UserInputError(f"BLIP model {folder.name} could not be loaded from {folder}: {error}") from None
        self.processor = processor
        self.model = model.to(self.device).eval()

    def caption(self, image: Image.Image, settings: CaptionSettings = CaptionSettings()) -> str:
        import torch

        inputs = self.processor(images=on_white(image), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            output = self.model.generate(pixel_values=inputs["pixel_values"], num_beams=settings.num_beams,
                                         min_length=settings.min_length, max_length=settings.max_length,
                                         do_sample=False)
        return str(self.processor.decode(output[0], skip_special_tokens=True)).strip()


def blip_cache(folder: Path, device: str = "cpu") -> LastLoaded[BlipCaptioner]:
    """The BLIP models in `folder`, loaded by name onto `device`, the last one kept."""
    return LastLoaded("BLIP model", folder, list_blip_models, lambda path: BlipCaptioner(path, device), blip_hint)
