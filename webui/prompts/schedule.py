"""Prompt-editing and alternation schedules: Lark LALR grammar (prompt.lark), bracket-pairing post-lexer."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Union

from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import LarkError
from lark.lark import PostLex

GRAMMAR_PATH = Path(__file__).with_name("prompt.lark")

# Lark's common SIGNED_NUMBER, spelled out so that validity is decided on the text of a
# segment after parsing (only ASCII digits, optional exponent, optional sign).
_WHEN_RE = re.compile(r"\s*([+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*")

_OPENERS = {"LSQB": "RSQB", "LPAR": "RPAR"}
_CLOSERS = frozenset(_OPENERS.values())


@dataclass(frozen=True)
class Edit:
    """`[before:after:when]`; `before` is None for the `[after:when]` form."""

    before: "Node | None"
    after: "Node"
    when: str


@dataclass(frozen=True)
class Alternation:
    """`[a|b|c]`: option (step - 1) % len at each step."""

    options: tuple["Node", ...]


@dataclass(frozen=True)
class Seq:
    """Concatenation of parts."""

    parts: tuple["Node", ...]


Node = Union[str, Seq, Edit, Alternation]


@dataclass(frozen=True)
class _Broken:
    """A balanced group that is not a valid construct: its brackets and separators become text."""

    parts: tuple[Node, ...]
    has_pipe: bool


class _PairBrackets(PostLex):
    """Retypes brackets with no partner to STRAY, the way A1111's tolerant start rule treats them.

    A closer that does not match the innermost open bracket makes every open bracket (and the
    closer) literal: a valid group may not contain a malformed one, so all enclosing groups fail.
    """

    always_accept = ()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        tokens = list(stream)
        stray: set[int] = set()
        open_stack: list[int] = []
        for i, tok in enumerate(tokens):
            if tok.type in _OPENERS:
                open_stack.append(i)
            elif tok.type in _CLOSERS:
                if open_stack and _OPENERS[tokens[open_stack[-1]].type] == tok.type:
                    open_stack.pop()
                else:
                    stray.update(open_stack)
                    stray.add(i)
                    open_stack.clear()
        stray.update(open_stack)
        for i, tok in enumerate(tokens):
            yield Token.new_borrow_pos("STRAY", tok.value, tok) if i in stray else tok


def _splice(items: list) -> tuple[list[Node], bool]:
    """Flattens broken groups into their literal parts; reports whether any exposed a '|'."""
    out: list[Node] = []
    pipe = False
    for item in items:
        if isinstance(item, _Broken):
            out.extend(item.parts)
            pipe = pipe or item.has_pipe
        elif isinstance(item, Token):
            out.append(item.value)
        else:
            out.append(item)
    return out, pipe


def _seq(parts: list[Node]) -> Node:
    """Joins adjacent strings; a single part stands for itself."""
    merged: list[Node] = []
    run: list[str] = []  # adjacent strings, joined once: `a + b` in a loop would copy the text over and over
    for part in parts:
        if isinstance(part, str):
            run.append(part)
            continue
        if run:
            joined = "".join(run)
            if joined:
                merged.append(joined)
            run = []
        merged.append(part)
    if run and "".join(run):
        merged.append("".join(run))
    if not merged:
        return ""
    if len(merged) == 1:
        return merged[0]
    return Seq(tuple(merged))


class _ToNodes(Transformer_NonRecursive):
    """Builds the step-independent tree; non-recursive so that deep nesting cannot overflow the stack."""

    def seq(self, children: list) -> list:
        return list(children)

    def body(self, children: list) -> list:
        return list(children)

    def group(self, children: list) -> Node | _Broken:
        opener, body, closer = children
        segments: list[list] = body[0::2]
        separators = [tok.value for tok in body[1::2]]
        if not any(isinstance(x, _Broken) for seg in segments for x in seg):
            valid = self._classify(opener.value, segments, separators)
            if valid is not None:
                return valid
        parts: list[Node] = [opener.value]
        has_pipe = "|" in separators
        for index, seg in enumerate(segments):
            if index:
                parts.append(separators[index - 1])
            flat, pipe = _splice(seg)
            parts.extend(flat)
            has_pipe = has_pipe or pipe
        parts.append(closer.value)
        return _Broken(tuple(parts), has_pipe)

    @staticmethod
    def _classify(opener: str, segments: list[list], separators: list[str]) -> Node | None:
        def text(seg: list) -> Node:
            return _seq(_splice(seg)[0])

        if opener == "(":
            if "|" in separators or len(separators) > 1:
                return None
            inner = [text(segments[0])] + ([":", text(segments[1])] if separators else [])
            return _seq(["(", *inner, ")"])
        if not separators:
            return _seq(["[", text(segments[0]), "]"])
        if all(s == "|" for s in separators):
            return Alternation(tuple(text(seg) for seg in segments))
        if all(s == ":" for s in separators) and len(separators) <= 2:
            last = segments[-1]
            if all(isinstance(x, Token) for x in last):
                number = _WHEN_RE.fullmatch("".join(x.value for x in last))
                if number is not None:
                    before = text(segments[0]) if len(separators) == 2 else None
                    return Edit(before, text(segments[-2]), number.group(1))
        return None

    def start(self, children: list) -> tuple[Node, bool]:
        parts, pipe = _splice(children)
        return _seq(parts), pipe


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The compiled parser; immutable once built, so caching it is safe."""
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        postlex=_PairBrackets(),
        maybe_placeholders=False,
    )


