"""WD14-style ONNX taggers (SmilingWolf layout) run with onnxruntime from `models/tagger/<name>/`."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
from PIL import Image

from webui.errors import UserInputError
from webui.training.model_cache import LastLoaded
from webui.training.preprocess import on_white

MODEL_FILE = "model.onnx"
TAGS_FILE = "selected_tags.csv"
DEFAULT_SIZE = 448  # used only when the model's input has no fixed height
DEFAULT_GENERAL_THRESHOLD = 0.35
DEFAULT_CHARACTER_THRESHOLD = 0.85
# Tags made of punctuation around an underscore are faces; their underscore is part of the picture.
KAOMOJI = frozenset({"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
                     ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"})


class TagCategory(IntEnum):
    GENERAL = 0
    CHARACTER = 4
    RATING = 9


def readable_tag(tag: str) -> str:
    """`long_hair` -> `long hair`; kaomoji such as `^_^` keep their underscore."""
    return tag if tag in KAOMOJI else tag.replace("_", " ")


def tagger_hint(folder: Path) -> str:
    return (f"No tagger found. Put a WD14 tagger (for example wd-v1-4-convnext-tagger-v2) into "
            f"{folder}/<name>/ as {MODEL_FILE} + {TAGS_FILE}; nothing is downloaded.")


def list_taggers(folder: Path) -> list[str]:
    """Names of the sub-folders of `folder` that hold a model.onnx and a selected_tags.csv."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if (p / MODEL_FILE).is_file() and (p / TAGS_FILE).is_file())


@dataclass(frozen=True)
class TagSettings:
    general_threshold: float = DEFAULT_GENERAL_THRESHOLD
    character_threshold: float = DEFAULT_CHARACTER_THRESHOLD
    excluded: frozenset[str] = frozenset()  # compared with underscores as spaces, lower case
    trigger: str = ""
    replace_underscores: bool = True
    escape_brackets: bool = False  # `(` -> `\(` so the caption can be pasted into an A1111 prompt

    @staticmethod
    def parse_excluded(text: str) -> frozenset[str]:
        return frozenset(normalise(part) for part in text.split(",") if part.strip())


def normalise(tag: str) -> str:
    """The form tags are compared in: trimmed, lower case, underscores as spaces (kaomoji kept)."""
    return readable_tag(tag.strip().lower())


@dataclass
class TagResult:
    """Probabilities above the thresholds, highest first; ratings always complete."""

    general: list[tuple[str, float]] = field(default_factory=list)
    character: list[tuple[str, float]] = field(default_factory=list)
    rating: dict[str, float] = field(default_factory=dict)

    def tags(self, settings: TagSettings) -> list[str]:
        """Trigger first, then character and general tags; the rating never goes into a caption."""
        out: list[str] = []
        seen: set[str] = set()
        candidates = ([settings.trigger] if settings.trigger.strip() else []) + \
            [tag for tag, _ in self.character] + [tag for tag, _ in self.general]
        for position, tag in enumerate(candidates):
            key = normalise(tag)
            is_trigger = position == 0 and bool(settings.trigger.strip())
            if not key or key in seen or (not is_trigger and key in settings.excluded):
                continue
            seen.add(key)
            text = tag.strip() if is_trigger else (readable_tag(tag) if settings.replace_underscores else tag)
            if settings.escape_brackets and not is_trigger:
                text = text.replace("(", "\\(").replace(")", "\\)")
            out.append(text)
        return out

    def caption(self, settings: TagSettings) -> str:
        return ", ".join(self.tags(settings))


def _read_tags(path: Path) -> tuple[list[str], list[TagCategory]]:
    names: list[str] = []
    categories: list[TagCategory] = []
    try:
        with io.open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                names.append(row["name"])
                categories.append(TagCategory(int(row["category"])))
    except (KeyError, ValueError, UnicodeDecodeError, csv.Error) as error:
        raise UserInputError(f"{path} is not a tagger tag list (tag_id,name,category,count): {error}") from None
    return names, categories


class OnnxTagger:
    """One loaded tagger: its onnxruntime session and its tag list (CSV row order = output order)."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime

        model, tags = folder / MODEL_FILE, folder / TAGS_FILE
        if not model.is_file() or not tags.is_file():
            raise UserInputError(f"{folder} needs {MODEL_FILE} and {TAGS_FILE}")
        self.name = folder.name
        self.names, self.categories = _read_tags(tags)
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in onnxruntime.get_available_providers()]
        try:
            self.session = onnxruntime.InferenceSession(str(model), providers=providers)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
            raise UserInputError(f"{model} could not be loaded: {error}") from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        height = model_input.shape[1] if len(model_input.shape) == 4 else None
        self.size = height if isinstance(height, int) and height > 0 else DEFAULT_SIZE
        outputs = self.session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != len(self.names):
            raise UserInputError(f"{model} has {outputs} outputs but {tags.name} lists {len(self.names)} tags")

    def input_array(self, image: Image.Image) -> np.ndarray:
        """White-padded square, resized to the model's size, BGR, NHWC float32 in 0..255 (no normalisation)."""
        rgb = on_white(image)
        side = max(rgb.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        resized = square.resize((self.size, self.size), Image.Resampling.BICUBIC)
        array = np.asarray(resized, dtype=np.float32)[:, :, ::-1]
        return np.ascontiguousarray(array)[None]

    def probabilities(self, images: Iterable[Image.Image]) -> np.ndarray:
        batch = np.concatenate([self.input_array(image) for image in images])
        return np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)

    def tag(self, image: Image.Image, settings: TagSettings) -> TagResult:
        scores = self.probabilities([image])[0]
        if len(scores) != len(self.names):
            raise UserInputError(f"Tagger {self.name} gave {len(scores)} scores for {len(self.names)} tags")
        result = TagResult()
        for name, category, score in zip(self.names, self.categories, scores.tolist(), strict=True):
            if category is TagCategory.RATING:
                result.rating[name] = score
            elif category is TagCategory.CHARACTER and score >= settings.character_threshold:
                result.character.append((name, score))
            elif category is TagCategory.GENERAL and score >= settings.general_threshold:
                result.general.append((name, score))
        result.general.sort(key=lambda item: -item[1])
        result.character.sort(key=lambda item: -item[1])
        return result


def tagger_cache(folder: Path) -> LastLoaded[OnnxTagger]:
    """The taggers in `folder`, loaded by name, the last one kept."""
    return LastLoaded("Tagger", folder, list_taggers, OnnxTagger, tagger_hint)
