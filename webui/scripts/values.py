"""A1111's X/Y/Z value syntax: comma lists (CSV quotes allowed) and the `a-b`, `a-b (+s)`, `a-b [n]` ranges."""
from __future__ import annotations

import csv
import io
import re
from typing import Callable

import numpy as np

from webui.errors import UserInputError

_NUMBER = r"[+-]?\s*\d+"
_FLOAT = r"[+-]?\s*\d+(?:\.\d*)?"
_INT_STEP = re.compile(rf"\s*({_NUMBER})\s*-\s*({_NUMBER})(?:\s*\(([+-]\d+)\s*\))?\s*")
_INT_COUNT = re.compile(rf"\s*({_NUMBER})\s*-\s*({_NUMBER})\s*\[(\d+)\s*\]\s*")
_FLOAT_STEP = re.compile(rf"\s*({_FLOAT})\s*-\s*({_FLOAT})(?:\s*\(([+-]\d+(?:\.\d*)?)\s*\))?\s*")
_FLOAT_COUNT = re.compile(rf"\s*({_FLOAT})\s*-\s*({_FLOAT})\s*\[(\d+(?:\.\d*)?)\s*\]\s*")


def split_values(text: str) -> list[str]:
    """`a, "b, c", d` → ["a", "b, c", "d"]: CSV fields, stripped, empty ones dropped."""
    rows = csv.reader(io.StringIO(text or ""), skipinitialspace=True)
    return [field.strip() for row in rows for field in row if field.strip()]


def join_values(values: list[str]) -> str:
    """The inverse of split_values: one CSV line (quotes only where a value needs them)."""
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue().strip()


def _number(text: str) -> str:
    return text.replace(" ", "")


def expand_int(values: list[str]) -> list[str | int]:
    """Ranges of whole numbers. As A1111: `a-b` and `a-b (+s)` run like range(a, b + 1, s), so `10-1 (-3)`
    gives 10, 7, 4; `a-b [n]` gives n evenly spaced values, truncated to whole numbers."""
    out: list[str | int] = []
    for value in values:
        step_match, count_match = _INT_STEP.fullmatch(value), _INT_COUNT.fullmatch(value)
        if step_match:
            start, end = int(_number(step_match.group(1))), int(_number(step_match.group(2)))
            step = int(step_match.group(3)) if step_match.group(3) else 1
            if step == 0:
                raise UserInputError(f"range {value!r} has a step of 0")
            out += list(range(start, end + 1, step))
        elif count_match:
            start, end = int(_number(count_match.group(1))), int(_number(count_match.group(2)))
            count = int(count_match.group(3))
            out += [int(x) for x in np.linspace(start, end, count).tolist()]
        else:
            out.append(value)
    return out


def expand_float(values: list[str]) -> list[str | float]:
    """Ranges of decimals: `a-b (+s)` is numpy.arange(a, b + s, s) and `a-b [n]` numpy.linspace(a, b, n)."""
    out: list[str | float] = []
    for value in values:
        step_match, count_match = _FLOAT_STEP.fullmatch(value), _FLOAT_COUNT.fullmatch(value)
        if step_match:
            start, end = float(_number(step_match.group(1))), float(_number(step_match.group(2)))
            step = float(step_match.group(3)) if step_match.group(3) else 1.0
            if step == 0:
                raise UserInputError(f"range {value!r} has a step of 0")
            out += np.arange(start, end + step, step).tolist()
        elif count_match:
            start, end = float(_number(count_match.group(1))), float(_number(count_match.group(2)))
            out += np.linspace(start, end, int(float(count_match.group(3)))).tolist()
        else:
            out.append(value)
    return out


def _convert(values: list, kind: Callable, what: str, axis: str) -> list:
    converted = []
    for value in values:
        try:
            converted.append(kind(value))
        except (TypeError, ValueError):
            raise UserInputError(f"{axis}: {value!r} is not {what}") from None
    return converted


def parse_values(text: str, kind: type, axis: str = "values") -> list:
    """Text as typed in an axis' values box → typed values (int, float or str), ranges expanded."""
    parts = split_values(text)
    if kind is int:
        return _convert(expand_int(parts), int, "a whole number", axis)
    if kind is float:
        return _convert(expand_float(parts), float, "a number", axis)
    return parts
