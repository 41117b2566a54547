"""Malformed-file corpus: every way a model file can lie, written into any folder the app scans."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

# Bytes of a file outside every model folder; no error message may ever show them.
SECRET = b"TOPSECRETBYTES!!"
DEEP = 100_000


def _safetensors(header: object | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _tensor(offsets: list[int], shape: list[int], dtype: str = "F32") -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


def malformed_files() -> dict[str, bytes]:
    """File stem -> content: one per malformation (the suffix is added for each folder)."""
    good_header = {"w": _tensor([0, 16], [4])}
    good = _safetensors(good_header, b"\0" * 16)
    return {
        "zero-bytes": b"",
        "seven-bytes": b"\x01\x02\x03\x04\x05\x06\x07",
        "truncated": good[:-5],
        "huge-header-length": struct.pack("<Q", 2**63) + b"{}",
        "length-past-end": struct.pack("<Q", 4096) + b"{}",
        "not-json": _safetensors(b"{this is not json"),
        "not-utf8-header": _safetensors(b"{\"\xff\xfe\": 1}"),
        "list-header": _safetensors([1, 2, 3]),
        "string-header": _safetensors("hello"),
        "metadata-list": _safetensors({"__metadata__": [1, 2]}),
        "metadata-string": _safetensors({"__metadata__": "x"}),
        "deep-json": _safetensors(b"[" * DEEP + b"]" * DEEP),
        "deep-metadata": _safetensors(b'{"__metadata__": {"a": ' + b"[" * DEEP + b"]" * DEEP + b"}}"),
        "entry-not-table": _safetensors({"w": 5}),
        "lying-offsets": _safetensors({"w": _tensor([0, 1 << 40], [4])}, b"\0" * 16),
        "reversed-offsets": _safetensors({"w": _tensor([16, 0], [4])}, b"\0" * 16),
        "negative-offsets": _safetensors({"w": _tensor([-16, 0], [4])}, b"\0" * 16),
        "lying-shape": _safetensors({"w": _tensor([0, 16], [1000, 1000])}, b"\0" * 16),
        "negative-shape": _safetensors({"w": _tensor([0, 16], [-4])}, b"\0" * 16),
        "lying-dtype": _safetensors({"w": _tensor([0, 16], [4], "F64")}, b"\0" * 16),
        "unknown-dtype": _safetensors({"w": _tensor([0, 16], [4], "Q9")}, b"\0" * 16),
        "garbage-pickle": b"\x80\x04garbage" * 10,
        "valid-but-empty": _safetensors({}),
        "valid-but-useless": good,
        "中文名字": good,
    }


def write_corpus(folder: Path, suffix: str, outside: Path) -> list[Path]:
    """Write every malformed file with `suffix` into `folder`, plus a file with a non-UTF-8 name and links.

    `outside` is a folder outside every scanned root; the link to it must never be listed or read.
    """
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, content in malformed_files().items():
        path = folder / f"{stem}{suffix}"
        path.write_bytes(content)
        written.append(path)
    # A name that is not valid UTF-8: Python sees it with a lone surrogate.
    raw_name = os.fsencode(folder) + b"/bad-\xff\xfe-name" + suffix.encode()
    with open(raw_name, "wb") as handle:
        handle.write(_safetensors({"w": _tensor([0, 16], [4])}, b"\0" * 16))
    written.append(Path(os.fsdecode(raw_name)))
    secret = outside / f"secret{suffix}"
    secret.write_bytes(SECRET + b"\0" * 64)
    link_out = folder / f"link-out{suffix}"
    link_out.symlink_to(secret)
    link_in = folder / f"link-in{suffix}"
    link_in.symlink_to(folder / f"valid-but-useless{suffix}")
    written += [link_out, link_in]
    return written


def non_utf8_name(folder: Path, suffix: str) -> Path:
    """The path of the corpus file whose name is not valid UTF-8."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/bad-\xff\xfe-name" + suffix.encode()))
