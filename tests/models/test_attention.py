"""The interruptible SDPA processor: chunked calls give the very same tensors as one call, and checks run between."""
from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from webui.models import attention as attention_module
from webui.models.attention import InterruptibleSdpa, chunk_bounds


@pytest.fixture()
def small_chunks(monkeypatch):
    """Chunk from ~1500 tokens on, so the chunked path runs at a size a test can afford."""
    monkeypatch.setattr(attention_module, "CHUNK_WORK", 2**22)
    monkeypatch.setattr(attention_module, "CHUNK_FROM_WORK", 2**24)


def _both(attention: Attention, hidden: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor, int]:
    processor = InterruptibleSdpa()
    attention.set_processor(AttnProcessor2_0())
    with torch.no_grad():
        reference = attention(hidden, **kwargs)
        attention.set_processor(processor)
        checks: list[int] = []
        processor.check = lambda: checks.append(1)
        chunked = attention(hidden, **kwargs)
    return reference, chunked, len(checks)


@pytest.mark.parametrize("tokens", [2304, 3001, 4096])
def test_chunked_self_attention_is_bit_identical(small_chunks, tokens):
    torch.manual_seed(tokens)
    attention = Attention(64, heads=4, dim_head=16)
    reference, chunked, checks = _both(attention, torch.randn(2, tokens, 64))
    assert checks > 2
    assert torch.equal(reference, chunked)


def test_chunked_cross_attention_is_bit_identical(monkeypatch):
    torch.manual_seed(1)
    attention = Attention(64, cross_attention_dim=96, heads=4, dim_head=16)
    context = torch.randn(2, 77, 96)
    # 77 keys are little work per row: chunk from a smaller size still.
    monkeypatch.setattr(attention_module, "CHUNK_WORK", 2**18)
    monkeypatch.setattr(attention_module, "CHUNK_FROM_WORK", 2**20)
    reference, chunked, checks = _both(attention, torch.randn(2, 4096, 64), encoder_hidden_states=context)
    assert checks > 2
    assert torch.equal(reference, chunked)


def test_chunked_vae_attention_is_bit_identical(small_chunks):
    """The VAE's mid-block attention: 4-D input, group norm, one head, residual."""
    torch.manual_seed(2)
    attention = Attention(64, heads=1, dim_head=64, norm_num_groups=8, residual_connection=True,
                          upcast_softmax=True, _from_deprecated_attn_block=True)
    reference, chunked, checks = _both(attention, torch.randn(1, 64, 56, 56))
    assert checks > 2
    assert torch.equal(reference, chunked)


def test_small_attention_is_one_call_even_while_a_job_runs():
    assert chunk_bounds(64 * 64, 64 * 64, 320, 2) == [(0, 4096)]  # 512 px, first UNet level


@pytest.mark.parametrize("rows", [9216, 15625, 16384])
def test_chunks_cover_every_row_once_on_aligned_edges(rows):
    bounds = chunk_bounds(rows, rows, 320, 2)
    assert len(bounds) > 10
    assert bounds[0][0] == 0 and bounds[-1][1] == rows
    assert all(end == start for (_, end), (start, _) in zip(bounds[:-1], bounds[1:], strict=True))
    assert all(start % attention_module.ROW_ALIGN == 0 for start, _ in bounds)
    assert bounds[-1][1] - bounds[-1][0] >= attention_module.MIN_ROWS
