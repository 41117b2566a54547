"""parse_attention vectors, derived from the emphasis rules of the A1111 reference (section 2 and 4)."""
from __future__ import annotations

import pytest

from webui.prompts import parse_attention

R = 1.1
S = 1 / 1.1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [("", 1.0)]),
        ("plain words", [("plain words", 1.0)]),
        ("a (b:1.5) c", [("a ", 1.0), ("b", 1.5), (" c", 1.0)]),
        ("(cat)", [("cat", 1.1)]),
        ("((cat))", [("cat", 1.2100000000000002)]),
        ("[cat]", [("cat", 0.9090909090909091)]),
        ("(cat:1.4)", [("cat", 1.4)]),
        ("((cat:2))", [("cat", 2.2)]),
        ("\\(cat\\)", [("(cat)", 1.0)]),
        ("\\[x\\]", [("[x]", 1.0)]),
        ("a\\\\b", [("a\\b", 1.0)]),
        ("(\\(x\\))", [("(x)", 1.1)]),
        # weight syntax: sign, leading dot, spaces, zero and negatives are accepted
        ("(x: .5 )", [("x", 0.5)]),
        ("(x:+2)", [("x", 2.0)]),
        ("(x:-1)", [("x", -1.0)]),
        ("(x:0)", [("x", 0.0)]),
        # not a weight: the colon stays literal and the group is a plain (x1.1)
        ("(x:abc)", [("x:abc", 1.1)]),
        ("(x:1e2)", [("x:1e2", 1.1)]),
        # deliberate difference: an unreadable number is literal instead of an error
        ("(x:1.2.3)", [("x:1.2.3", 1.1)]),
        # unbalanced brackets
        ("a)", [("a)", 1.0)]),
        ("a]", [("a]", 1.0)]),
        ("(a", [("a", 1.1)]),
        ("x [a", [("x ", 1.0), ("a", S)]),
        ("a:1.2)", [("a:1.2)", 1.0)]),
        # round and square stacks are independent
        ("([a)]", [("a", 1.1 * S)]),
        # a weight closes only the round bracket
        ("[(a:2)]", [("a", 2 * S)]),
        ("(a [b] c)", [("a ", 1.1), ("b", S * 1.1), (" c", 1.1)]),
        # lone backslashes are dropped
        ("\\a\\", [("a", 1.0)]),
        ("(a)(b)", [("ab", 1.1)]),
        # BREAK
        ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
        ("a break b", [("a break b", 1.0)]),
        ("aBREAK b", [("aBREAK b", 1.0)]),
        ("BREAK a", [("", 1.0), ("BREAK", -1.0), ("a", 1.0)]),
        ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]),
    ],
)
def test_vectors(text: str, expected: list[tuple[str, float]]) -> None:
    got = parse_attention(text)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected], rel=1e-12)


def test_exact_float_products_match_a1111_order() -> None:
    # ((x)) multiplies 1.0*1.1 then *1.1; the exact float shows the order is the reference's.
    assert parse_attention("((x))")[0][1] == 1.1 * 1.1
    assert parse_attention("[[x]]")[0][1] == (1 / 1.1) * (1 / 1.1)
    assert parse_attention("(((x:1.3)))")[0][1] == 1.3 * 1.1 * 1.1


def test_unclosed_brackets_apply_to_the_end_only() -> None:
    assert parse_attention("a (b (c) d") == [("a ", 1.0), ("b ", 1.1), ("c", 1.1 * 1.1), (" d", 1.1)]


def test_two_breaks_in_a_row_leave_an_empty_fragment_between() -> None:
    got = parse_attention("a BREAK BREAK b")
    assert got == [("a", 1.0), ("BREAK", -1.0), ("", 1.0), ("BREAK", -1.0), ("b", 1.0)]
