"""Composable diffusion: splitting a positive prompt on `AND` into weighted sub-prompts."""
from __future__ import annotations

import re

_AND = re.compile(r"\bAND\b")
# Lazy text, then an optional ":number" and trailing whitespace, both dropped from the text.
_WEIGHTED = re.compile(r"(.*?)(?:\s*:\s*([+-]?(?:\d+\.?|\d*\.\d+)))?\s*", re.DOTALL)


def split_and_prompts(text: str) -> list[tuple[str, float]]:
    """`a castle AND a dragon :0.6` -> [("a castle", 1.0), (" a dragon", 0.6)].

    Leading whitespace of a part is kept, trailing whitespace is dropped; weights are not normalised
    and may be negative.
    """
    parts: list[tuple[str, float]] = []
    for piece in _AND.split(text):
        match = _WEIGHTED.fullmatch(piece)
        if match is None:  # cannot happen (the pattern accepts any string); kept for totality
            parts.append((piece, 1.0))
            continue
        weight = match.group(2)
        parts.append((match.group(1), float(weight) if weight is not None else 1.0))
    return parts
