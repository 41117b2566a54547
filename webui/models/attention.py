"""SDPA attention a running job can stop part-way: big calls run in query-row chunks with a check between."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0

# One chunk does about this many multiply-adds per matmul (rows × keys × channels × batch), ~0.1 s on a shared
# 2-core CPU (~2-3e10 per second measured); the MIN_ROWS floor can make a chunk longer (1024 px: ~0.2-0.4 s).
CHUNK_WORK = 2**31
# Below this much work one call is short enough (512 px: ~0.3 s) and keeps the single SDPA call.
CHUNK_FROM_WORK = 8 * CHUNK_WORK
# torch's CPU flash attention takes query rows in blocks of 256 from 768 rows on (64 or 32 below). Chunks of at
# least 768 rows on multiples of 256 go through the kernel in the very blocks of one call: the same bits, and the
# same speed (256-row chunks measured 15-40 % slower, their 64-row blocks re-read the keys 4x as often).
ROW_ALIGN = 256
MIN_ROWS = 3 * ROW_ALIGN


def chunk_bounds(rows: int, keys: int, channels: int, batch: int) -> list[tuple[int, int]]:
    """Query-row ranges to attend separately: one range when the call is small, else ~CHUNK_WORK each."""
    work_per_row = max(1, keys * channels * batch)
    if rows * work_per_row <= CHUNK_FROM_WORK:
        return [(0, rows)]
    step = max(MIN_ROWS, CHUNK_WORK // work_per_row // ROW_ALIGN * ROW_ALIGN)
    starts = list(range(0, rows, step))
    while len(starts) > 1 and rows - starts[-1] < MIN_ROWS:
        starts.pop()  # fold a short tail into the chunk before it
    ends = [*starts[1:], rows]
    return list(zip(starts, ends, strict=True))


class InterruptibleSdpa(AttnProcessor2_0):
    """diffusers' SDPA processor; while `check` is set (a job is running) a big call is cut into row chunks and
    `check` runs before each, so Interrupt lands inside one self-attention at large sizes.

    Without `check`, or when the call is small, this is AttnProcessor2_0 itself (the same single SDPA call)."""

    def __init__(self) -> None:
        super().__init__()
        self.check: Callable[[], None] | None = None

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        check = self.check
        if check is None or attention_mask is not None or torch.compiler.is_compiling():
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        rows = hidden_states.shape[2] * hidden_states.shape[3] if hidden_states.ndim == 4 else hidden_states.shape[1]
        keys = rows if encoder_hidden_states is None else encoder_hidden_states.shape[1]
        bounds = chunk_bounds(rows, keys, attn.to_q.out_features, hidden_states.shape[0])
        if len(bounds) == 1:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        return self._chunked(attn, hidden_states, encoder_hidden_states, temb, bounds, check)

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)

    def _chunked(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None,
                 temb: torch.Tensor | None, bounds: list[tuple[int, int]], check: Callable[[], None]) -> torch.Tensor:
        # The same steps as AttnProcessor2_0 (without a mask), with the one SDPA call split by query rows.
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch = hidden_states.shape[0]
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads

        def heads(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.view(batch, -1, attn.heads, head_dim).transpose(1, 2)

        query, key, value = heads(query), heads(key), heads(value)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        # Dense copies once: SDPA would otherwise re-pack the strided head views for every chunk (~30 % slower).
        key, value = key.contiguous(), value.contiguous()
        parts = []
        for start, end in bounds:
            check()
            parts.append(self._attend(query[:, :, start:end].contiguous(), key, value))
        check()
        hidden_states = torch.cat(parts, dim=2)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor
