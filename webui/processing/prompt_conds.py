"""Turns prompts into the per-step conditioning the CFG denoiser asks for (AND parts, prompt editing, SDXL extras)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from webui.conditioning import EmbeddingDatabase, PromptEncoder, TextEncoderSlot
from webui.conditioning.embedding_library import EmbeddingLibrary
from webui.conditioning.tokenizer import load_clip_tokenizer
from webui.errors import UserInputError
from webui.models.loader import LoadedComponents
from webui.prompts import ExtraNetworkTag, extract_extra_networks, prompt_schedule, split_and_prompts
from webui.prompts.limits import schedule_problem

Cond = dict[str, torch.Tensor]


class ScheduleEntry(NamedTuple):
    """A text in effect for every sampler step up to and including `end_step`."""

    end_step: int
    text: str


@dataclass(frozen=True)
class PlanPart:
    """One AND sub-prompt: its prompt-editing schedule and its weight."""

    schedule: tuple[ScheduleEntry, ...]
    weight: float


@dataclass(frozen=True)
class PromptPlan:
    """A prompt after parsing: its AND parts and its extra-network tags (already taken out of the text)."""

    parts: tuple[PlanPart, ...]
    networks: tuple[ExtraNetworkTag, ...]


def plan_prompt(text: str, steps: int, hires_steps: int | None = None, *, allow_and: bool = True,
                check: Callable[[], None] | None = None) -> PromptPlan:
    """Extra-network tags come out first, then AND splitting, then the prompt-editing schedule (A1111's order).

    With `hires_steps`, the schedule follows A1111's hires timeline (0-1 = first pass, 1-2 = hires pass).
    `check` (the job's Interrupt / time-budget check) runs between the AND parts.
    """
    check = check or _no_check
    check()
    clean, tags = extract_extra_networks(text)
    pieces = split_and_prompts(clean) if allow_and else [(clean, 1.0)]
    parts = []
    for piece, weight in pieces:
        check()
        schedule = tuple(ScheduleEntry(int(end), str(text)) for end, text in prompt_schedule(piece, steps, hires_steps))
        parts.append(PlanPart(schedule, float(weight)))
    problem = schedule_problem(entry.text for part in parts for entry in part.schedule)
    if problem:
        raise UserInputError(f"The prompt {problem}")
    return PromptPlan(tuple(parts), tuple(tags))


def _no_check() -> None:
    """For callers outside a job (tests, the token counter): nothing can interrupt them."""


def text_at(schedule: tuple[ScheduleEntry, ...], step: int) -> str:
    """A1111 uses the first entry whose end step is >= the current step index."""
    for end, text in schedule:
        if step <= end:
            return text
    return schedule[-1][1]


def embeddings_for(components: LoadedComponents, library: EmbeddingLibrary) -> EmbeddingDatabase:
    widths = tuple(int(e.model.config.hidden_size) for e in components.text_encoders)
    return library.database_for(load_clip_tokenizer(), widths)


def prompt_encoder_for(components: LoadedComponents, emphasis: str,
                       embeddings: EmbeddingDatabase | None = None, comma_backtrack: int = 20) -> PromptEncoder:
    """Each family's A1111 rules for which hidden layer feeds the UNet (see the conditioning layer)."""
    family = components.architecture.family
    slots = []
    for encoder in components.text_encoders:
        if family == "sd1":
            slots.append(TextEncoderSlot.sd1(encoder.model, embeddings))
        elif family == "sd2":
            slots.append(TextEncoderSlot.sd2(encoder.model, embeddings))
        elif encoder.kind == "clip_l":
            slots.append(TextEncoderSlot.sdxl_clip_l(encoder.model, embeddings))
        else:
            slots.append(TextEncoderSlot.sdxl_clip_g(encoder.model, embeddings))
    return PromptEncoder(slots, emphasis=emphasis, comma_backtrack=comma_backtrack,
                         zero_empty_negative=family == "sdxl")


class ConditioningBuilder:
    """Encodes each distinct text once per generation and assembles batched cond dicts for a step."""

    def __init__(self, encoder: PromptEncoder, components: LoadedComponents, clip_skip: int,
                 width: int, height: int, image_cond: torch.Tensor | None = None,
                 check: Callable[[], None] | None = None) -> None:
        self._encoder = encoder
        self._check = check  # the job's Interrupt / prompt time-budget check, asked between pieces of encoding
        self._family = components.architecture.family
        self._clip_skip = clip_skip
        self._size = (height, width)
        self._image_cond = image_cond
        self._cache: dict[tuple[str, bool], Cond] = {}
        self.embeddings_used: dict[str, None] = {}  # insertion-ordered set, for `TI hashes`

    def _encode(self, text: str, negative: bool) -> Cond:
        key = (text, negative)
        if key not in self._cache:
            with torch.no_grad():
                encoded = self._encoder.encode([text], clip_skip=self._clip_skip, is_negative=negative,
                                               check=self._check)
            self.embeddings_used.update(dict.fromkeys(encoded.embeddings_used))
            cond: Cond = {"context": encoded.context}
            if encoded.pooled is not None:
                cond["pooled"] = encoded.pooled
            self._cache[key] = cond
        return self._cache[key]

    def precompute(self, plan: PromptPlan, negative_plan: PromptPlan) -> None:
        """Encode every text any step will need now, so the text encoders can leave the GPU before sampling."""
        for part in plan.parts:
            for entry in part.schedule:
                self._encode(entry.text, False)
        for entry in negative_plan.parts[0].schedule:  # a negative prompt is never split on AND
            self._encode(entry.text, True)

    def _batched(self, cond: Cond, batch: int, negative: bool) -> Cond:
        out = {k: v.expand(batch, *v.shape[1:]) for k, v in cond.items()}
        if self._family in ("sdxl", "sdxl-refiner"):
            out["time_ids"] = self._time_ids(negative).expand(batch, -1)
        if self._image_cond is not None:
            out["c_concat"] = self._image_cond
        return out

    def _time_ids(self, negative: bool) -> torch.Tensor:
        height, width = self._size
        if self._family == "sdxl-refiner":
            score = 2.5 if negative else 6.0  # A1111's default aesthetic scores for the refiner
            return torch.tensor([[height, width, 0, 0, score]], dtype=torch.float32)
        return torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32)

    def cond_fn(self, plan: PromptPlan, batch: int) -> Callable[[int], list[tuple[Cond, float]]]:
        def cond_at(step: int) -> list[tuple[Cond, float]]:
            return [(self._batched(self._encode(text_at(part.schedule, step), False), batch, False), part.weight)
                    for part in plan.parts]
        return cond_at

    def uncond_fn(self, plan: PromptPlan, batch: int) -> Callable[[int], Cond]:
        schedule = plan.parts[0].schedule

        def uncond_at(step: int) -> Cond:
            return self._batched(self._encode(text_at(schedule, step), True), batch, True)
        return uncond_at
