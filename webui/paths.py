"""Default folders and the one function that keeps user-given names inside them."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from webui.errors import PathOutsideRootError

REPO_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)
# config.json, cache.json, styles.csv: a git-ignored folder, so using the app never leaves untracked files.
DEFAULT_DATA_DIR = REPO_ROOT / "data"


@dataclass(frozen=True)
class Folders:
    """Where the app looks for models and writes outputs; every path comes from the command line or a default."""

    checkpoints: Path = REPO_ROOT / "models" / "Stable-diffusion"
    vae: Path = REPO_ROOT / "models" / "VAE"
    lora: tuple[Path, ...] = field(default=(REPO_ROOT / "models" / "Lora", REPO_ROOT / "models" / "LyCORIS"))
    embeddings: Path = REPO_ROOT / "embeddings"
    outputs: Path = REPO_ROOT / "outputs"
    data: Path = DEFAULT_DATA_DIR
    upscalers: tuple[Path, ...] = field(default=tuple(REPO_ROOT / "models" / kind
                                                      for kind in ("ESRGAN", "RealESRGAN", "SwinIR", "DAT")))
    taggers: Path = REPO_ROOT / "models" / "tagger"  # WD14-style ONNX taggers, one folder each
    blip: Path = REPO_ROOT / "models" / "BLIP"  # transformers captioning models, one folder each


def resolve_inside(root: Path, name: str | Path) -> Path:
    """Join `name` under `root` and refuse anything (.., absolute paths, symlink tricks) that lands outside it."""
    root_resolved = Path(root).resolve()
    candidate = (root_resolved / Path(name)).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise PathOutsideRootError(f"{str(name)!r} is outside the folder {root}")
    return candidate


def is_inside(root: Path, path: Path) -> bool:
    """True when `path` (after resolving links) lies inside `root`."""
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    return resolved == root_resolved or root_resolved in resolved.parents


def model_files(root: Path, suffixes: tuple[str, ...] | frozenset[str]) -> list[Path]:
    """Files under `root` (recursively, folders and names sorted) with one of `suffixes` (lower case, with the dot).

    Files whose real location leaves `root` (symlinks) are left out, so a user-chosen name can only ever pick a
    file that really lies in the model folder. Names that are not valid UTF-8 (kept by Python as lone surrogates)
    are left out with a log line: they could not be shown in the UI, sent as JSON or typed in a prompt.
    """
    if not Path(root).is_dir():
        return []
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for filename in sorted(files):
            path = Path(folder) / filename
            if path.suffix.lower() not in suffixes:
                continue
            if not is_displayable(str(path)):
                log.warning("Skipping %s: its name is not valid UTF-8; rename the file", ascii(str(path)))
            elif not is_inside(root, path):
                log.warning("Skipping %s: it is a link to a file outside %s", path.name, root)
            elif path.is_file():
                found.append(path)
    return found


def is_displayable(text: str) -> bool:
    """False for text holding lone surrogates (undecodable file-name bytes), which no UTF-8 output can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
