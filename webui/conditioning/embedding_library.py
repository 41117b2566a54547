"""The embeddings folder: rescanned only when its files change, one database per text-encoder layout."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from webui.conditioning.embeddings import EMBEDDING_SUFFIXES, EmbeddingDatabase
from webui.paths import model_files

if TYPE_CHECKING:
    from transformers import CLIPTokenizer


class EmbeddingLibrary:
    """Owns the loaded embeddings for the current model; `database_for` is cheap when nothing changed on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._database: EmbeddingDatabase | None = None

    def _signature(self) -> tuple:
        if not self.folder.is_dir():
            return ()
        entries = []
        for path in model_files(self.folder, EMBEDDING_SUFFIXES):
            if path.is_file():
                stat = path.stat()
                entries.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def database_for(self, tokenizer: CLIPTokenizer, encoder_widths: tuple[int, ...]) -> EmbeddingDatabase:
        """Embeddings that fit these encoders; others are listed in `.skipped` with the reason."""
        key = (encoder_widths, self._signature())
        with self._lock:
            if self._database is None or key != self._key:
                self._database = EmbeddingDatabase(tokenizer, encoder_widths).load_folder(self.folder)
                self._key = key
            return self._database
