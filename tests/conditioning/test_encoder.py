"""PromptEncoder against direct tokenizer + tiny-model calls: chunks, emphasis modes, clip skip, SD2 padding, SDXL."""
from __future__ import annotations

import pytest
import torch

from webui.conditioning import PromptEncoder, TextEncoderSlot, apply_emphasis, load_clip_tokenizer, stack_conds
from webui.conditioning.tokenizer import BOS_ID, EOS_ID

WORDS = ["cat", "dog", "red", "blue", "tree", "house", "car", "sun", "moon", "star"]


def words(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(i + offset) % len(WORDS)] for i in range(n))


def plain_ids(text: str, pad_zero: bool = False) -> torch.Tensor:
    tok = load_clip_tokenizer()
    content = tok(text, add_special_tokens=False)["input_ids"]
    assert len(content) <= 75
    pad = 0 if pad_zero else EOS_ID
    return torch.tensor([[BOS_ID] + content + [EOS_ID] + [pad] * (75 - len(content))])


def run(model, ids: torch.Tensor):
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True)


def test_prompt_without_syntax_equals_plain_encoder_output(clip_l) -> None:
    enc = PromptEncoder([TextEncoderSlot.sd1(clip_l)])
    cond = enc.encode(["a photo of a cat, best quality"])
    expected = run(clip_l, plain_ids("a photo of a cat, best quality")).last_hidden_state
    assert cond.context.shape == (1, 77, 32)
    assert cond.pooled is None
    torch.testing.assert_close(cond.context, expected, rtol=0, atol=0)


def test_second_chunk_change_only_touches_its_positions(clip_l) -> None:
    enc = PromptEncoder([TextEncoderSlot.sd1(clip_l)], comma_backtrack=0)
    a = enc.encode([words(75) + " " + words(75, 1) + " " + words(10)]).context
    b = enc.encode([words(75) + " " + words(75, 2) + " " + words(10)]).context
    assert a.shape == (1, 231, 32)
    assert torch.equal(a[:, :77], b[:, :77])
    assert not torch.allclose(a[:, 77:154], b[:, 77:154])
    assert torch.equal(a[:, 154:], b[:, 154:])


def test_300_token_prompt_gives_4_chunks(clip_l) -> None:
    cond = PromptEncoder([TextEncoderSlot.sd1(clip_l)]).encode([words(300)])
    assert cond.context.shape == (1, 4 * 77, 32)
    last = run(clip_l, plain_ids(words(75, 225))).last_hidden_state
    torch.testing.assert_close(cond.context[:, 231:], last, rtol=0, atol=0)


def test_no_norm_multiplies_exactly_the_weighted_tokens(clip_l) -> None:
    enc = PromptEncoder([TextEncoderSlot.sd1(clip_l)], emphasis="No norm")
    z = enc.encode(["a (cat:1.5) [dog]"]).context
    base = run(clip_l, plain_ids("a cat dog")).last_hidden_state
    torch.testing.assert_close(z[0, 2], base[0, 2] * 1.5)
    torch.testing.assert_close(z[0, 3], base[0, 3] / 1.1)
    torch.testing.assert_close(z[0, [0, 1, 4, 76]], base[0, [0, 1, 4, 76]])


def test_original_restores_the_chunk_mean(clip_l) -> None:
    enc = PromptEncoder([TextEncoderSlot.sd1(clip_l)], emphasis="Original")
    z = enc.encode(["a (cat:1.5) dog"]).context
    base = run(clip_l, plain_ids("a cat dog")).last_hidden_state
    mult = torch.ones(1, 77, 1)
    mult[0, 2] = 1.5
    weighted = base * mult
    expected = weighted * (base.mean() / weighted.mean())
    torch.testing.assert_close(z, expected)
    torch.testing.assert_close(z.mean(), base.mean())
    assert abs((base.mean() / weighted.mean()).item() - 1.0) > 1e-3  # the rescale really did something


def test_original_mean_spans_the_whole_batch() -> None:
    z = torch.arange(1.0, 1.0 + 2 * 77 * 3).reshape(2, 77, 3)
    m = torch.ones(2, 77)
    m[0, 5] = 2.0
    out = apply_emphasis(z, m, "Original")
    torch.testing.assert_close(out.mean(), z.mean())
    # the unweighted second prompt is rescaled too, because the mean is over the batch
    assert not torch.allclose(out[1], z[1])


