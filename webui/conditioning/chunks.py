"""Tokenising emphasis fragments into 75-token chunks (BOS + 75 + EOS) with BREAK, comma back-off, embedding slots."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol, Sequence

from webui.conditioning.tokenizer import BOS_ID, EOS_ID
from webui.prompts import BREAK_WEIGHT, parse_attention, parse_prompt

CHUNK_LENGTH = 75
TOKENS_PER_CHUNK = CHUNK_LENGTH + 2
EmphasisMode = Literal["Original", "No norm", "Ignore", "None"]
EMPHASIS_MODES: tuple[str, ...] = ("Original", "No norm", "Ignore", "None")
# Placeholder id under an embedding's vectors; the real vectors are swapped in at the token-embedding layer.
EMBEDDING_PLACEHOLDER_ID = 0
# Fragments tokenised per tokenizer call, and weighed between two checks for Interrupt / the prompt time budget:
# a few milliseconds of work each, so a check comes often without costing anything measurable.
FRAGMENTS_PER_CHECK = 256
Check = Callable[[], None]


class EmbeddingLookup(Protocol):
    """What chunking needs from a textual-inversion database."""

    def find_at(self, tokens: Sequence[int], position: int) -> tuple[object, int, int] | None:
        """(embedding, vector count, number of prompt tokens its name spans) if a name starts at `position`."""


@dataclass
class PromptChunk:
    """77 token ids and multipliers once closed; `fixes` are (offset in the 77, embedding) pairs."""

    tokens: list[int] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)
    fixes: list[tuple[int, object]] = field(default_factory=list)


@dataclass
class _ChunkingState:
    """The chunk being filled, the token count so far and where its last comma is (-1: none)."""

    chunk: PromptChunk = field(default_factory=PromptChunk)
    count: int = 0
    last_comma: int = -1


def empty_chunk() -> PromptChunk:
    """What an empty prompt encodes as, and what pads a batch to the same chunk count."""
    return PromptChunk([BOS_ID] + [EOS_ID] * (CHUNK_LENGTH + 1), [1.0] * TOKENS_PER_CHUNK, [])


def fragments_for(text: str, emphasis: str) -> list[tuple[str, float]]:
    """Emphasis mode "None" turns parsing off entirely: brackets are text and BREAK is a word."""
    if emphasis == "None":
        return [(text, 1.0)]
    return parse_attention(text)


def tokenize_fragments(tokenizer, texts: list[str], check: Check | None = None) -> list[list[int]]:
    """Each fragment on its own, no BOS/EOS, never truncated; `check` runs between batches of fragments."""
    out: list[list[int]] = []
    for start in range(0, len(texts), FRAGMENTS_PER_CHECK):
        if check is not None:
            check()
        batch = texts[start:start + FRAGMENTS_PER_CHECK]
        encoded = tokenizer(batch, add_special_tokens=False, truncation=False, verbose=False)
        out.extend(list(ids) for ids in encoded["input_ids"])
    return out


def comma_token_id(tokenizer) -> int | None:
    return tokenizer.get_vocab().get(",</w>")


def build_chunks(
    text: str,
    tokenizer,
    *,
    emphasis: str = "Original",
    comma_backtrack: int = 20,
    embeddings: EmbeddingLookup | None = None,
    check: Check | None = None,
) -> tuple[list[PromptChunk], int]:
    """Chunks of one scheduled text (tags already removed) and its token count as A1111's counter shows it.

    The count is 75 per closed chunk plus the tokens of the last one, so BREAK and comma back-off
    count a full chunk, as in A1111's UI. `check` (Interrupt, time budget) runs between batches of fragments.
    """
    if check is not None:
        check()
    parsed = fragments_for(text, emphasis)
    token_lists = tokenize_fragments(tokenizer, [t for t, _ in parsed], check)
    comma = comma_token_id(tokenizer)
    chunks: list[PromptChunk] = []
    state = _ChunkingState()

    def close_chunk(is_last: bool = False) -> None:
        chunk = state.chunk
        state.count += len(chunk.tokens) if is_last else CHUNK_LENGTH
        missing = CHUNK_LENGTH - len(chunk.tokens)
        chunk.tokens += [EOS_ID] * missing
        chunk.multipliers += [1.0] * missing
        chunk.tokens = [BOS_ID] + chunk.tokens + [EOS_ID]
        chunk.multipliers = [1.0] + chunk.multipliers + [1.0]
        # Fixes were recorded before BOS was prepended.
        chunk.fixes = [(offset + 1, emb) for offset, emb in chunk.fixes]
        chunks.append(chunk)
        state.chunk = PromptChunk()
        state.last_comma = -1

    for index, (tokens, (fragment, weight)) in enumerate(zip(token_lists, parsed, strict=True)):
        if check is not None and index % FRAGMENTS_PER_CHECK == 0:
            check()
        # Only an unweighted BREAK counts: inside brackets A1111 multiplies it and then encodes it as a word.
        if fragment == "BREAK" and weight == BREAK_WEIGHT:
            close_chunk()
            continue
        position = 0
        while position < len(tokens):
            chunk = state.chunk
            token = tokens[position]
            if token == comma:
                state.last_comma = len(chunk.tokens)
            elif (
                comma_backtrack != 0
                and len(chunk.tokens) == CHUNK_LENGTH
                and state.last_comma != -1
                and len(chunk.tokens) - state.last_comma <= comma_backtrack
            ):
                # Keep the words after the last comma together by moving them to the next chunk.
                cut = state.last_comma + 1
                moved_tokens, moved_mults = chunk.tokens[cut:], chunk.multipliers[cut:]
                moved_fixes = [(o - cut, e) for o, e in chunk.fixes if o >= cut]
                chunk.tokens, chunk.multipliers = chunk.tokens[:cut], chunk.multipliers[:cut]
                chunk.fixes = [(o, e) for o, e in chunk.fixes if o < cut]
                close_chunk()
                chunk = state.chunk
                chunk.tokens, chunk.multipliers, chunk.fixes = moved_tokens, moved_mults, moved_fixes
            if len(chunk.tokens) == CHUNK_LENGTH:
                close_chunk()
                chunk = state.chunk

            found = embeddings.find_at(tokens, position) if embeddings is not None else None
            if found is None:
                chunk.tokens.append(token)
                chunk.multipliers.append(weight)
                position += 1
                continue
            embedding, vector_count, name_length = found
            # An embedding never straddles two chunks.
            if len(chunk.tokens) + vector_count > CHUNK_LENGTH:
                close_chunk()
                chunk = state.chunk
            chunk.fixes.append((len(chunk.tokens), embedding))
            chunk.tokens += [EMBEDDING_PLACEHOLDER_ID] * vector_count
            chunk.multipliers += [weight] * vector_count
            position += name_length

    if state.chunk.tokens or not chunks:
        close_chunk(is_last=True)
    return chunks, state.count


def chunk_limit(token_count: int) -> int:
    """The "/ 150" part of the UI counter: whole chunks needed, at least one."""
    return math.ceil(max(token_count, 1) / CHUNK_LENGTH) * CHUNK_LENGTH


def count_tokens(
    text: str,
    steps: int = 20,
    *,
    tokenizer=None,
    negative: bool = False,
    emphasis: str = "Original",
    comma_backtrack: int = 20,
    embeddings: EmbeddingLookup | None = None,
) -> tuple[int, int]:
    """(tokens, chunk_limit) for the UI counter: tags removed, AND split, the longest scheduled text wins."""
    if tokenizer is None:
        from webui.conditioning.tokenizer import load_clip_tokenizer

        tokenizer = load_clip_tokenizer()
    parsed = parse_prompt(text, steps, negative=negative)
    best = 0
    for scheduled in parsed.unique_texts:
        _, count = build_chunks(
            scheduled, tokenizer, emphasis=emphasis, comma_backtrack=comma_backtrack, embeddings=embeddings
        )
        best = max(best, count)
    return best, chunk_limit(best)
