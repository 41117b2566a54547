"""Textual-inversion embeddings: A1111 .pt, diffusers .bin, SDXL .safetensors; prompt name matching; TI hashes."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import torch

from webui.conditioning.chunks import CHUNK_LENGTH
from webui.paths import model_files

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

EMBEDDING_SUFFIXES = (".pt", ".bin", ".safetensors")


@dataclass(frozen=True)
class Embedding:
    """One embedding: `vec` [n, dim] for single-encoder models, or `clip_l`/`clip_g` rows for SDXL."""

    name: str
    path: Path
    sha256: str
    vec: torch.Tensor | None = None
    clip_l: torch.Tensor | None = None
    clip_g: torch.Tensor | None = None

    @property
    def vector_count(self) -> int:
        source = self.vec if self.vec is not None else self.clip_g
        return int(source.shape[0]) if source is not None else 0

    @property
    def vector_width(self) -> int:
        """The width of its vectors (the bigG width for SDXL files), as A1111's /embeddings reports `shape`."""
        source = self.vec if self.vec is not None else self.clip_g
        return int(source.shape[-1]) if source is not None else 0

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    def vectors_for(self, kind: str, provides_pooled: bool) -> torch.Tensor:
        """CLIP-L gets the clip_l rows and bigG (the OpenCLIP encoder) the clip_g rows."""
        if self.vec is not None:
            return self.vec
        chosen = self.clip_g if (kind == "open_clip" or provides_pooled) else self.clip_l
        assert chosen is not None
        return chosen


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    data = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise ValueError("not a dict of tensors")
    return data


def _as_rows(tensor: object) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError("embedding value is not a tensor")
    rows = tensor.detach().to(torch.float32)
    if rows.ndim == 1:
        rows = rows.unsqueeze(0)
    if rows.ndim != 2:
        raise ValueError(f"embedding tensor has shape {tuple(tensor.shape)}")
    return rows


def _vectors(data: dict) -> dict[str, torch.Tensor]:
    """{"vec": rows} or {"clip_l": rows, "clip_g": rows}, per the formats in the reference."""
    if "string_to_param" in data:
        params = data["string_to_param"]
        if not isinstance(params, dict) or len(params) != 1:
            raise ValueError("string_to_param must hold exactly one tensor")
        return {"vec": _as_rows(next(iter(params.values())))}
    if "clip_l" in data and "clip_g" in data:
        return {"clip_l": _as_rows(data["clip_l"]), "clip_g": _as_rows(data["clip_g"])}
    if "emb_params" in data:
        return {"vec": _as_rows(data["emb_params"])}
    if len(data) == 1:
        return {"vec": _as_rows(next(iter(data.values())))}
    raise ValueError("unrecognised embedding format")


@dataclass
class EmbeddingDatabase:
    """Embeddings usable with one model; `encoder_widths` are its text encoders' hidden sizes, in slot order.

    Files of the wrong width are listed in `skipped` with the reason, not loaded.
    """

    tokenizer: CLIPTokenizer
    encoder_widths: tuple[int, ...]
    embeddings: dict[str, Embedding] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    _by_first_token: dict[int, list[tuple[tuple[int, ...], Embedding]]] = field(default_factory=dict)

    def load_folder(self, folder: Path | str) -> "EmbeddingDatabase":
        """Recursive, without links leading out of the folder; name = file stem; empty files, previews skipped."""
        root = Path(folder)
        if not root.is_dir():
            return self
        files = sorted(model_files(root, EMBEDDING_SUFFIXES))
        for path in files:
            if ".preview" in path.name or path.stat().st_size == 0:
                continue
            self.load_file(path)
        return self

    def load_file(self, path: Path) -> Embedding | None:
        name = path.stem
        try:
            vectors = _vectors(_read(path))
        except Exception as error:  # any unreadable file is reported, never fatal
            self.skipped[name] = f"cannot read {path.name}: {error}"
            return None
        reason = self._width_problem(vectors)
        if reason is None and name in self.embeddings:
            reason = f"duplicate name (already loaded from {self.embeddings[name].path})"
        if reason is not None:
            self.skipped[name] = reason
            return None
        embedding = Embedding(name, path, _file_sha256(path), **vectors)
        if not 0 < embedding.vector_count <= CHUNK_LENGTH:
            self.skipped[name] = f"{embedding.vector_count} vectors; a prompt chunk holds {CHUNK_LENGTH}"
            return None
        self.register(embedding)
        return embedding

    def _width_problem(self, vectors: dict[str, torch.Tensor]) -> str | None:
        if "vec" in vectors:
            width = int(vectors["vec"].shape[1])
            if len(self.encoder_widths) != 1 or width != self.encoder_widths[0]:
                return f"width {width} does not match the model's text encoder {self.encoder_widths}"
            return None
        widths = (int(vectors["clip_l"].shape[1]), int(vectors["clip_g"].shape[1]))
        if widths != self.encoder_widths or vectors["clip_l"].shape[0] != vectors["clip_g"].shape[0]:
            return f"SDXL embedding widths {widths} do not match the model's text encoders {self.encoder_widths}"
        return None

    def register(self, embedding: Embedding) -> None:
        """Names are matched as token sequences, so matching is case-insensitive and on whole tokens."""
        ids = tuple(self.tokenizer(embedding.name, add_special_tokens=False)["input_ids"])
        if not ids:
            self.skipped[embedding.name] = "name has no tokens"
            return
        self.embeddings[embedding.name] = embedding
        bucket = [entry for entry in self._by_first_token.get(ids[0], []) if entry[1].name != embedding.name]
        bucket.append((ids, embedding))
        bucket.sort(key=lambda entry: len(entry[0]), reverse=True)  # longest name wins
        self._by_first_token[ids[0]] = bucket

    def find_at(self, tokens: Sequence[int], position: int) -> tuple[Embedding, int, int] | None:
        for ids, embedding in self._by_first_token.get(tokens[position], ()):
            if tuple(tokens[position : position + len(ids)]) == ids:
                return embedding, embedding.vector_count, len(ids)
        return None

    def hashes_infotext(self, names: Iterable[str]) -> str:
        """Value for `TI hashes:` ("name: hash, ..."; ':' and ',' removed from names), or "" when none."""
        entries: dict[str, None] = {}
        for name in names:
            embedding = self.embeddings.get(name)
            if embedding is not None:
                clean = name.replace(":", "").replace(",", "")
                entries.setdefault(f"{clean}: {embedding.short_hash}", None)
        return ", ".join(entries)