def test_ignore_drops_weights_but_keeps_parsing(clip_l) -> None:
    ignore = PromptEncoder([TextEncoderSlot.sd1(clip_l)], emphasis="Ignore").encode(["a (cat:1.5) [dog]"]).context
    plain = run(clip_l, plain_ids("a cat dog")).last_hidden_state
    torch.testing.assert_close(ignore, plain, rtol=0, atol=0)
    none = PromptEncoder([TextEncoderSlot.sd1(clip_l)], emphasis="None").encode(["a (cat:1.5)"]).context
    torch.testing.assert_close(none, run(clip_l, plain_ids("a (cat:1.5)")).last_hidden_state, rtol=0, atol=0)


def test_break_encodes_two_chunks(clip_l) -> None:
    z = PromptEncoder([TextEncoderSlot.sd1(clip_l)]).encode(["cat BREAK dog"]).context
    assert z.shape == (1, 154, 32)
    torch.testing.assert_close(z[:, 77:], run(clip_l, plain_ids("dog")).last_hidden_state, rtol=0, atol=0)


def test_batch_is_padded_with_empty_chunks(clip_l) -> None:
    z = PromptEncoder([TextEncoderSlot.sd1(clip_l)], emphasis="No norm").encode(["cat", words(80)]).context
    assert z.shape == (2, 154, 32)
    torch.testing.assert_close(z[0:1, 77:], run(clip_l, plain_ids("")).last_hidden_state, rtol=0, atol=0)


def test_sd1_clip_skip_uses_hidden_state_then_final_layer_norm(clip_l) -> None:
    enc = PromptEncoder([TextEncoderSlot.sd1(clip_l)])
    out = run(clip_l, plain_ids("a cat"))
    torch.testing.assert_close(
        enc.encode(["a cat"], clip_skip=2).context, clip_l.final_layer_norm(out.hidden_states[-2])
    )
    torch.testing.assert_close(enc.encode(["a cat"], clip_skip=1).context, out.last_hidden_state)


def test_sd2_pads_with_zero_and_uses_penultimate_with_final_ln(clip_l) -> None:
    enc = PromptEncoder([TextEncoderSlot.sd2(clip_l)])
    out = run(clip_l, plain_ids("a cat", pad_zero=True))
    expected = clip_l.final_layer_norm(out.hidden_states[-2])
    torch.testing.assert_close(enc.encode(["a cat"], clip_skip=1).context, expected)
    torch.testing.assert_close(enc.encode(["a cat"], clip_skip=3).context, expected)  # clip skip ignored
    eos_padded = clip_l.final_layer_norm(run(clip_l, plain_ids("a cat")).hidden_states[-2])
    assert not torch.allclose(expected, eos_padded)


def test_sdxl_concatenates_penultimate_states_and_pools_first_chunk(clip_l, clip_g) -> None:
    enc = PromptEncoder([TextEncoderSlot.sdxl_clip_l(clip_l), TextEncoderSlot.sdxl_clip_g(clip_g)])
    cond = enc.encode(["a cat BREAK dog"], clip_skip=2)
    assert cond.context.shape == (1, 154, 32 + 48)
    out_l = run(clip_l, plain_ids("a cat"))
    out_g = run(clip_g, plain_ids("a cat", pad_zero=True))
    torch.testing.assert_close(cond.context[:, :77, :32], out_l.hidden_states[-2])
    torch.testing.assert_close(cond.context[:, :77, 32:], out_g.hidden_states[-2])
    torch.testing.assert_close(cond.pooled, out_g.text_embeds)
    assert cond.pooled.shape == (1, 24)


def test_sdxl_empty_negative_is_zeros_but_whitespace_is_not(clip_l, clip_g) -> None:
    enc = PromptEncoder([TextEncoderSlot.sdxl_clip_l(clip_l), TextEncoderSlot.sdxl_clip_g(clip_g)])
    neg = enc.encode(["", ""], is_negative=True)
    assert neg.context.abs().sum() == 0 and neg.pooled.abs().sum() == 0
    assert enc.encode([" "], is_negative=True).context.abs().sum() > 0
    assert enc.encode([""], is_negative=False).context.abs().sum() > 0


def test_identical_requests_hit_the_cache(clip_l) -> None:
    enc = PromptEncoder([TextEncoderSlot.sd1(clip_l)])
    first = enc.encode(["a cat"])
    assert enc.encode(["a cat"]) is first
    enc.clear_cache()
    assert enc.encode(["a cat"]) is not first


def test_unknown_emphasis_mode_is_rejected(clip_l) -> None:
    with pytest.raises(ValueError):
        PromptEncoder([TextEncoderSlot.sd1(clip_l)], emphasis="Loud")


def test_stack_conds_repeats_the_last_vector() -> None:
    a = torch.arange(6.0).reshape(3, 2)
    b = torch.arange(10.0, 12.0).reshape(1, 2)
    stacked = stack_conds([a, b])
    assert stacked.shape == (2, 3, 2)
    assert torch.equal(stacked[1], b.expand(3, 2))
