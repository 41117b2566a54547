"""Extra-network cards (LoRA, Textual Inversion, Checkpoints): render, search, subfolder filter, set preview."""
from __future__ import annotations

import base64
import html
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from PIL import Image

from webui.conditioning.embeddings import EMBEDDING_SUFFIXES
from webui.errors import UserInputError
from webui.files import atomic_target
from webui.networks.library import find_preview
from webui.paths import model_files
from webui.processing.runtime import Runtime
from webui.ui.messages import ui_message, ui_text

THUMBNAIL = (150, 200)
ALL_FOLDERS = "All"
FAMILY_LABELS = MappingProxyType({"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL", "sdxl-refiner": "SDXL", "unknown": "?"})


def _family_label(family: str | None) -> str:
    return FAMILY_LABELS.get(family or "unknown", family or "?")


@dataclass(frozen=True)
class Card:
    """What one card shows; `insert` is the text a click puts into the prompt."""

    kind: str  # "lora" | "embedding" | "checkpoint"
    name: str
    folder: str
    insert: str
    badge: str
    incompatible: bool
    hover: str
    preview: Path | None


def format_weight(weight: float) -> str:
    return f"{weight:g}"


def lora_insert_text(alias: str, weight: float, activation_text: str) -> str:
    """`<lora:alias:weight>` then the card's activation text, as A1111's card click inserts it."""
    tag = f"<lora:{alias}:{format_weight(weight)}>"
    return f"{tag}, {activation_text.strip()}" if activation_text.strip() else tag


def _folder_of(path: Path, roots: list[Path]) -> str:
    for root in roots:
        try:
            relative = path.parent.resolve().relative_to(Path(root).resolve())
        except ValueError:
            continue
        return "" if str(relative) == "." else relative.as_posix()
    return ""


def current_family(runtime: Runtime) -> str | None:
    loaded = runtime.models.loaded
    return loaded.architecture.family if loaded is not None else None


def lora_cards(runtime: Runtime, default_weight: float) -> list[Card]:
    family = current_family(runtime)
    cards = []
    for entry in runtime.loras.entries():
        try:
            info = runtime.loras.info(entry.name)
        except Exception as error:  # a broken file gets a card saying so instead of breaking the panel
            folder = _folder_of(entry.path, runtime.loras.roots)
            cards.append(Card("lora", entry.name, folder, f"<lora:{entry.alias}:1>",
                              "!", False, ui_text("Could not read: {error}", error=ui_message(str(error))), None))
            continue
        weight = info.user.preferred_weight or default_weight
        known = info.family in ("sd1", "sd2", "sdxl")
        family_mismatch = known and family is not None and not family.startswith(info.family)
        lines = []
        if info.trigger_words:
            lines.append(ui_text("Trigger words: {words}", words=", ".join(info.trigger_words)))
        if info.network_dim or info.network_alpha:
            lines.append(ui_text("dim {dim} / alpha {alpha}", dim=info.network_dim or "?",
                                 alpha=info.network_alpha or "?"))
        if info.base_model_version:
            lines.append(ui_text("Base: {version}", version=info.base_model_version))
        if family_mismatch:
            lines.append(ui_text("Made for {family}; the loaded model is {loaded}", family=_family_label(info.family),
                                      loaded=_family_label(family)))
        for text in (info.user.notes, info.user.description):
            if text:
                lines.append(text)
        cards.append(Card("lora", info.name, _folder_of(info.path, runtime.loras.roots),
                          lora_insert_text(info.alias, weight, info.user.activation_text),
                          FAMILY_LABELS.get(info.family, info.family), family_mismatch, "\n".join(lines), info.preview))
    return cards


def embedding_cards(runtime: Runtime) -> list[Card]:
    folder = runtime.embeddings.folder
    if not folder.is_dir():
        return []
    cards = []
    for path in sorted(model_files(folder, EMBEDDING_SUFFIXES), key=lambda p: p.name.lower()):
        if ".preview." not in path.name:
            cards.append(Card("embedding", path.stem, _folder_of(path, [folder]), path.stem, "TI", False,
                              ui_text("Embedding {file}", file=path.name), find_preview(path)))
    return cards


