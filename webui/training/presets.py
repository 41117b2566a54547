"""Training presets: the tutorials' values built in, and user presets saved as JSON (kohya option names)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from webui.errors import UserInputError
from webui.files import atomic_write_text

# What the tutorials in our users' hands settle on for 20-30 photos on SD1.5 (rank 4-16, lr 1e-4..5e-5,
# 10-30 epochs, trigger word first and kept in place while the other tags shuffle).
BUILTIN_PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "Tutorial: SD1.5 character (20-30 photos)": MappingProxyType({
        "network_dim": 16, "network_alpha": 8, "learning_rate": 1e-4, "unet_lr": 1e-4, "text_encoder_lr": 5e-5,
        "optimizer_type": "AdamW", "lr_scheduler": "cosine_with_restarts", "lr_scheduler_num_cycles": 1,
        "lr_warmup_steps": 0.05, "max_train_epochs": 10, "save_every_n_epochs": 1, "train_batch_size": 1,
        "resolution": "512,512", "enable_bucket": True, "cache_latents": True, "shuffle_caption": True,
        "keep_tokens": 1, "mixed_precision": "fp16", "clip_skip": 2, "noise_offset": 0.0357, "min_snr_gamma": 5,
        "sample_every_n_epochs": 1, "sample_sampler": "euler_a"}),
    "Tutorial: SDXL (unet only, low VRAM)": MappingProxyType({
        "network_dim": 8, "network_alpha": 4, "learning_rate": 1e-4, "unet_lr": 1e-4, "optimizer_type": "Adafactor",
        "lr_scheduler": "constant_with_warmup", "lr_warmup_steps": 100, "max_train_epochs": 10,
        "save_every_n_epochs": 1, "resolution": "1024,1024", "enable_bucket": True, "max_bucket_reso": 2048,
        "cache_latents": True, "cache_text_encoder_outputs": True, "network_train_unet_only": True,
        "gradient_checkpointing": True, "mixed_precision": "bf16"}),
})
_NAME = re.compile(r"^[\w .()-]{1,80}$")


def preset_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "training_presets"


def preset_names(data_dir: Path) -> list[str]:
    folder = preset_folder(data_dir)
    users = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return [*BUILTIN_PRESETS, *users]


def load_preset(data_dir: Path, name: str) -> dict[str, Any]:
    if name in BUILTIN_PRESETS:
        return dict(BUILTIN_PRESETS[name])
    path = _path(data_dir, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read preset {name!r}: {error}") from error
    if not isinstance(data, dict):
        raise UserInputError(f"preset {name!r} is not a JSON object")
    return data


def save_preset(data_dir: Path, name: str, values: Mapping[str, Any]) -> Path:
    if name in BUILTIN_PRESETS:
        raise UserInputError(f"{name!r} is a built-in preset; save under another name")
    path = _path(data_dir, name)
    atomic_write_text(path, json.dumps(dict(values), indent=2, ensure_ascii=False))
    return path


def _path(data_dir: Path, name: str) -> Path:
    if not _NAME.match(name or "") or name.strip(". ") != name.strip():
        raise UserInputError(f"preset name {name!r}: use letters, digits, spaces, . ( ) - and _")
    return preset_folder(data_dir) / f"{name.strip()}.json"
