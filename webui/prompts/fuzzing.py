"""What prompt fuzzing needs besides random text: the grammar's special tokens and a check of a parsed prompt."""
from __future__ import annotations

import math

from webui.prompts.parsed import ParsedPrompt

# Every character and word the prompt syntax gives a meaning to, plus numbers that stress `float()`.
SPECIALS = ("(", ")", "[", "]", ":", "|", "\\", "\\(", "\\]", "<", ">", "<lora:", "<lora:a:1e308>", "<lyco:b:",
            ":0.5]", ":1.2)", "::", "AND", " AND ", ":-2 AND ", "BREAK", " BREAK ", "0.5", "1e308", "-1", "nan",
            "inf", "1.2.3", ".", ",", " ", "\n", "a", "中文", "=", "te=", "{prompt}")


def check_parsed(parsed: ParsedPrompt, steps: int) -> None:
    """Raise AssertionError unless `parsed` is well formed: schedules end at `steps`, weights are numbers."""
    assert parsed.subprompts, "no AND part"
    for sub in parsed.subprompts:
        assert isinstance(sub.weight, float)
        ends = [entry.end_step for entry in sub.schedule]
        assert ends and ends == sorted(set(ends)) and ends[-1] == steps, ends
        for entry in sub.schedule:
            for text, weight in entry.fragments:
                assert isinstance(text, str) and isinstance(weight, float) and not math.isnan(weight)
