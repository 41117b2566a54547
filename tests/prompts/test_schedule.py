"""prompt_schedule vectors: prompt editing, alternation, hires timeline, parse-failure fallback (reference 6-8)."""
from __future__ import annotations

import pytest

from webui.prompts import prompt_schedule


def g(prompt: str, steps: int = 10, hires: int | None = None) -> list[tuple[int, str]]:
    return prompt_schedule(prompt, steps, hires)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("test", [(10, "test")]),
        ("", [(10, "")]),
        ("a [b:c:0.5]", [(5, "a b"), (10, "a c")]),
        ("a [b:3]", [(3, "a "), (10, "a b")]),
        ("a [b: 3]", [(3, "a "), (10, "a b")]),
        ("a [b::3]", [(3, "a b"), (10, "a ")]),
        ("a [[[b]]: 2]", [(2, "a "), (10, "a [[b]]")]),
        ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
        ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
        ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
        ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
        ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
        # "5.0" has a dot: fraction of steps, 5*10 clamps to 10
        ("[cat:dog:5.0]", [(10, "cat")]),
        # integer past the end: "from" throughout; zero / negative: "to" from the start
        ("[cat:dog:25]", [(10, "cat")]),
        ("[cat:dog:0]", [(10, "dog")]),
        ("[cat:dog:-3]", [(10, "dog")]),
        # colon inside parentheses does not split an edit
        ("[(a:1.2):b:4]", [(4, "(a:1.2)"), (10, "b")]),
        # scientific notation is a number for the scheduler (no dot: absolute step)
        ("[a:b:4e0]", [(4, "a"), (10, "b")]),
    ],
)
def test_editing(prompt: str, expected: list[tuple[int, str]]) -> None:
    assert g(prompt) == expected


def test_reference_examples_20_steps() -> None:
    assert prompt_schedule("a [cat:dog:8] photo", 20) == [(8, "a cat photo"), (20, "a dog photo")]
    assert prompt_schedule("[cat:dog:0.25]", 20) == [(5, "cat"), (20, "dog")]
    assert prompt_schedule("a [hat:12]", 20) == [(12, "a "), (20, "a hat")]
    assert prompt_schedule("a [hat::12]", 20) == [(12, "a hat"), (20, "a ")]


def test_alternation() -> None:
    assert g("[fe|male]", 4) == [(1, "fe"), (2, "male"), (3, "fe"), (4, "male")]
    assert g("[fe|]male", 4) == [(1, "female"), (2, "male"), (3, "female"), (4, "male")]
    assert g("[fe|||]male", 6) == [(1, "female"), (2, "male"), (3, "male"), (4, "male"), (5, "female"), (6, "male")]
    assert g("[a|(b:1.1)]", 3) == [(1, "a"), (2, "(b:1.1)"), (3, "a")]
    assert g("[cat|dog|[x|y]]", 6) == [(1, "cat"), (2, "dog"), (3, "x"), (4, "cat"), (5, "dog"), (6, "y")]


def test_alternation_inside_edit_adds_every_step_as_a_boundary() -> None:
    assert g("[[a|b]:c:2]", 4) == [(1, "a"), (2, "b"), (3, "c"), (4, "c")]


def test_boundaries_of_inactive_edits_are_kept() -> None:
    # A1111 collects the switch steps of every edit, even one inside a branch that is not shown.
    assert g("[[x:y:5]:z:2]") == [(2, "x"), (5, "z"), (10, "z")]


@pytest.mark.parametrize(
    "prompt",
    [
        "a [unbalanced",
        "a|b",
        "[a|b",
        "[cat:dog:5] a|b",
        "[a|b) c]",
        "[a:b|c:3]",
        "[a|b:0.5]",
        "trailing backslash\\",
        "[a:b:3] x\\\ny",
        "a [{b|d{:.5] c",
    ],
)
def test_parse_failure_keeps_the_prompt_verbatim(prompt: str) -> None:
    assert g(prompt) == [(10, prompt)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("[a:b]", [(10, "[a:b]")]),
        ("[a:b:c]", [(10, "[a:b:c]")]),
        ("[a:b:c:5]", [(10, "[a:b:c:5]")]),
        ("[a:b:(5)]", [(10, "[a:b:(5)]")]),
        ("a ] b ) c : d", [(10, "a ] b ) c : d")]),
        ("[x (y] [a:b:3]", [(3, "[x (y] a"), (10, "[x (y] b")]),
        ("\\[a:b:3\\]", [(10, "\\[a:b:3\\]")]),
        ("[a\\|b]", [(10, "[a\\|b]")]),
    ],
)
def test_malformed_groups_are_literal_but_do_not_fail_the_prompt(prompt: str, expected: list) -> None:
    assert g(prompt) == expected


def test_hires_timeline() -> None:
    assert g("a [b:.5] c", 10, 10) == [(10, "a b c")]
    assert g("a [b:1.5] c", 10, 10) == [(5, "a  c"), (10, "a b c")]
    assert prompt_schedule("[cat:dog:25]", 20) == [(20, "cat")]
    assert prompt_schedule("[cat:dog:25]", 20, 10) == [(5, "cat"), (10, "dog")]
    assert prompt_schedule("[cat:dog:1.5]", 20) == [(20, "cat")]
    assert prompt_schedule("[cat:dog:1.5]", 20, 10) == [(5, "cat"), (10, "dog")]
    assert prompt_schedule("[cat:dog:8]", 20, 10) == [(10, "dog")]


def test_old_timeline() -> None:
    assert prompt_schedule("[cat:dog:0.5]", 10, old_timeline=True) == [(5, "cat"), (10, "dog")]
    assert prompt_schedule("[cat:dog:3.0]", 10, old_timeline=True) == [(3, "cat"), (10, "dog")]
    # no hires offset in the old mode: the base step count is used
    assert prompt_schedule("[cat:dog:3]", 10, 20, old_timeline=True) == [(3, "cat"), (10, "dog")]


def test_huge_numbers_do_not_overflow() -> None:
    assert g("[a:b:1e400]") == [(10, "a")]
    assert g("[a:b:-1e400]") == [(10, "b")]
