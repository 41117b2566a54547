"""PromptEncoder: scheduled prompts -> cross-attention context (+ SDXL pooled); A1111 chunking, emphasis, clip skip."""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

import torch

from webui.conditioning.chunks import (
    EMPHASIS_MODES,
    EmbeddingLookup,
    PromptChunk,
    build_chunks,
    count_tokens,
    empty_chunk,
)
from webui.conditioning.tokenizer import EOS_ID, load_clip_tokenizer

EncoderKind = Literal["clip_l", "open_clip"]
# clip_skip_final_ln: SD1 (N=1 final output, N>1 hidden state N-from-last + final LN)
# penultimate_final_ln: SD2 (clip skip ignored)
# penultimate: SDXL, both encoders (clip skip ignored, no final LN)
# clip_skip: SDXL CLIP-L with A1111's sdxl_clip_l_skip option (hidden state N-from-last, no final LN)
LayerRule = Literal["clip_skip_final_ln", "penultimate_final_ln", "penultimate", "clip_skip"]
_OPEN_CLIP_PAD_ID = 0


@dataclass(frozen=True)
class TextEncoderSlot:
    """One text encoder of a model, with the tokenizer and rules A1111 uses for it."""

    model: torch.nn.Module
    tokenizer: object
    kind: EncoderKind = "clip_l"
    layer: LayerRule = "clip_skip_final_ln"
    provides_pooled: bool = False
    embeddings: EmbeddingLookup | None = None

    @classmethod
    def sd1(cls, model: torch.nn.Module, embeddings: EmbeddingLookup | None = None) -> "TextEncoderSlot":
        return cls(model, load_clip_tokenizer(True), "clip_l", "clip_skip_final_ln", False, embeddings)

    @classmethod
    def sd2(cls, model: torch.nn.Module, embeddings: EmbeddingLookup | None = None) -> "TextEncoderSlot":
        return cls(model, load_clip_tokenizer(False), "open_clip", "penultimate_final_ln", False, embeddings)

    @classmethod
    def sdxl_clip_l(
        cls, model: torch.nn.Module, embeddings: EmbeddingLookup | None = None, clip_l_skip: bool = False
    ) -> "TextEncoderSlot":
        layer: LayerRule = "clip_skip" if clip_l_skip else "penultimate"
        return cls(model, load_clip_tokenizer(True), "clip_l", layer, False, embeddings)

    @classmethod
    def sdxl_clip_g(cls, model: torch.nn.Module, embeddings: EmbeddingLookup | None = None) -> "TextEncoderSlot":
        return cls(model, load_clip_tokenizer(False), "open_clip", "penultimate", True, embeddings)


@dataclass(frozen=True)
class Conditioning:
    """context: [B, 77*k, C] (C summed over encoders); pooled: [B, P] from the first chunk, or None.

    Shared with the encoder's cache: treat the tensors as read-only.
    """

    context: torch.Tensor
    pooled: torch.Tensor | None
    embeddings_used: tuple[str, ...] = ()


def _transformer(model: torch.nn.Module) -> Any:
    """transformers 5 CLIPTextModel has no `text_model` level; CLIPTextModelWithProjection does.

    Typed Any: the two classes share the attributes used here (final_layer_norm, embeddings) but no base class.
    """
    return getattr(model, "text_model", model)


def select_layer(model: torch.nn.Module, output, rule: LayerRule, clip_skip: int) -> torch.Tensor:
    """The hidden state the UNet consumes, per family (reference section 11)."""
    hidden = output.hidden_states
    final_ln = _transformer(model).final_layer_norm
    if rule == "clip_skip_final_ln":
        if clip_skip <= 1:
            return output.last_hidden_state
        return final_ln(hidden[-min(clip_skip, len(hidden))])
    if rule == "penultimate_final_ln":
        return final_ln(hidden[-2])
    if rule == "penultimate":
        return hidden[-2]
    return hidden[-min(max(clip_skip, 1), len(hidden))]


