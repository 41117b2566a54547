"""Checkpoint and VAE files on disk: scanning, titles, A1111 aliases and hash lookup."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from webui.errors import UserInputError
from webui.models.checkpoint_io import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES
from webui.models.hashing import HashCache, legacy_model_hash
from webui.paths import model_files

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
# The small model shipped in models/Stable-diffusion; chosen by default only when the user has no checkpoint.
BUNDLED_DEMO_STEM = "demo-shapes"
VAE_SUFFIXES = (".safetensors", ".ckpt", ".pt")


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint file; `name` is its path relative to the checkpoint folder, with forward slashes."""

    path: Path
    name: str

    @property
    def stem(self) -> str:
        """What A1111 writes as `Model:` in the infotext."""
        return self.path.stem

    def sidecar(self) -> Path | None:
        """A same-name .yaml/.json that overrides architecture detection, as A1111 allows."""
        for suffix in (".json", ".yaml"):
            candidate = self.path.with_suffix(suffix)
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class VaeInfo:
    """One VAE file, keyed by its basename as A1111 does."""

    path: Path
    name: str


class UnknownCheckpointError(UserInputError):
    """Asked for a checkpoint the registry does not know."""


def _is_vae_file(path: Path) -> bool:
    return ".vae." in path.name.lower()


def _scan(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    # model_files leaves out links to files outside the folder and names that are not valid UTF-8.
    return sorted(model_files(root, suffixes), key=lambda p: str(p.relative_to(root)).lower())


class CheckpointRegistry:
    """Knows the checkpoint and VAE files; `refresh()` picks up new files without a restart."""

    def __init__(self, checkpoint_dir: Path, vae_dir: Path, hash_cache: HashCache, *, hashing: bool = True) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.vae_dir = Path(vae_dir)
        self._hashes = hash_cache
        self._hashing = hashing
        self._lock = threading.Lock()
        self._checkpoints: list[CheckpointInfo] = []
        self._vaes: list[VaeInfo] = []
        self.refresh()

    def refresh(self) -> None:
        checkpoints = [CheckpointInfo(p, p.relative_to(self.checkpoint_dir).as_posix())
                       for p in _scan(self.checkpoint_dir, CHECKPOINT_SUFFIXES) if not _is_vae_file(p)]
        beside = [p for p in _scan(self.checkpoint_dir, VAE_SUFFIXES) if _is_vae_file(p)]
        vaes = [VaeInfo(p, p.name) for p in _scan(self.vae_dir, VAE_SUFFIXES) + beside]
        with self._lock:
            self._checkpoints, self._vaes = checkpoints, vaes

    def checkpoints(self) -> list[CheckpointInfo]:
        with self._lock:
            return list(self._checkpoints)

    def default_checkpoint(self) -> CheckpointInfo | None:
        """The first of the user's checkpoints; the bundled demo only when there is nothing else."""
        checkpoints = self.checkpoints()
        own = [c for c in checkpoints if c.stem != BUNDLED_DEMO_STEM]
        candidates = own or checkpoints
        return candidates[0] if candidates else None

    def vaes(self) -> list[VaeInfo]:
        with self._lock:
            return list(self._vaes)

    # -- hashes -------------------------------------------------------------------------------------------------
    def sha256(self, info: CheckpointInfo) -> str | None:
        """Full sha256 (computed once, then cached on disk); None when hashing is disabled."""
        if not self._hashing:
            return None
        return self._hashes.sha256("checkpoint", info.name, info.path)

    def short_hash(self, info: CheckpointInfo) -> str | None:
        full = self.sha256(info)
        return full[:10] if full else None

    def cached_short_hash(self, info: CheckpointInfo) -> str | None:
        full = self._hashes.cached("checkpoint", info.name, info.path) if self._hashing else None
        return full[:10] if full else None

    def title(self, info: CheckpointInfo) -> str:
        """A1111's "<relative path> [<short hash>]", without the hash until it has been computed."""
        short = self.cached_short_hash(info)
        return f"{info.name} [{short}]" if short else info.name

    def vae_sha256(self, vae: VaeInfo) -> str | None:
        return self._hashes.sha256("vae", vae.name, vae.path) if self._hashing else None

    # -- lookup -------------------------------------------------------------------------------------------------
    def find(self, query: str) -> CheckpointInfo:
        """Resolve a name as A1111 does: exact alias, then the shortest title containing it, then without `[hash]`."""
        text = (query or "").strip()
        checkpoints = self.checkpoints()
        if not text:
            raise UnknownCheckpointError("No checkpoint name given")
        for info in checkpoints:
            if text in self._aliases(info, with_hashes=False):
                return info
        for info in checkpoints:
            if text in self._aliases(info, with_hashes=True):
                return info
        for candidate in (text, text.rsplit(" [", 1)[0].strip() if text.endswith("]") else None):
            if not candidate:
                continue
            matches = sorted((i for i in checkpoints if candidate in self.title(i)), key=lambda i: len(self.title(i)))
            if matches:
                return matches[0]
        known = ", ".join(i.name for i in checkpoints) or "none (put a .safetensors file in " \
                f"{self.checkpoint_dir})"
        raise UnknownCheckpointError(f"Checkpoint not found: {query!r}. Available: {known}")

    def _aliases(self, info: CheckpointInfo, *, with_hashes: bool) -> set[str]:
        names = {info.name, info.stem, info.path.name, self.title(info), Path(info.name).with_suffix("").as_posix()}
        cached = self.cached_short_hash(info)
        if cached:
            names |= {cached, f"{info.stem} [{cached}]"}
        full = self.sha256(info) if with_hashes and self._hashing else None
        if full:
            names |= {full, full[:10], f"{info.stem} [{full[:10]}]", f"{info.name} [{full[:10]}]"}
            try:
                old = legacy_model_hash(info.path)
                names |= {old, f"{info.name} [{old}]"}
            except OSError:
                pass
        return names

    def find_vae(self, name: str) -> VaeInfo:
        for vae in self.vaes():
            if name in (vae.name, vae.path.stem, Path(vae.name).stem.split(".vae")[0]):
                return vae
        known = ", ".join(v.name for v in self.vaes()) or "none"
        raise UserInputError(f"VAE not found: {name!r}. Available: Automatic, None, {known}")

    def automatic_vae(self, info: CheckpointInfo) -> VaeInfo | None:
        """A1111's rule: a VAE file whose basename starts with the checkpoint's stem, beside it first."""
        stem = info.stem.lower()
        candidates = [v for v in self.vaes() if v.name.lower().startswith(stem) and _is_vae_file(v.path)]
        candidates.sort(key=lambda v: (v.path.parent != info.path.parent, len(v.name)))
        return candidates[0] if candidates else None


__all__ = ["CheckpointInfo", "VaeInfo", "CheckpointRegistry", "UnknownCheckpointError",
           "SAFETENSORS_SUFFIXES", "PICKLE_SUFFIXES"]
