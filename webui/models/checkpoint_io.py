"""Reading model files safely: safetensors headers and tensors, and .ckpt/.pt pickles only as plain weights."""
from __future__ import annotations

import json
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from webui.errors import ModelFileError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass(frozen=True)
class SafetensorsHeader:
    """What a safetensors file declares before its data: tensor shapes and dtypes, metadata, and where data starts."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    metadata: dict[str, str]
    data_offset: int


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Parse and validate the header; a truncated or corrupt file raises ModelFileError without reading tensors."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if 0 < length <= _MAX_HEADER_BYTES and length > size - 8:
                raise ModelFileError(f"{path.name} is truncated: its header alone needs {length + 8} bytes but the "
                                     f"file has {size}; download it again")
            if length <= 0 or length > _MAX_HEADER_BYTES:
                raise ValueError(f"implausible header length {length}")
            header = json.loads(handle.read(length).decode("utf-8"))
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path.name} is not a valid .safetensors file ({error})") from error
    if not isinstance(header, dict):
        raise ModelFileError(f"{path.name} is not a valid .safetensors file (header is not a table)")
    metadata = header.pop("__metadata__", None) or {}
    data_offset = 8 + length
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    for key, entry in header.items():
        try:
            start, end = entry["data_offsets"]
            shape = tuple(int(d) for d in entry["shape"])
            dtype = entry["dtype"]
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{path.name}: malformed entry for tensor {key!r}") from error
        if data_offset + end > size:
            raise ModelFileError(f"{path.name} is truncated: tensor {key!r} ends past the end of the file "
                                 f"({data_offset + end} > {size} bytes); download it again")
        expected = _DTYPE_BYTES.get(dtype)
        count = 1
        for dim in shape:
            count *= dim
        if expected is not None and end - start != expected * count:
            raise ModelFileError(f"{path.name}: tensor {key!r} has {end - start} bytes, expected {expected * count}")
        shapes[key] = shape
        dtypes[key] = dtype
    return SafetensorsHeader(shapes, dtypes, {str(k): str(v) for k, v in metadata.items()}, data_offset)


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
