"""Prompt styles in A1111's styles.csv format: read, apply (with the `{prompt}` placeholder), save and delete."""
from __future__ import annotations

import csv
import io
import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from webui.errors import UserInputError
from webui.files import atomic_write_text, read_with_backup
from webui.paths import REPO_ROOT

log = logging.getLogger(__name__)

DEFAULT_STYLES_FILE = REPO_ROOT / "webui" / "assets" / "default_styles.csv"
PLACEHOLDER = "{prompt}"
FIELDS = ("name", "prompt", "negative_prompt")


@dataclass(frozen=True)
class PromptStyle:
    """One row of styles.csv."""

    name: str
    prompt: str = ""
    negative_prompt: str = ""


def merge_style(prompt: str, style: str) -> str:
    """A1111's rule: replace `{prompt}` when the style has it, else append with ", ", skipping empty parts."""
    if PLACEHOLDER in style:
        return style.replace(PLACEHOLDER, prompt)
    return ", ".join(part for part in (prompt.strip(), style.strip()) if part)


def parse_styles_csv(text: str) -> list[PromptStyle]:
    """Rows of a styles.csv text (BOM tolerated, old 2-column `name,text` files read, `#` rows skipped)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), skipinitialspace=True)
    styles = []
    for row in reader:
        name = (row.get("name") or "").strip()
        if not name or name.startswith("#"):
            continue
        prompt = row.get("prompt")
        if prompt is None:
            prompt = row.get("text") or ""
        styles.append(PromptStyle(name, prompt or "", row.get("negative_prompt") or ""))
    return styles


def _decode_styles(raw: bytes) -> str:
    if not raw.strip():
        raise ValueError("the file is empty")  # a 0-byte styles.csv is what a crash mid-write used to leave
    return raw.decode("utf-8", errors="replace")


class StyleStore:
    """The user's styles.csv; created from the shipped defaults on first use, rewritten (with a .bak) on change."""

    def __init__(self, path: Path, defaults: Path = DEFAULT_STYLES_FILE) -> None:
        self.path = Path(path)
        self.defaults = Path(defaults)
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        if not self.path.exists() and self.defaults.is_file():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.defaults, self.path)

    def all(self) -> list[PromptStyle]:
        """Read from disk every time, so edits made in a text editor show up without a restart."""
        with self._lock:
            self._ensure()
            text, note = read_with_backup(self.path, _decode_styles)
            if note:
                log.warning("%s", note)
            return parse_styles_csv(text) if isinstance(text, str) else []

    def names(self) -> list[str]:
        return [style.name for style in self.all()]

    def get(self, name: str) -> PromptStyle:
        for style in self.all():
            if style.name == name:
                return style
        raise UserInputError(f"No style named {name!r}")

    def apply(self, names: list[str], prompt: str, negative_prompt: str) -> tuple[str, str]:
        """Apply the named styles in order, separately to the prompt and the negative prompt."""
        by_name = {style.name: style for style in self.all()}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise UserInputError(f"Unknown style(s): {', '.join(missing)}")
        for name in names:
            prompt = merge_style(prompt, by_name[name].prompt)
            negative_prompt = merge_style(negative_prompt, by_name[name].negative_prompt)
        return prompt, negative_prompt

    def save(self, style: PromptStyle) -> None:
        """Add or replace a style by name."""
        name = style.name.strip()
        if not name:
            raise UserInputError("A style needs a name")
        if name.startswith("#"):
            raise UserInputError("A style name may not start with '#'")
        styles = [s for s in self.all() if s.name != name]
        styles.append(PromptStyle(name, style.prompt, style.negative_prompt))
        self._write(styles)

    def delete(self, name: str) -> None:
        styles = self.all()
        kept = [s for s in styles if s.name != name]
        if len(kept) == len(styles):
            raise UserInputError(f"No style named {name!r}")
        self._write(kept)

    def _write(self, styles: list[PromptStyle]) -> None:
        with self._lock:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(FIELDS)
            for style in styles:
                writer.writerow((style.name, style.prompt, style.negative_prompt))
            # temp file + fsync + rename; the previous good copy stays as styles.csv.bak
            atomic_write_text(self.path, buffer.getvalue(), keep_backup=True)
