"""AND splitting (reference section 5) and the all-in-one parse_prompt."""
from __future__ import annotations

import pytest

from webui.prompts import parse_prompt, split_and_prompts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a castle AND a dragon :0.6", [("a castle", 1.0), (" a dragon", 0.6)]),
        ("a AND b", [("a", 1.0), (" b", 1.0)]),
        ("x:2 AND y : -1.5", [("x", 2.0), (" y", -1.5)]),
        ("x:.5", [("x", 0.5)]),
        ("x:+3.", [("x", 3.0)]),
        ("  lead  ", [("  lead", 1.0)]),
        ("a and b", [("a and b", 1.0)]),
        ("ANDROID AND", [("ANDROID", 1.0), ("", 1.0)]),
        ("x:1.2.2", [("x:1.2.2", 1.0)]),
        ("(a:1.2) AND b", [("(a:1.2)", 1.0), (" b", 1.0)]),
        ("", [("", 1.0)]),
    ],
)
def test_split_and(text: str, expected: list[tuple[str, float]]) -> None:
    assert split_and_prompts(text) == expected


def test_parse_prompt_does_everything_in_reference_order() -> None:
    parsed = parse_prompt("<lora:a:0.5> a [cat:dog:0.5] AND (b):0.7", 10)
    assert [t.name for t in parsed.extra_networks] == ["a"]
    assert parsed.text == " a [cat:dog:0.5] AND (b):0.7"
    first, second = parsed.subprompts
    assert (first.text, first.weight) == (" a [cat:dog:0.5]", 1.0)
    assert [(e.end_step, e.text) for e in first.schedule] == [(5, " a cat"), (10, " a dog")]
    assert (second.text, second.weight) == (" (b)", 0.7)
    assert second.schedule[0].fragments == ((" ", 1.0), ("b", 1.1))
    assert first.text_at(1) == " a cat" and first.text_at(6) == " a dog" and first.text_at(99) == " a dog"
    assert parsed.unique_texts == (" a cat", " a dog", " (b)")


def test_negative_prompt_keeps_tags_and_and() -> None:
    parsed = parse_prompt("<lora:a:1> x AND y", 10, negative=True)
    assert parsed.extra_networks == ()
    assert len(parsed.subprompts) == 1
    assert parsed.subprompts[0].schedule[0].text == "<lora:a:1> x AND y"


def test_hires_schedule_in_parse_prompt() -> None:
    parsed = parse_prompt("[cat:dog:1.5]", 20, 10)
    assert [(e.end_step, e.text) for e in parsed.subprompts[0].schedule] == [(5, "cat"), (10, "dog")]


def test_break_and_emphasis_inside_edits() -> None:
    parsed = parse_prompt("[(a) BREAK b:c:2]", 4)
    sched = parsed.subprompts[0].schedule
    assert sched[0].fragments == (("a", 1.1), ("", 1.0), ("BREAK", -1.0), ("b", 1.0))
    assert sched[1].fragments == (("c", 1.0),)
