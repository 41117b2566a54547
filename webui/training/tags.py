"""Caption (.txt) editing for a training folder: per-image edits, batch operations, frequency table, search."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from webui.errors import UserInputError
from webui.files import atomic_write_text
from webui.training.preprocess import CAPTION_SUFFIX, IMAGE_SUFFIXES


def split_tags(text: str) -> list[str]:
    """Comma-separated tags of a caption's first line (the only line kohya reads), trimmed, empties dropped."""
    first_line = text.splitlines()[0] if text.strip() else ""
    return [tag.strip() for tag in first_line.split(",") if tag.strip()]


def join_tags(tags: Iterable[str]) -> str:
    return ", ".join(tags)


def _key(tag: str) -> str:
    return tag.strip().lower()


@dataclass
class CaptionEntry:
    """One image and its tags as edited; `original` is what the file held when loaded."""

    image: Path
    tags: list[str]
    original: list[str] = field(default_factory=list)

    @property
    def caption_file(self) -> Path:
        return self.image.with_suffix(CAPTION_SUFFIX)

    @property
    def changed(self) -> bool:
        return self.tags != self.original


class Position(str, Enum):
    FRONT = "front"
    BACK = "back"


class Match(str, Enum):
    ALL = "all"  # AND
    ANY = "any"  # OR


def read_caption(path: Path) -> list[str]:
    """The tags of a caption file; [] when there is none. A file that isn't UTF-8 is a clear error."""
    if not path.is_file():
        return []
    try:
        return split_tags(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise UserInputError(f"{path.name} is not UTF-8 text; save it as UTF-8 and reload") from None


def load_captions(folder: Path) -> list[CaptionEntry]:
    """Every image directly in `folder` with the tags of its `.txt` caption (none when it has no caption)."""
    if not folder.is_dir():
        raise UserInputError(f"{folder} is not a folder")
    entries = []
    for image in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        tags = read_caption(image.with_suffix(CAPTION_SUFFIX))
        entries.append(CaptionEntry(image, list(tags), list(tags)))
    return entries


def save_captions(entries: Iterable[CaptionEntry]) -> int:
    """Write the changed captions (each atomically, the previous file kept as `<name>.txt.bak`); returns how many."""
    written = 0
    for entry in entries:
        if not entry.changed:
            continue
        atomic_write_text(entry.caption_file, join_tags(entry.tags) + "\n", keep_backup=True)
        entry.original = list(entry.tags)
        written += 1
    return written


def set_caption(entry: CaptionEntry, text: str) -> None:
    """Per-image edit: the text replaces the image's tags."""
    entry.tags = split_tags(text)


def _dedupe(tags: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for tag in tags:
        if _key(tag) not in seen:
            seen.add(_key(tag))
            out.append(tag)
    return out


def add_tags(entries: Iterable[CaptionEntry], tags: list[str], position: Position = Position.BACK) -> None:
    """Add tags each image lacks, at the front (in the order given) or at the back."""
    for entry in entries:
        present = {_key(tag) for tag in entry.tags}
        missing = [tag for tag in _dedupe(tags) if _key(tag) not in present]
        entry.tags = missing + entry.tags if position is Position.FRONT else entry.tags + missing


def remove_tags(entries: Iterable[CaptionEntry], tags: list[str]) -> None:
    unwanted = {_key(tag) for tag in tags}
    for entry in entries:
        entry.tags = [tag for tag in entry.tags if _key(tag) not in unwanted]


def replace_tag(entries: Iterable[CaptionEntry], old: str, new: str) -> None:
    """Rename a tag in place (an empty `new` removes it); a rename onto an existing tag merges the two."""
    for entry in entries:
        entry.tags = _dedupe([new.strip() if _key(tag) == _key(old) else tag for tag in entry.tags
                              if new.strip() or _key(tag) != _key(old)])


def move_to_front(entries: Iterable[CaptionEntry], tags: list[str], *, add_missing: bool = False) -> None:
    """Put these tags first, in the order given (trigger word first, for `keep_tokens`)."""
    wanted = _dedupe(tags)
    for entry in entries:
        present = {_key(tag): tag for tag in entry.tags}
        front = [present.get(_key(tag), tag) for tag in wanted if add_missing or _key(tag) in present]
        front_keys = {_key(tag) for tag in front}
        entry.tags = front + [tag for tag in entry.tags if _key(tag) not in front_keys]


def frequency(entries: Iterable[CaptionEntry]) -> list[tuple[str, int]]:
    """How many images carry each tag (case-insensitive), most frequent first, then by name."""
    counts: Counter[str] = Counter()
    for entry in entries:
        counts.update({_key(tag) for tag in entry.tags})
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def search(entries: list[CaptionEntry], tags: list[str], match: Match = Match.ALL,
           text: str = "") -> list[CaptionEntry]:
    """Images carrying all (or any) of `tags`, whose caption or file name also contains `text` if given."""
    wanted = {_key(tag) for tag in tags if tag.strip()}
    needle = text.strip().lower()
    found = []
    for entry in entries:
        keys = {_key(tag) for tag in entry.tags}
        if wanted and not (wanted <= keys if match is Match.ALL else wanted & keys):
            continue
        if needle and needle not in join_tags(entry.tags).lower() and needle not in entry.image.name.lower():
            continue
        found.append(entry)
    return found


def keep_tokens_prefix(entries: Iterable[CaptionEntry], keep_tokens: int) -> Counter[str]:
    """The first `keep_tokens` tags of each caption, counted: one shared prefix means shuffling keeps the trigger."""
    return Counter(join_tags(entry.tags[:keep_tokens]) for entry in entries if keep_tokens > 0)