def apply_emphasis(z: torch.Tensor, multipliers: torch.Tensor, mode: str) -> torch.Tensor:
    """Original: multiply, then rescale the whole chunk tensor (batch included) back to its old mean."""
    if mode not in ("Original", "No norm"):
        return z
    weights = multipliers.to(dtype=z.dtype, device=z.device).unsqueeze(-1)
    weighted = z * weights
    new_mean = weighted.mean()
    # A zero mean after weighting (e.g. every token at weight 0) would give inf/NaN; keep the product instead.
    if mode == "No norm" or new_mean == 0:
        return weighted
    return weighted * (z.mean() / new_mean)


def _embedding_vectors(embedding: object, slot: TextEncoderSlot) -> torch.Tensor:
    """The rows an embedding gives this encoder (SDXL embeddings carry one set per encoder)."""
    vectors_for = getattr(embedding, "vectors_for", None)
    if vectors_for is not None:
        return vectors_for(slot.kind, slot.provides_pooled)
    return embedding.vec  # type: ignore[attr-defined]


@contextmanager
def _embedding_fixes(slot: TextEncoderSlot, fixes: list[list[tuple[int, object]]]) -> Iterator[None]:
    """Swaps embedding vectors into the token-embedding output, the way A1111 hooks its embedding layer."""
    if not any(fixes):
        yield
        return
    layer = _transformer(slot.model).embeddings.token_embedding

    def hook(_module, _inputs, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for row, row_fixes in enumerate(fixes):
            for offset, embedding in row_fixes:
                vec = _embedding_vectors(embedding, slot).to(device=output.device, dtype=output.dtype)
                count = min(vec.shape[0], output.shape[1] - offset)
                output[row, offset : offset + count] = vec[:count]
        return output

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class PromptEncoder:
    """Encodes batches of scheduled prompt texts for one model (one or two text encoders)."""

    def __init__(
        self,
        encoders: Sequence[TextEncoderSlot],
        emphasis: str = "Original",
        comma_backtrack: int = 20,
        *,
        zero_empty_negative: bool | None = None,
        cache_size: int = 32,
    ) -> None:
        if not encoders:
            raise ValueError("PromptEncoder needs at least one text encoder")
        if emphasis not in EMPHASIS_MODES:
            raise ValueError(f"unknown emphasis mode {emphasis!r}; expected one of {EMPHASIS_MODES}")
        self.encoders = tuple(encoders)
        self.emphasis = emphasis
        self.comma_backtrack = int(comma_backtrack)
        # SDXL (the only family with a pooled vector) zeroes an all-empty negative prompt.
        self.zero_empty_negative = (
            any(s.provides_pooled for s in self.encoders) if zero_empty_negative is None else zero_empty_negative
        )
        self._cache: OrderedDict[tuple, Conditioning] = OrderedDict()
        self._cache_size = cache_size

    def clear_cache(self) -> None:
        """Call after changing text-encoder weights (e.g. applying LoRA) on a long-lived encoder."""
        self._cache.clear()

    def count_tokens(self, text: str, steps: int = 20, *, negative: bool = False) -> tuple[int, int]:
        """(tokens, chunk_limit) for the UI counter, with this encoder's settings and embeddings."""
        slot = self.encoders[0]
        return count_tokens(
            text,
            steps,
            tokenizer=slot.tokenizer,
            negative=negative,
            emphasis=self.emphasis,
            comma_backtrack=self.comma_backtrack,
            embeddings=slot.embeddings,
        )

    def chunks_for(
        self, text: str, slot: TextEncoderSlot, check: Callable[[], None] | None = None
    ) -> list[PromptChunk]:
        chunks, _ = build_chunks(
            text,
            slot.tokenizer,
            emphasis=self.emphasis,
            comma_backtrack=self.comma_backtrack,
            embeddings=slot.embeddings,
            check=check,
        )
        return chunks

    def encode(
        self,
        texts: Sequence[str],
        clip_skip: int = 1,
        *,
        is_negative: bool = False,
        check: Callable[[], None] | None = None,
    ) -> Conditioning:
        """Encodes already-scheduled texts (extra-network tags removed) as one batch.

        `check` runs between pieces of work (fragments while weighing and tokenising, each 77-token chunk before
        the text encoder sees it); the job's Interrupt / time-budget check raises from there.
        """
        texts = list(texts)
        key = (tuple(texts), int(clip_skip), bool(is_negative))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        result = self._encode_uncached(texts, int(clip_skip), is_negative, check)
        self._cache[key] = result
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def _encode_uncached(
        self, texts: list[str], clip_skip: int, is_negative: bool, check: Callable[[], None] | None = None
    ) -> Conditioning:
        contexts: list[torch.Tensor] = []
        pooled: torch.Tensor | None = None
        used: dict[str, None] = {}
        for slot in self.encoders:
            context, slot_pooled, slot_used = self._encode_slot(slot, texts, clip_skip, check)
            contexts.append(context)
            used.update(dict.fromkeys(slot_used))
            if slot.provides_pooled:
                pooled = slot_pooled
        context = torch.cat(contexts, dim=-1) if len(contexts) > 1 else contexts[0]
        if is_negative and self.zero_empty_negative and all(t == "" for t in texts):
            context = torch.zeros_like(context)
            pooled = torch.zeros_like(pooled) if pooled is not None else None
        return Conditioning(context, pooled, tuple(used))

    def _encode_slot(
        self, slot: TextEncoderSlot, texts: list[str], clip_skip: int, check: Callable[[], None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
        batch_chunks = [self.chunks_for(text, slot, check) for text in texts]
        chunk_count = max(len(chunks) for chunks in batch_chunks)
        parameter = next(slot.model.parameters())
        outputs: list[torch.Tensor] = []
        first_pooled: torch.Tensor | None = None
        used: list[str] = []
        for index in range(chunk_count):
            if check is not None:
                check()
            row_chunks = [chunks[index] if index < len(chunks) else empty_chunk() for chunks in batch_chunks]
            tokens = torch.tensor([c.tokens for c in row_chunks], dtype=torch.long, device=parameter.device)
            if slot.kind == "open_clip":
                tokens = _pad_after_first_eos(tokens)
            multipliers = torch.tensor([c.multipliers for c in row_chunks], dtype=torch.float32)
            fixes = [c.fixes for c in row_chunks]
            used.extend(getattr(e, "name", str(e)) for row in fixes for _, e in row)
            with torch.no_grad(), _embedding_fixes(slot, fixes):
                output = slot.model(input_ids=tokens, output_hidden_states=True)
            z = select_layer(slot.model, output, slot.layer, clip_skip)
            outputs.append(apply_emphasis(z, multipliers, self.emphasis))
            if index == 0 and slot.provides_pooled:
                first_pooled = getattr(output, "text_embeds", None)
                if first_pooled is None:
                    first_pooled = output.pooler_output
        return torch.cat(outputs, dim=1), first_pooled, used


def _pad_after_first_eos(tokens: torch.Tensor) -> torch.Tensor:
    """OpenCLIP encoders were trained with 0 after the first EOS (SD1 repeats EOS instead)."""
    is_eos = tokens == EOS_ID
    first = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), tokens.shape[1])
    positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
    return tokens.masked_fill(positions > first.unsqueeze(1), _OPEN_CLIP_PAD_ID)


def stack_conds(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stacks [T_i, C] conds of different lengths by repeating each one's last vector (A1111's AND batching)."""
    length = max(t.shape[0] for t in tensors)
    padded = [
        t if t.shape[0] == length else torch.cat([t, t[-1:].expand(length - t.shape[0], -1)], dim=0) for t in tensors
    ]
    return torch.stack(padded)
