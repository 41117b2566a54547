"""Find LoRA files under the configured folders, resolve names A1111's way, cache parsed files, read metadata."""
from __future__ import annotations

import difflib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from webui.files import atomic_write_text
from webui.networks.errors import LoraFileError, LoraNotFoundError
from webui.networks.family import lora_family
from webui.networks.keymap import ModelNames
from webui.networks.lora_file import LORA_EXTENSIONS, LoraFile, read_header, read_lora, scan_header
from webui.paths import model_files

PREVIEW_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "gif")
_SD_VERSIONS = MappingProxyType({"SD1": "sd1", "SD2": "sd2", "SDXL": "sdxl", "UNKNOWN": "unknown"})
DEFAULT_CACHE_BYTES = 1 << 30
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoraEntry:
    """One file found on disk: its name (the stem), its alias (`ss_output_name`, else the name) and where it is."""

    name: str
    alias: str
    path: Path
    problem: str = ""  # why the file cannot be used (malformed header …); "" for a usable file

    @property
    def broken(self) -> bool:
        return bool(self.problem)


@dataclass(frozen=True)
class UserMetadata:
    """A1111's user sidecar `<stem>.json` (edited from the card) plus `<stem>.txt` descriptions."""

    activation_text: str = ""
    preferred_weight: float = 0.0
    negative_text: str = ""
    notes: str = ""
    description: str = ""
    sd_version: str = ""


@dataclass(frozen=True)
class LoraInfo:
    """What a card or the API shows about one LoRA, from its header metadata and sidecars (no tensor is read)."""

    name: str
    alias: str
    path: Path
    family: str
    base_model_version: str
    network_module: str
    network_dim: str
    network_alpha: str
    trigger_words: tuple[str, ...]
    training_comment: str
    modelspec: Mapping[str, str]
    preview: Path | None
    user: UserMetadata
    metadata: Mapping[str, str] = field(repr=False, default_factory=dict)


def tag_frequency(metadata: Mapping[str, str]) -> list[tuple[str, int]]:
    """Training tags with their counts (summed over the datasets in `ss_tag_frequency`), most frequent first."""
    try:
        frequency = json.loads(metadata.get("ss_tag_frequency", "") or "{}")
    except ValueError:
        return []
    counts: dict[str, int] = {}
    if isinstance(frequency, dict):
        for tags in frequency.values():
            if not isinstance(tags, dict):
                continue
            for tag, count in tags.items():
                tag = str(tag).strip()
                if tag and isinstance(count, (int, float)):
                    counts[tag] = counts.get(tag, 0) + int(count)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def top_tags(metadata: Mapping[str, str], limit: int = 10) -> tuple[str, ...]:
    """Most frequent training tags, the usual trigger words."""
    return tuple(tag for tag, _ in tag_frequency(metadata)[:limit])


def find_preview(path: Path) -> Path | None:
    """The first existing `<stem>.<ext>` or `<stem>.preview.<ext>` next to the file."""
    for extension in PREVIEW_EXTENSIONS:
        for candidate in (path.with_suffix("." + extension), path.with_suffix(".preview." + extension)):
            if candidate.is_file():
                return candidate
    return None


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    """The sidecar's JSON object; {} when it is missing, unreadable or not an object."""
    if not sidecar.is_file():
        return {}
    try:
        loaded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_user_metadata(path: Path) -> UserMetadata:
    """Parse the user sidecar next to `path`; a missing or broken sidecar gives empty values."""
    data = _read_sidecar(path.with_suffix(".json"))
    description = str(data.get("description", "") or "")
    for candidate in (path.with_suffix(".txt"), path.with_suffix(".description.txt")):
        if not description and candidate.is_file():
            description = candidate.read_text(encoding="utf-8", errors="replace").strip()
    try:
        weight = float(data.get("preferred weight", 0) or 0)
    except (TypeError, ValueError):
        weight = 0.0
    return UserMetadata(activation_text=str(data.get("activation text", "") or ""), preferred_weight=weight,
                        negative_text=str(data.get("negative text", "") or ""), notes=str(data.get("notes", "") or ""),
                        description=description, sd_version=str(data.get("sd version", "") or ""))


def write_user_metadata(path: Path, user: UserMetadata) -> Path:
    """Write A1111's user sidecar `<stem>.json` next to the LoRA `path` in one step (temp file + rename).

    Keys this app does not edit (written by A1111 or extensions) are kept; an unreadable sidecar is replaced.
    """
    sidecar = path.with_suffix(".json")
    data = _read_sidecar(sidecar)
    data.update({"description": user.description, "activation text": user.activation_text,
                 "preferred weight": user.preferred_weight, "negative text": user.negative_text,
                 "notes": user.notes, "sd version": user.sd_version})
    atomic_write_text(sidecar, json.dumps(data, indent=4, ensure_ascii=False))
    return sidecar


