"""Reading a .safetensors header safely: bounded size, checked shape, no recursion blow-up, no file bytes echoed."""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.errors import ModelFileError

MAX_HEADER_BYTES = 100 * 1024 * 1024
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
               "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}
_SHOWN_KEY = 80  # tensor names come from the file: show at most this much of one


@dataclass(frozen=True)
class SafetensorsHeader:
    """What a safetensors file declares before its data: tensor shapes and dtypes, metadata, and where data starts."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    metadata: dict[str, str]
    data_offset: int


def _invalid(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"{path.name} is not a valid .safetensors file ({why})")


def _key(key: str) -> str:
    return repr(key if len(key) <= _SHOWN_KEY else key[:_SHOWN_KEY] + "…")


def read_header_json(path: Path) -> tuple[dict[str, Any], int, int]:
    """(header table, header length, file size); every malformed header is a ModelFileError naming no file bytes.

    A header that is JSON of the wrong shape (a list, `__metadata__` that is not a table) or nested so deep that
    decoding it overflows the stack is refused here, so no caller ever sees AttributeError or RecursionError.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise _invalid(path, f"the file has only {size} bytes")
        (length,) = struct.unpack("<Q", prefix)
        if length == 0 or length > MAX_HEADER_BYTES:
            raise _invalid(path, "its first 8 bytes do not give a plausible header length")
        if length > size - 8:
            raise ModelFileError(f"{path.name} is truncated: its header alone needs {length + 8} bytes but the "
                                 f"file has {size}; download it again")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _invalid(path, "its header is not UTF-8 text") from None
    except RecursionError:
        raise _invalid(path, "its header is nested too deeply") from None
    except ValueError as error:
        position = getattr(error, "pos", None)
        raise _invalid(path, f"its header is not JSON (error at byte {position})") from None
    if not isinstance(header, dict):
        raise _invalid(path, "its header is not a table")
    metadata = header.get("__metadata__")
    if metadata is not None and not isinstance(metadata, dict):
        raise _invalid(path, "its __metadata__ is not a table")
    return header, length, size


def _entry(path: Path, key: str, entry: Any, data_length: int) -> tuple[tuple[int, ...], str]:
    try:
        start, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        dtype = entry["dtype"]
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{path.name}: malformed entry for tensor {_key(key)}") from None
    if not all(type(v) is int and v >= 0 for v in (start, end, *shape)) or not isinstance(dtype, str) or start > end:
        raise ModelFileError(f"{path.name}: malformed entry for tensor {_key(key)} (offsets or shape)")
    if end > data_length:
        raise ModelFileError(f"{path.name} is truncated: tensor {_key(key)} ends past the end of the file; "
                             f"download it again")
    expected = DTYPE_BYTES.get(dtype)
    if expected is None:
        raise ModelFileError(f"{path.name}: tensor {_key(key)} has an unknown dtype")
    count = 1
    for dim in shape:
        count *= dim
    if end - start != expected * count:
        raise ModelFileError(f"{path.name}: tensor {_key(key)} has {end - start} bytes, expected {expected * count}")
    return shape, dtype


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Parse and validate the header; a truncated or corrupt file raises ModelFileError without reading tensors."""
    path = Path(path)
    try:
        header, length, size = read_header_json(path)
    except OSError as error:
        raise ModelFileError(f"{path.name} cannot be read ({error.strerror or type(error).__name__})") from None
    metadata = header.pop("__metadata__", None) or {}
    data_offset = 8 + length
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    for key, entry in header.items():
        shapes[key], dtypes[key] = _entry(path, key, entry, size - data_offset)
    return SafetensorsHeader(shapes, dtypes, {str(k): str(v) for k, v in metadata.items()}, data_offset)
