"""Hypothesis properties: every parser is total and fast on arbitrary prompt-like strings."""
from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webui.prompts import (
    extract_extra_networks,
    parse_attention,
    parse_prompt,
    prompt_schedule,
    split_and_prompts,
)

_PIECES = st.sampled_from(
    list("()[]:|\\ abcxyz019")
    + ["BREAK", "AND", " BREAK ", " AND ", "<lora:x:0.5>", "[a|b]", "[p:q:3]", "(w:1.5)", "\n"]
)
prompt_text = st.lists(_PIECES, max_size=1200).map("".join).map(lambda s: s[:5000])
no_colon_text = st.lists(st.sampled_from(list("()[]|\\ ab9") + ["BREAK", " BREAK "]), max_size=400).map("".join)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(prompt_text, st.integers(min_value=1, max_value=40), st.one_of(st.none(), st.integers(1, 20)))
def test_parse_prompt_is_total_and_fast(text: str, steps: int, hires: int | None) -> None:
    # CPU time of this process, not wall time: other work sharing the machine cannot make it fail.
    start = time.process_time()
    parsed = parse_prompt(text, steps, hires)
    elapsed = time.process_time() - start
    assert elapsed < 1.0
    total = hires if hires is not None else steps
    for sub in parsed.subprompts:
        ends = [e.end_step for e in sub.schedule]
        assert ends == sorted(set(ends)) and ends[-1] == total


@FAST
@given(prompt_text)
def test_attention_weights_are_non_negative_except_break(text: str) -> None:
    for fragment, weight in parse_attention(text):
        if fragment == "BREAK" and weight < 0:
            continue
        assert weight >= 0  # an explicit (x:0) may give exactly zero


@FAST
@given(no_colon_text)
def test_without_explicit_weights_every_weight_is_positive(text: str) -> None:
    for fragment, weight in parse_attention(text):
        assert weight > 0 or (fragment == "BREAK" and weight < 0)


@FAST
@given(prompt_text)
def test_attention_keeps_all_plain_characters(text: str) -> None:
    # Only brackets, backslashes and whitespace/colons/digits (consumed as weights or BREAK padding) vanish.
    joined = "".join(f for f, w in parse_attention(text) if not (f == "BREAK" and w < 0))
    letters = [c for c in text if c in "acxyz|"]
    assert [c for c in joined if c in "acxyz|"] == letters


@FAST
@given(prompt_text)
def test_other_parsers_are_total(text: str) -> None:
    stripped, _tags = extract_extra_networks(text)
    assert "<lora:x:0.5>" not in stripped
    assert len(split_and_prompts(text)) == text.count("AND") - _and_inside_words(text) + 1
    assert prompt_schedule(text, 5)[-1][0] == 5


def _and_inside_words(text: str) -> int:
    import re

    return len(re.findall(r"AND", text)) - len(re.findall(r"\bAND\b", text))


def test_pathological_nesting_is_fast() -> None:
    for text in ["[" * 5000, "(" * 2500 + ")" * 2500, "[a:" * 1600 + "3]" * 1600, "[a|" * 1250 + "]" * 1250]:
        start = time.process_time()  # CPU time: immune to other load on a shared machine
        prompt_schedule(text, 30)
        parse_attention(text)
        assert time.process_time() - start < 1.0