def checkpoint_cards(runtime: Runtime) -> list[Card]:
    cards = []
    for info in runtime.registry.checkpoints():
        folder = info.name.rpartition("/")[0]
        cards.append(Card("checkpoint", info.name, folder, "", "CKPT", False,
                          ui_text("Click to use {name}", name=info.name), find_preview(info.path)))
    return cards


class ThumbnailCache:
    """Card previews as small JPEG data URLs, re-made only when the file changes (owned by one UI instance)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], str] = {}

    def data_url(self, path: Path) -> str | None:
        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            return None
        with self._lock:
            if key not in self._cache:
                try:
                    with Image.open(path) as opened:
                        image = opened.convert("RGB")
                        image.thumbnail((THUMBNAIL[0] * 2, THUMBNAIL[1] * 2))
                        buffer = io.BytesIO()
                        image.save(buffer, format="JPEG", quality=85)
                except OSError:
                    return None
                self._cache[key] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
            return self._cache[key]


def filter_cards(cards: list[Card], search: str, folder: str) -> list[Card]:
    """Case-insensitive search over name, folder and hover text; `All` shows every subfolder."""
    words = search.lower().split()
    chosen = []
    for card in cards:
        if folder and folder != ALL_FOLDERS and card.folder != folder:
            continue
        haystack = f"{card.name} {card.folder} {card.hover}".lower()
        if all(word in haystack for word in words):
            chosen.append(card)
    return chosen


def folder_choices(cards: list[Card]) -> list[str]:
    return [ALL_FOLDERS, *sorted({card.folder for card in cards if card.folder})]


def render_cards(cards: list[Card], prefix: str, thumbnails: ThumbnailCache, empty: str) -> str:
    if not cards:
        return f"<div class='sdw-empty'>{html.escape(empty)}</div>"
    parts = ["<div class='sdw-cards'>"]
    edit_title = html.escape(ui_text("Edit metadata and view training metadata"), quote=True)
    preview_title = html.escape(ui_text("Set preview from the selected image"), quote=True)
    for card in cards:
        url = thumbnails.data_url(card.preview) if card.preview else None
        style = f" style=\"background-image: url('{url}')\"" if url else ""
        classes = "sdw-card" + (" incompatible" if card.incompatible else "")
        attrs = " ".join(f'data-{key}="{html.escape(value, quote=True)}"' for key, value in
                         (("prefix", prefix), ("kind", card.kind), ("name", card.name), ("insert", card.insert)))
        edit = (f"<span class='sdw-edit-metadata' title='{edit_title}'>🛠</span>" if card.kind == "lora" else "")
        action = "" if card.kind == "checkpoint" else (
            f"<div class='actions'><span class='sdw-set-preview' title='{preview_title}'>▣</span>{edit}</div>")
        initial = html.escape(card.name[:1].upper() or "?")
        placeholder = "" if url else f"<div class='placeholder'>{initial}</div>"
        parts.append(
            f"<div class='{classes}' {attrs} title=\"{html.escape(card.hover, quote=True)}\"{style}>{placeholder}"
            f"<span class='badge'>{html.escape(card.badge)}</span>{action}"
            f"<div class='info'>{html.escape(card.hover).replace(chr(10), '<br>')}</div>"
            f"<div class='name'>{html.escape(card.name)}</div></div>")
    parts.append("</div>")
    return "".join(parts)


def set_card_preview(runtime: Runtime, kind: str, name: str, image: Image.Image) -> Path:
    """Write `<stem>.preview.png` next to the network file (A1111's "replace preview")."""
    if kind == "lora":
        path = runtime.loras.resolve(name).path
    elif kind == "embedding":
        matches = [p for p in model_files(runtime.embeddings.folder, EMBEDDING_SUFFIXES) if p.stem == name]
        if not matches:
            raise UserInputError(f"No embedding named {name!r}")
        path = matches[0]
    else:
        raise UserInputError(f"Cannot set a preview for {kind!r}")
    target = path.with_suffix(".preview.png")
    for old in (path.with_suffix(".png"),):  # a plain <stem>.png would win over the new preview; keep it as .bak
        if old.is_file():
            old.replace(old.with_suffix(".png.bak"))
    with atomic_target(target) as partial:  # a crash mid-write never leaves a broken preview
        image.convert("RGB").save(partial, format=Image.registered_extensions().get(target.suffix.lower(), "PNG"))
    return target
