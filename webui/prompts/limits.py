"""Documented limits on one prompt, so a hostile or accidental prompt bomb is refused quickly instead of parsed."""
from __future__ import annotations

from collections.abc import Iterable

# A1111 has no limit; real prompts stay far below both (a long one is a few thousand characters, 5-10 brackets
# deep). Above them, parsing and encoding would hold the only worker for seconds to minutes.
MAX_PROMPT_CHARS = 32_768
MAX_PROMPT_DEPTH = 100  # brackets open at the same time, ( and [ together, unclosed ones included
# Alternations of coprime lengths ([a|b] [c|d|e] [f|g|h|i|j] …) give a different text at every step: all the distinct
# texts of one prompt's schedule together may hold this many characters (each has to be weighed and encoded).
MAX_SCHEDULED_CHARS = 262_144


def prompt_problem(text: str) -> str | None:
    """Why `text` cannot be used as a prompt (too long, nested too deeply, lone surrogates), or None.

    Linear time: the length is checked before anything else looks at the text.
    """
    if len(text) > MAX_PROMPT_CHARS:
        return f"is {len(text):,} characters long, above the limit of {MAX_PROMPT_CHARS:,} (MAX_PROMPT_CHARS)"
    round_open = square_open = deepest = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            round_open += 1
        elif char == "[":
            square_open += 1
        elif char == ")" and round_open:
            round_open -= 1
        elif char == "]" and square_open:
            square_open -= 1
        else:
            continue
        deepest = max(deepest, round_open + square_open)
    if deepest > MAX_PROMPT_DEPTH:
        return (f"nests brackets {deepest} deep, above the limit of {MAX_PROMPT_DEPTH} (MAX_PROMPT_DEPTH); "
                f"close the brackets you opened or escape them as \\( \\[")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"holds a lone UTF-16 surrogate at character {error.start}, which is not text"
    return None


def schedule_problem(texts: Iterable[str]) -> str | None:
    """Why a prompt's scheduled texts are too much work to encode (see MAX_SCHEDULED_CHARS), or None."""
    total = sum(len(text) for text in set(texts))
    if total > MAX_SCHEDULED_CHARS:
        return (f"changes at so many steps that its distinct texts hold {total:,} characters, above the limit of "
                f"{MAX_SCHEDULED_CHARS:,} (MAX_SCHEDULED_CHARS); use fewer alternations [a|b] or fewer steps")
    return None

# Seconds one request may spend turning its prompts into conditioning (parsing, weighing, tokenising, running the
# text encoders), summed over its passes. The limits above keep parsing under ~1 s; this bounds what they cannot:
# a long prompt on a slow CPU with two text encoders (SDXL). A 32 KB prompt encodes in ~1 s on the demo model and
# in seconds on a real SD 1.5 CPU encoder; past the budget the job stops and the queue moves on.
PROMPT_TIME_BUDGET_S = 30.0