class LoraLibrary:
    """The LoRA files under `roots` (searched recursively) and an LRU of parsed files bounded by bytes."""

    def __init__(self, roots: Sequence[Path], cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.roots = [Path(root) for root in roots]
        self.cache_bytes = cache_bytes
        self._lock = threading.RLock()
        self._by_name: dict[str, LoraEntry] = {}
        self._by_alias: dict[str, LoraEntry] = {}
        self._cache: OrderedDict[tuple, LoraFile] = OrderedDict()
        self._scanned = False

    def scan(self) -> list[LoraEntry]:
        """Walk the roots again; files whose real location is outside every root (symlinks) are ignored."""
        with self._lock:
            by_name: dict[str, LoraEntry] = {}
            alias_owners: dict[str, list[LoraEntry]] = {}
            for root in self.roots:
                for path in model_files(root, LORA_EXTENSIONS):
                    metadata, problem = scan_header(path)  # one header read per file and scan
                    if problem:
                        log.warning("LoRA %s is listed as broken and skipped: %s", path.name, problem)
                    alias = metadata.get("ss_output_name", "") or path.stem
                    entry = LoraEntry(name=path.stem, alias=alias, path=path, problem=problem)
                    by_name[path.stem] = entry  # with duplicate stems the last one walked wins, as in A1111
                    alias_owners.setdefault(alias, []).append(entry)
            # An alias claimed by two files (or "none") is forbidden; those files answer to their stem only.
            forbidden = {"none"} | {a.lower() for a, owners in alias_owners.items() if len(owners) > 1}
            self._by_name = by_name
            self._by_alias = {alias: owners[0] for alias, owners in alias_owners.items()
                              if alias.lower() not in forbidden}
            self._scanned = True
            return sorted(by_name.values(), key=lambda e: e.name.lower())

    def entries(self) -> list[LoraEntry]:
        with self._lock:
            if not self._scanned:
                self.scan()
            return sorted(self._by_name.values(), key=lambda e: e.name.lower())

    def _lookup(self, name: str) -> LoraEntry | None:
        if name in self._by_name:
            return self._by_name[name]
        if name in self._by_alias:
            return self._by_alias[name]
        folded = name.casefold()
        for table in (self._by_name, self._by_alias):
            for key, entry in sorted(table.items()):
                if key.casefold() == folded:
                    return entry
        return None

    def resolve(self, name: str) -> LoraEntry:
        """Stem, then alias, then case-insensitive; rescans once before raising LoraNotFoundError.

        Names are only ever looked up among scanned files, never joined to a path, so `../x` cannot escape.
        """
        with self._lock:
            if not self._scanned:
                self.scan()
            entry = self._lookup(name)
            if entry is None:
                self.scan()
                entry = self._lookup(name)
            if entry is None:
                known = sorted(set(self._by_name) | set(self._by_alias))
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise LoraNotFoundError(f"LoRA not found: {name}{hint}")
            return entry

    def load(self, name: str, names: ModelNames) -> LoraFile:
        """The parsed LoRA for `name` bound to `names`; cached, and re-read when the file's mtime or size changes."""
        with self._lock:
            entry = self.resolve(name)
            try:
                stat = entry.path.stat()
            except OSError:
                entry = self._rescan_and_resolve(name)
                stat = entry.path.stat()
            key = (str(entry.path), stat.st_mtime_ns, stat.st_size, names.fingerprint)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            if entry.broken:
                raise LoraFileError(entry.problem)
            for old in [k for k in self._cache if k[0] == key[0] and k[1:3] != key[1:3]]:
                del self._cache[old]  # a changed file: drop its stale parses
            lora = read_lora(entry.path, names, name=entry.name)
            self._cache[key] = lora
            self._evict(keep=key)
            return lora

    def _rescan_and_resolve(self, name: str) -> LoraEntry:
        self.scan()
        return self.resolve(name)

    def _evict(self, keep: tuple) -> None:
        total = sum(lora.nbytes() for lora in self._cache.values())
        for key in list(self._cache):
            if total <= self.cache_bytes:
                break
            if key != keep:
                total -= self._cache.pop(key).nbytes()

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(lora.nbytes() for lora in self._cache.values())

    def info(self, name: str) -> LoraInfo:
        """Card metadata for `name`: family hint, ss_* training facts, trigger words, modelspec, preview, sidecar."""
        entry = self.resolve(name)
        shapes, metadata = read_header(entry.path)
        user = read_user_metadata(entry.path)
        family = lora_family(shapes, metadata)
        if user.sd_version.upper() in _SD_VERSIONS:
            family = _SD_VERSIONS[user.sd_version.upper()]  # the user's choice overrides detection, as in A1111
        return LoraInfo(
            name=entry.name, alias=entry.alias, path=entry.path, family=family,
            base_model_version=metadata.get("ss_base_model_version", ""),
            network_module=metadata.get("ss_network_module", ""), network_dim=metadata.get("ss_network_dim", ""),
            network_alpha=metadata.get("ss_network_alpha", ""), trigger_words=top_tags(metadata),
            training_comment=metadata.get("ss_training_comment", ""),
            modelspec={k[len("modelspec."):]: v for k, v in metadata.items() if k.startswith("modelspec.")},
            preview=find_preview(entry.path), user=user, metadata=metadata)
