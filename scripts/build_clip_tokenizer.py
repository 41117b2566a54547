"""Builds the shipped CLIP tokenizer files (vocab.json, merges.txt) from open-clip's BPE merge list.

Run once by a developer: `pip download --no-deps open-clip-torch`, then
`python scripts/build_clip_tokenizer.py path/to/bpe_simple_vocab_16e6.txt.gz webui/models/tokenizer`.
The app never runs this; it loads the committed files offline.
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

MERGE_COUNT = 49152 - 256 - 2


def byte_alphabet() -> list[str]:
    """The 256 printable stand-ins CLIP byte-level BPE uses for raw bytes, in vocabulary order."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    # Vocabulary order is printable bytes first, then the remapped ones (not byte order).
    return [chr(c) for c in codes]


def build(bpe_gz: Path, out_dir: Path) -> None:
    lines = gzip.open(bpe_gz, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    alphabet = byte_alphabet()
    tokens = alphabet + [a + "</w>" for a in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False), encoding="utf-8"
    )
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
