"""parse_prompt: extra networks, AND, schedule and emphasis of one prompt in a single call."""
from __future__ import annotations

from dataclasses import dataclass

from webui.prompts.attention import parse_attention
from webui.prompts.composable import split_and_prompts
from webui.prompts.extra_networks import ExtraNetworkTag, extract_extra_networks
from webui.prompts.schedule import parse_schedule_tree, schedule_from_tree


@dataclass(frozen=True)
class ScheduledText:
    """Text active up to and including `end_step` (schedule steps are 1-based), with its emphasis."""

    end_step: int
    text: str
    fragments: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SubPrompt:
    """One AND part: its text (weight removed), its CFG weight and its editing schedule."""

    text: str
    weight: float
    schedule: tuple[ScheduledText, ...]

    def text_at(self, step: int) -> str:
        """Text used at schedule step `step`; steps past the end use the last entry."""
        for entry in self.schedule:
            if step <= entry.end_step:
                return entry.text
        return self.schedule[-1].text


@dataclass(frozen=True)
class ParsedPrompt:
    """Everything the processing layer needs from one prompt string."""

    original: str
    text: str
    extra_networks: tuple[ExtraNetworkTag, ...]
    subprompts: tuple[SubPrompt, ...]
    steps: int
    hires_steps: int | None

    @property
    def unique_texts(self) -> tuple[str, ...]:
        """Every distinct scheduled text, in first-seen order: what has to be encoded."""
        seen: dict[str, None] = {}
        for sub in self.subprompts:
            for entry in sub.schedule:
                seen.setdefault(entry.text, None)
        return tuple(seen)


def parse_prompt(
    text: str,
    steps: int,
    hires_steps: int | None = None,
    *,
    negative: bool = False,
    old_timeline: bool = False,
) -> ParsedPrompt:
    """Parses a prompt in A1111's order: tags out, split on AND, schedule each part, emphasis per text.

    A negative prompt (`negative=True`) keeps its tags as literal text and is never split on AND.
    With `hires_steps` the schedules are those of the hires pass.
    """
    tags: list[ExtraNetworkTag]
    if negative:
        stripped, tags = text, []
        parts = [(text, 1.0)]
    else:
        stripped, tags = extract_extra_networks(text)
        parts = split_and_prompts(stripped)
    subprompts: list[SubPrompt] = []
    cache: dict[str, tuple[ScheduledText, ...]] = {}
    # An alternation makes every step an entry, but with only a few distinct texts: weigh each text once.
    weighed: dict[str, tuple[tuple[str, float], ...]] = {}
    for part_text, weight in parts:
        if part_text not in cache:
            tree = parse_schedule_tree(part_text)
            entries = []
            for end, scheduled in schedule_from_tree(tree, steps, hires_steps, old_timeline):
                if scheduled not in weighed:
                    weighed[scheduled] = tuple(parse_attention(scheduled))
                entries.append(ScheduledText(end, scheduled, weighed[scheduled]))
            cache[part_text] = tuple(entries)
        subprompts.append(SubPrompt(part_text, weight, cache[part_text]))
    return ParsedPrompt(text, stripped, tuple(tags), tuple(subprompts), steps, hires_steps)
