"""Tensor-at-a-time model I/O: read one tensor of a checkpoint, write a .safetensors file one tensor after another."""
from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import safe_open

from webui.models.checkpoint_io import SAFETENSORS_SUFFIXES, load_tensors, read_safetensors_header

# safetensors dtype names <-> torch dtypes (the ones model files use).
DTYPE_NAMES: Mapping[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
    torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}
FLOAT_NAMES = frozenset({"F64", "F32", "F16", "BF16"})
_ALIGN = 8  # safetensors pads the header so the data starts 8-byte aligned


class TensorSource(AbstractContextManager["TensorSource"]):
    """One checkpoint's tensor names, shapes and dtypes, and `get(key)` to read a single tensor.

    A .safetensors file is read one tensor at a time (only the header is parsed up front), so merging several
    models never needs more than a few tensors in memory; a pickle (.ckpt) has to be loaded whole.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._streamed = self.path.suffix.lower() in SAFETENSORS_SUFFIXES
        self._tensors: dict[str, torch.Tensor] = {}
        if self._streamed:
            header = read_safetensors_header(self.path)
            self.shapes, self.dtypes, self.metadata = header.shapes, header.dtypes, header.metadata
        else:
            self._tensors = load_tensors(self.path)
            self.shapes = {k: tuple(v.shape) for k, v in self._tensors.items()}
            self.dtypes = {k: DTYPE_NAMES.get(v.dtype, str(v.dtype)) for k, v in self._tensors.items()}
            self.metadata = {}

    def get(self, key: str) -> torch.Tensor:
        if not self._streamed:
            return self._tensors[key]
        # Opened per tensor: safetensors maps the file, and every page a computation touches stays resident (and
        # counted in this process's RSS) for as long as the mapping is open. Closing it after each tensor keeps
        # the footprint at one tensor instead of growing to the whole file.
        with safe_open(str(self.path), framework="pt", device="cpu") as handle:
            return handle.get_tensor(key)

    def close(self) -> None:
        self._tensors = {}

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


class SafetensorsStreamWriter:
    """Writes a .safetensors file whose layout (names, dtypes, shapes) is known before any tensor is computed.

    The header goes out first; then `write()` takes the tensors one at a time in layout order, so the file is
    produced without ever holding all its tensors. `finish()` checks that every tensor was written.
    """

    def __init__(self, handle: BinaryIO, layout: Mapping[str, tuple[str, tuple[int, ...]]],
                 metadata: Mapping[str, str] | None = None) -> None:
        self._handle = handle
        self._order = list(layout)
        self._layout = dict(layout)
        self._next = 0
        header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
        offset = 0
        for key in self._order:
            dtype, shape = layout[key]
            size = _numel(shape) * _dtype_bytes(dtype)
            header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % _ALIGN)
        handle.write(len(encoded).to_bytes(8, "little"))
        handle.write(encoded)

    def write(self, key: str, tensor: torch.Tensor) -> None:
        if self._next >= len(self._order) or self._order[self._next] != key:
            expected = self._order[self._next] if self._next < len(self._order) else "nothing"
            raise ValueError(f"tensor {key!r} written out of order; expected {expected}")
        dtype, shape = self._layout[key]
        if DTYPE_NAMES.get(tensor.dtype) != dtype or tuple(tensor.shape) != tuple(shape):
            raise ValueError(f"tensor {key!r} is {tensor.dtype} {tuple(tensor.shape)}, the header says {dtype} {shape}")
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        if flat.numel():
            self._handle.write(flat.view(torch.uint8).numpy().data)
        self._next += 1

    def finish(self) -> None:
        if self._next != len(self._order):
            raise ValueError(f"only {self._next} of {len(self._order)} tensors were written")


def _dtype_bytes(name: str) -> int:
    for dtype, known in DTYPE_NAMES.items():
        if known == name:
            return torch.empty((), dtype=dtype).element_size()
    raise ValueError(f"unsupported tensor dtype {name}")
