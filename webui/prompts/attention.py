"""Emphasis weights `(x)`, `[x]`, `(x:w)` and BREAK, via a small regex tokenizer (as A1111's attention parser)."""
from __future__ import annotations

import re

ROUND_FACTOR = 1.1
SQUARE_FACTOR = 1 / 1.1
BREAK_WEIGHT = -1.0

# One token per match, tried in order: escapes first so "\(" is never an opener, the
# weighted closer before the bare ":" so ":1.2)" is seen as a unit.
_TOKEN = re.compile(
    r"""
    (?P<escape>\\[()\[\]\\])
  | (?P<lone_backslash>\\)
  | (?P<open>[(\[])
  | (?P<weighted_close>:\s*(?P<weight>[+-]?[.\d]+)\s*\))
  | (?P<close>[)\]])
  | (?P<text>[^\\()\[\]:]+)
  | (?P<colon>:)
    """,
    re.VERBOSE,
)

# BREAK as a standalone uppercase word; the whitespace around it belongs to it.
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


def _as_float(number: str) -> float | None:
    try:
        return float(number)
    except ValueError:
        return None


def parse_attention(text: str) -> list[tuple[str, float]]:
    """Splits `text` into (fragment, weight) pairs exactly like A1111's parse_prompt_attention.

    `(x)` multiplies by 1.1, `[x]` divides by 1.1, `(x:w)` multiplies by w; nesting multiplies;
    an unclosed opener applies to the end of the text; an unmatched closer is literal; `\\(`,
    `\\)`, `\\[`, `\\]`, `\\\\` are literal characters and any other backslash is dropped.
    A standalone `BREAK` gives ("BREAK", -1.0) (inside brackets it is multiplied like any other
    fragment, and so is no longer a BREAK downstream). Adjacent equal weights are merged; an
    empty text gives [("", 1.0)].

    Deliberate difference: a weight that is a run of digits and dots but not a float (e.g.
    `(x:1.2.3)`) makes A1111 fail the generation; here the colon and number stay literal text
    and the group is a plain `( )` (x1.1).
    """
    fragments: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for item in fragments[start:]:
            item[1] *= factor

    def add_text(chunk: str) -> None:
        for index, piece in enumerate(_BREAK.split(chunk)):
            if index:
                fragments.append(["BREAK", BREAK_WEIGHT])
            fragments.append([piece, 1.0])

    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "weight":  # the inner group of weighted_close can be reported as lastgroup
            kind = "weighted_close"
        token = match.group(0)
        if kind == "escape":
            fragments.append([token[1], 1.0])
        elif kind == "lone_backslash":
            # A1111 keeps an empty fragment here; it only matters for merging, so keep it too.
            fragments.append(["", 1.0])
        elif kind == "open":
            (round_open if token == "(" else square_open).append(len(fragments))
        elif kind == "weighted_close" and round_open:
            weight = _as_float(match.group("weight"))
            if weight is not None:
                scale_from(round_open.pop(), weight)
            else:
                add_text(token[:-1])
                scale_from(round_open.pop(), ROUND_FACTOR)
        elif kind == "close" and token == ")" and round_open:
            scale_from(round_open.pop(), ROUND_FACTOR)
        elif kind == "close" and token == "]" and square_open:
            scale_from(square_open.pop(), SQUARE_FACTOR)
        else:
            add_text(token)

    # Unclosed openers apply to the end, outermost first, round before square (A1111's order,
    # which fixes the float rounding of the products).
    for start in round_open:
        scale_from(start, ROUND_FACTOR)
    for start in square_open:
        scale_from(start, SQUARE_FACTOR)

    if not fragments:
        return [("", 1.0)]
    merged: list[list] = [fragments[0]]
    for item in fragments[1:]:
        if item[1] == merged[-1][1]:
            merged[-1][0] += item[0]
        else:
            merged.append(item)
    return [(str(t), float(w)) for t, w in merged]
