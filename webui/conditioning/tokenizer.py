"""The CLIP BPE tokenizer, loaded from files shipped in the repo (never from a hub)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "assets" / "clip_tokenizer"
BOS_ID = 49406
EOS_ID = 49407


@lru_cache(maxsize=2)
def load_clip_tokenizer(pad_with_eos: bool = True) -> CLIPTokenizer:
    """SD1.x and SDXL's first encoder pad with EOS; OpenCLIP encoders (SD2, SDXL's second) pad with 0 ("!")."""
    return CLIPTokenizer(
        str(TOKENIZER_DIR / "vocab.json"),
        str(TOKENIZER_DIR / "merges.txt"),
        model_max_length=77,
        pad_token="<|endoftext|>" if pad_with_eos else "!",
    )
