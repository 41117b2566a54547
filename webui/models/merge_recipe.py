"""What a merged checkpoint records: A1111's `sd_merge_recipe` / `sd_merge_models` header and the copied sidecar."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from webui.files import atomic_write_bytes
from webui.models.architectures import architecture_from_sidecar
from webui.models.hashing import legacy_model_hash

SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class ModelRef:
    """One input checkpoint: its file, the name A1111 records (relative path in the model folder) and its sha256."""

    path: Path
    name: str = ""
    sha256: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.path.name


def _decoded(metadata: Mapping[str, str]) -> dict[str, object]:
    """A file's metadata with JSON values decoded, as A1111 reads it."""
    decoded: dict[str, object] = {}
    for key, value in metadata.items():
        try:
            decoded[key] = json.loads(value) if value.startswith(("{", "[")) else value
        except ValueError:
            decoded[key] = value
    return decoded


def merge_metadata(recipe: Mapping[str, object], sources: Sequence[tuple[str, ModelRef]],
                   hashes: Mapping[str, str | None], source_metadata: Sequence[Mapping[str, str]],
                   copy_metadata: bool) -> dict[str, str]:
    """The header of a merged file, as A1111 writes it.

    With `copy_metadata` the inputs' own keys come first (A, then B, then C). `sd_merge_recipe` is this merge;
    `sd_merge_models` maps each input's sha256 to its name, 8-digit legacy hash and own recipe, plus every model
    the inputs were themselves merged from, so the whole family tree travels with the file.
    """
    metadata: dict[str, str] = {}
    if copy_metadata:
        for recorded in source_metadata:
            metadata.update(recorded)
    models: dict[str, object] = {}
    for (label, ref), recorded in zip(sources, source_metadata, strict=True):
        decoded = _decoded(recorded)
        models[hashes.get(label) or ""] = {"name": ref.label, "legacy_hash": legacy_model_hash(ref.path),
                                           "sd_merge_recipe": decoded.get("sd_merge_recipe")}
        earlier = decoded.get("sd_merge_models")
        if isinstance(earlier, dict):
            models.update(earlier)
    metadata.update({"format": "pt", "sd_merge_recipe": json.dumps(recipe), "sd_merge_models": json.dumps(models)})
    return metadata


def architecture_sidecar(path: Path) -> Path | None:
    """The `.json` (ours; not A1111 user metadata) or `.yaml` that names a checkpoint's architecture."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file() and (suffix != ".json" or architecture_from_sidecar(candidate) is not None):
            return candidate
    return None


def copy_sidecar(out: Path, candidates: Sequence[ModelRef]) -> Path | None:
    """Copy the first candidate's architecture sidecar next to `out` (A1111's "Copy config from"); None if none."""
    for ref in candidates:
        sidecar = architecture_sidecar(ref.path)
        if sidecar is not None:
            target = out.with_suffix(sidecar.suffix)
            atomic_write_bytes(target, sidecar.read_bytes())
            return target
    return None
