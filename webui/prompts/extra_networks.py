"""Extra-network tags `<type:arg:...>`: parsed into ExtraNetworkTag records and removed from the prompt text."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

# A1111's shape: a word type, a colon, then everything up to the first '>'.
_TAG = re.compile(r"<(\w+):([^>]+)>")

_KIND_ALIASES = {"lora": "lora", "lyco": "lora", "hypernet": "hypernet"}


@dataclass(frozen=True)
class ExtraNetworkTag:
    """One `<type:...>` tag. kind is "lora" (also for `<lyco:>`), "hypernet", or the tag's type lower-cased."""

    kind: str
    name: str
    te_weight: float = 1.0
    unet_weight: float = 1.0
    dyn: int | None = None
    raw: str = ""
    positional: tuple[str, ...] = ()
    named: tuple[tuple[str, str], ...] = ()

    def named_arg(self, key: str) -> str | None:
        """Value of a `key=value` argument (extension args such as lbw= or start=), or None."""
        for k, v in self.named:
            if k == key:
                return v
        return None


def _split_args(argument_text: str) -> tuple[list[str], dict[str, str]]:
    """Exactly one '=' makes a named arg; anything else (including a=b=c) is positional."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for item in argument_text.split(":"):
        parts = item.split("=")
        if len(parts) == 2:
            named[parts[0].strip()] = parts[1].strip()
        else:
            positional.append(item.strip())
    return positional, named


def _number(text: str | None, default: float) -> float:
    """Lenient float: a missing or unreadable value keeps the default instead of failing the generation."""
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    return value if math.isfinite(value) else default


def _integer(text: str | None, default: int | None) -> int | None:
    if text is None or not text.strip():
        return default
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return default


def parse_tag(kind_text: str, argument_text: str, raw: str) -> ExtraNetworkTag:
    """Maps `<kind:name:te:unet:dyn>` (plus te=, unet=, dyn=) onto a tag; unet defaults to te."""
    positional, named = _split_args(argument_text)
    kind = _KIND_ALIASES.get(kind_text.lower(), kind_text.lower())
    name = positional[0] if positional else ""
    te = _number(positional[1] if len(positional) > 1 else None, 1.0)
    te = _number(named.get("te"), te)
    unet = _number(positional[2] if len(positional) > 2 else None, te)
    unet = _number(named.get("unet"), unet)
    dyn = _integer(positional[3] if len(positional) > 3 else None, None)
    dyn = _integer(named.get("dyn"), dyn)
    return ExtraNetworkTag(
        kind=kind,
        name=name,
        te_weight=te,
        unet_weight=unet,
        dyn=dyn,
        raw=raw,
        positional=tuple(positional),
        named=tuple(named.items()),
    )


def extract_extra_networks(text: str) -> tuple[str, list[ExtraNetworkTag]]:
    """Returns the text with every tag removed (commas and spaces around it stay) and the tags in order.

    More forgiving than A1111: whitespace around names and numbers is ignored, unreadable numbers
    fall back to their defaults, and the type is matched case-insensitively.
    """
    tags: list[ExtraNetworkTag] = []

    def take(match: re.Match[str]) -> str:
        tags.append(parse_tag(match.group(1), match.group(2), match.group(0)))
        return ""

    stripped = _TAG.sub(take, text)
    return stripped, tags
