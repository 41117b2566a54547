"""Text conditioning (A1111 semantics): CLIP tokenizer, 75-token chunks, emphasis weights, clip skip, SDXL pooled.

Public API:
    PromptEncoder(encoders, emphasis="Original", comma_backtrack=20, *, zero_empty_negative=None, cache_size=32)
        .encode(texts, clip_skip=1, *, is_negative=False) -> Conditioning
        .count_tokens(text, steps=20, *, negative=False) -> (tokens, chunk_limit)
        .clear_cache()
    TextEncoderSlot(model, tokenizer, kind, layer, provides_pooled, embeddings) and .sd1/.sd2/.sdxl_clip_l/.sdxl_clip_g
    Conditioning(context [B, 77k, C], pooled [B, P] | None, embeddings_used)
    count_tokens(text, steps=20, *, tokenizer=None, negative=False, emphasis="Original", comma_backtrack=20,
                 embeddings=None)
    build_chunks(text, tokenizer, *, emphasis, comma_backtrack, embeddings) -> (chunks, token_count)
    stack_conds(tensors) -> Tensor
    EmbeddingDatabase(tokenizer, encoder_widths).load_folder(path); .find_at, .hashes_infotext(names), .skipped
"""
from webui.conditioning.chunks import (
    CHUNK_LENGTH,
    EMPHASIS_MODES,
    TOKENS_PER_CHUNK,
    PromptChunk,
    build_chunks,
    chunk_limit,
    count_tokens,
    empty_chunk,
)
from webui.conditioning.embeddings import Embedding, EmbeddingDatabase
from webui.conditioning.encoder import (
    Conditioning,
    PromptEncoder,
    TextEncoderSlot,
    apply_emphasis,
    select_layer,
    stack_conds,
)
from webui.conditioning.tokenizer import load_clip_tokenizer

__all__ = [
    "CHUNK_LENGTH",
    "EMPHASIS_MODES",
    "TOKENS_PER_CHUNK",
    "Conditioning",
    "Embedding",
    "EmbeddingDatabase",
    "PromptChunk",
    "PromptEncoder",
    "TextEncoderSlot",
    "apply_emphasis",
    "build_chunks",
    "chunk_limit",
    "count_tokens",
    "empty_chunk",
    "load_clip_tokenizer",
    "select_layer",
    "stack_conds",
]
