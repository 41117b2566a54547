"""Reading model files safely: safetensors headers and tensors, and .ckpt/.pt pickles only as plain weights."""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors.torch import load_file

from webui.errors import ModelFileError
from webui.safetensors_header import SafetensorsHeader, read_safetensors_header

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
__all__ = ["SafetensorsHeader", "read_safetensors_header", "load_tensors", "tensor_shapes", "SAFETENSORS_SUFFIXES",
           "PICKLE_SUFFIXES"]


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a model file on the CPU; pickles are opened with weights_only=True and never run code."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        read_safetensors_header(path)
        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # safetensors raises its own error types for corrupt data
            raise ModelFileError(f"{path.name} could not be read: {error}") from error
    if suffix in PICKLE_SUFFIXES:
        return _load_pickle_weights(path)
    raise ModelFileError(f"{path.name}: unsupported file type {suffix!r} (use .safetensors or .ckpt)")


def _load_pickle_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as error:
        raise ModelFileError(
            f"{path.name} was refused: its pickle asks to run code or load objects other than plain tensors "
            f"({_first_line(error)}). Convert it to .safetensors with a tool you trust.") from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelFileError(f"{path.name} is corrupt or truncated: {_first_line(error)}") from error
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ModelFileError(f"{path.name} does not contain a state dict")
    tensors = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelFileError(f"{path.name} contains no tensors")
    return tensors


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of every tensor; cheap for safetensors (header only)."""
    path = Path(path)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        return read_safetensors_header(path).shapes
    return {k: tuple(v.shape) for k, v in _load_pickle_weights(path).items()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