def parse_schedule_tree(prompt: str) -> Node:
    """Parses prompt-editing syntax; on any failure the whole prompt is one literal string (as A1111)."""
    try:
        tree = _parser().parse(prompt)
        node, exposed_pipe = _ToNodes().transform(tree)
    except (LarkError, RecursionError):
        return prompt
    return prompt if exposed_pipe else node


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, Seq):
            stack.extend(current.parts)
        elif isinstance(current, Edit):
            stack.append(current.after)
            if current.before is not None:
                stack.append(current.before)
        elif isinstance(current, Alternation):
            stack.extend(current.options)


def switch_step(when: str, steps: int, int_offset: int = 0, float_offset: float = 0.0, old: bool = False) -> int:
    """Step after which an edit switches; a '.' in the number makes it a fraction of `steps`."""
    value = float(when)
    if old:
        value = value * steps if value < 1 else value
    elif "." in when:
        value = (value - float_offset) * steps
    else:
        value = value - int_offset
    if math.isnan(value) or value >= steps:
        return steps
    # Anything at or below zero behaves alike ("to" from the start); avoids int(-inf).
    return int(max(value, -1.0))


def render(node: Node, step: int, switch: dict[int, int]) -> str:
    """Text of the tree at one (1-based) step; `switch` maps id(Edit) to its switch step."""
    out: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            out.append(current)
        elif isinstance(current, Seq):
            stack.extend(reversed(current.parts))
        elif isinstance(current, Edit):
            chosen = (current.before if step <= switch[id(current)] else current.after)
            if chosen is not None:
                stack.append(chosen)
        else:
            stack.append(current.options[(step - 1) % len(current.options)])
    return "".join(out)


def schedule_from_tree(
    tree: Node, steps: int, hires_steps: int | None = None, old_timeline: bool = False
) -> list[tuple[int, str]]:
    """Boundaries are every edit's switch step (>= 1), every step if any alternation exists, and the last step."""
    if hires_steps is None or old_timeline:
        int_offset, float_offset, total = 0, 0.0, steps
    else:
        int_offset, float_offset, total = steps, 1.0, hires_steps
    switch: dict[int, int] = {}
    boundaries = {total}
    for node in _walk(tree):
        if isinstance(node, Edit):
            at = switch_step(node.when, total, int_offset, float_offset, old_timeline)
            switch[id(node)] = at
            if at >= 1:
                boundaries.add(at)
        elif isinstance(node, Alternation):
            boundaries.update(range(1, total + 1))
    return [(step, render(tree, step, switch)) for step in sorted(boundaries)]


def prompt_schedule(
    prompt: str, steps: int, hires_steps: int | None = None, *, old_timeline: bool = False
) -> list[tuple[int, str]]:
    """A1111's get_learned_conditioning_prompt_schedules for one prompt: [(end_step, text), ...].

    With `hires_steps` the result is the hires pass's schedule (0-1 / base steps cover the first pass).
    """
    return schedule_from_tree(parse_schedule_tree(prompt), steps, hires_steps, old_timeline)
