"""A1111-compatible file hashes, cached by path, size and mtime so restarts do not re-read gigabytes."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from webui.files import atomic_write_text, read_with_backup

_CHUNK = 1024 * 1024
log = logging.getLogger(__name__)


def sha256_of_file(path: Path, start: int = 0) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(start)
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def legacy_model_hash(path: Path) -> str:
    """The pre-2023 A1111 hash: sha256 of the 64 KiB at offset 1 MiB, first 8 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(0x100000)
        digest.update(handle.read(0x10000))
    return digest.hexdigest()[:8]


class HashCache:
    """sha256 per file, persisted as JSON under a category ("checkpoint", "lora", "vae") and relative name."""

    def __init__(self, cache_file: Path | None) -> None:
        self._file = Path(cache_file) if cache_file else None
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        if self._file is None or not self._file.exists():
            return {}
        data, note = read_with_backup(self._file, lambda raw: dict(json.loads(raw)["hashes"]))
        if note:
            log.warning("%s", note)
        return data if isinstance(data, dict) else {}  # a damaged cache only costs a re-hash

    def cached(self, category: str, name: str, path: Path) -> str | None:
        stat = path.stat()
        entry = self._entries.get(f"{category}/{name}")
        if entry and entry.get("mtime") == stat.st_mtime and entry.get("size") == stat.st_size:
            return entry.get("sha256")
        return None

    def sha256(self, category: str, name: str, path: Path) -> str:
        """Return the cached hash or compute it (whole file) and persist it."""
        found = self.cached(category, name, path)
        if found:
            return found
        stat = path.stat()
        value = sha256_of_file(path)
        with self._lock:
            self._entries[f"{category}/{name}"] = {"mtime": stat.st_mtime, "size": stat.st_size, "sha256": value}
            self._write()
        return value

    def _write(self) -> None:
        if self._file is None:
            return
        atomic_write_text(self._file, json.dumps({"hashes": self._entries}, indent=1), keep_backup=True)
