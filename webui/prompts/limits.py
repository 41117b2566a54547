"""Documented limits on one prompt, so a hostile or accidental prompt bomb is refused quickly instead of parsed."""
from __future__ import annotations

# A1111 has no limit; real prompts stay far below both (a long one is a few thousand characters, 5-10 brackets
# deep). Above them, parsing and encoding would hold the only worker for seconds to minutes.
MAX_PROMPT_CHARS = 32_768
MAX_PROMPT_DEPTH = 100  # brackets open at the same time, ( and [ together, unclosed ones included


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
