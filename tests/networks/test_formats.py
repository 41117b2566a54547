"""LyCORIS types (LoHa, LoKr, IA3, full, norm, DoRA, LoCon Tucker) merge to the published formulas."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.networks.tiny import tiny_models
from webui.networks import LoraPatcher, ModelNames, parse_lora

LINEAR = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj"  # [256, 32] with bias
CONV = "up_blocks.1.resnets.0.conv1"  # [32, 96, 3, 3]
GROUPNORM = "down_blocks.0.attentions.0.norm"
TE_NORM = "encoder.layers.0.layer_norm1"


@pytest.fixture()
def setup():
    models = tiny_models()
    return models, ModelNames.from_models(models)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed + sum(shape))) * 0.1


def _merge(models, names, tensors, te: float = 1.0, unet: float = 1.0):
    lora = parse_lora("t", tensors, {}, names)
    assert not lora.unmatched_keys and not lora.unsupported_keys
    report = LoraPatcher(models).apply([(lora, te, unet)])
    assert not report.rejected, report.rejected
    return report


def _module(models, name: str, target: str = "unet") -> torch.nn.Module:
    return models[target].get_submodule(name)


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    actual, expected = actual.detach(), expected.detach()
    assert float((actual - expected).abs().max() / expected.abs().max()) <= 1e-5


def test_locon_tucker_mid_equals_the_three_conv_chain(setup) -> None:
    models, names = setup
    conv = _module(models, CONV)
    w0 = conv.weight.detach().clone()
    rank, alpha, m = 4, 2.0, 0.6
    down, mid, up = _rand(rank, 96, 1, 1), _rand(rank, rank, 3, 3, seed=1), _rand(32, rank, 1, 1, seed=2)
    base = names.kohya_name("unet", CONV)
    _merge(models, names, {f"{base}.lora_down.weight": down, f"{base}.lora_mid.weight": mid,
                           f"{base}.lora_up.weight": up, f"{base}.alpha": torch.tensor(alpha)}, unet=m)
    x = torch.randn(1, 96, 6, 6, generator=torch.Generator().manual_seed(5))
    chained = F.conv2d(F.conv2d(F.conv2d(x, down), mid, padding=1), up) * (alpha / rank) * m
    merged_delta = F.conv2d(x, conv.weight.detach() - w0, padding=1)
    _close(merged_delta, chained)


def test_loha_linear_and_3x3_conv(setup) -> None:
    models, names = setup
    linear, conv = _module(models, LINEAR), _module(models, CONV)
    w_lin, w_conv = linear.weight.detach().clone(), conv.weight.detach().clone()
    rank, alpha, m = 4, 3.0, 0.8
    tensors = {}
    parts = {}
    for name, (out, cols) in ((LINEAR, (256, 32)), (CONV, (32, 96 * 9))):
        base = names.kohya_name("unet", name)
        p = {
            k: _rand(*s, seed=i)
            for i, (k, s) in enumerate(
                (
                    ("hada_w1_a", (out, rank)),
                    ("hada_w1_b", (rank, cols)),
                    ("hada_w2_a", (out, rank)),
                    ("hada_w2_b", (rank, cols)),
                )
            )
        }
        parts[name] = p
        tensors.update({f"{base}.{k}": v for k, v in p.items()})
        tensors[f"{base}.alpha"] = torch.tensor(alpha)
    _merge(models, names, tensors, unet=m)
    for name, w0, module in ((LINEAR, w_lin, linear), (CONV, w_conv, conv)):
        p = parts[name]
        hadamard = torch.einsum("or,ri->oi", p["hada_w1_a"], p["hada_w1_b"]) * torch.einsum(
            "or,ri->oi", p["hada_w2_a"], p["hada_w2_b"])
        _close(module.weight, w0 + m * (alpha / rank) * hadamard.reshape(w0.shape))


def test_loha_tucker_on_conv(setup) -> None:
    models, names = setup
    conv = _module(models, CONV)
    w0 = conv.weight.detach().clone()
    rank = 3
    t1, t2 = _rand(rank, rank, 3, 3, seed=1), _rand(rank, rank, 3, 3, seed=2)
    w1a, w1b, w2a, w2b = (
        _rand(rank, 32, seed=3),
        _rand(rank, 96, seed=4),
        _rand(rank, 32, seed=5),
        _rand(rank, 96, seed=6),
    )
    base = names.kohya_name("unet", CONV)
    _merge(models, names, {f"{base}.hada_t1": t1, f"{base}.hada_t2": t2, f"{base}.hada_w1_a": w1a,
                           f"{base}.hada_w1_b": w1b, f"{base}.hada_w2_a": w2a, f"{base}.hada_w2_b": w2b})

    def rebuild(core, a, b):  # Σ_a Σ_b a[a,o]·core[a,b,h,w]·b[b,i], by broadcasting instead of einsum
        left = (a.t()[:, :, None, None, None] * core[None]).sum(1)  # [o, b, h, w]
        return (left[:, :, None] * b[None, :, :, None, None]).sum(1)  # [o, i, h, w]

    _close(conv.weight, w0 + rebuild(t1, w1a, w1b) * rebuild(t2, w2a, w2b))


def test_lokr_linear_decomposed_w2_and_conv_full_factors(setup) -> None:
    models, names = setup
    linear, conv = _module(models, LINEAR), _module(models, CONV)
    w_lin, w_conv = linear.weight.detach().clone(), conv.weight.detach().clone()
    rank, alpha = 2, 4.0
    w1 = _rand(16, 4, seed=1)
    w2a, w2b = _rand(16, rank, seed=2), _rand(rank, 8, seed=3)
    c1, c2 = _rand(4, 8, seed=4), _rand(8, 12, 3, 3, seed=5)
    lin_base, conv_base = names.kohya_name("unet", LINEAR), names.kohya_name("unet", CONV)
    _merge(
        models,
        names,
        {
            f"{lin_base}.lokr_w1": w1,
            f"{lin_base}.lokr_w2_a": w2a,
            f"{lin_base}.lokr_w2_b": w2b,
            f"{lin_base}.alpha": torch.tensor(alpha),
            # both sides full: alpha is ignored (γ = 1)
            f"{conv_base}.lokr_w1": c1,
            f"{conv_base}.lokr_w2": c2,
            f"{conv_base}.alpha": torch.tensor(9.0),
        },
        unet=0.5,
    )
    w2 = w2a @ w2b
    expected = torch.zeros(256, 32)
    for i in range(16):
        for j in range(4):
            expected[i * 16:(i + 1) * 16, j * 8:(j + 1) * 8] = w1[i, j] * w2
    _close(linear.weight, w_lin + 0.5 * (alpha / rank) * expected)
    expected_conv = torch.zeros(32, 96, 3, 3)
    for i in range(4):
        for j in range(8):
            expected_conv[i * 8:(i + 1) * 8, j * 12:(j + 1) * 12] = c1[i, j] * c2
    _close(conv.weight, w_conv + 0.5 * expected_conv)


@pytest.mark.parametrize("on_input", [False, True])
def test_ia3_scales_rows_or_columns(setup, on_input: bool) -> None:
    models, names = setup
    linear = _module(models, LINEAR)
    w0 = linear.weight.detach().clone()
    vector = _rand(32 if on_input else 256, seed=7)
    base = names.kohya_name("unet", LINEAR)
    _merge(models, names, {f"{base}.weight": vector, f"{base}.on_input": torch.tensor(on_input)}, unet=0.7)
    factor = (1 + 0.7 * vector)[None, :] if on_input else (1 + 0.7 * vector)[:, None]
    _close(linear.weight, w0 * factor)


def test_full_diff_with_bias_and_norm_layers(setup) -> None:
    models, names = setup
    linear, norm, te_norm = (
        _module(models, LINEAR),
        _module(models, GROUPNORM),
        _module(models, TE_NORM, "text_encoder"),
    )
    before = {k: t.detach().clone() for k, t in (("lw", linear.weight), ("lb", linear.bias), ("nw", norm.weight),
                                                  ("nb", norm.bias), ("tw", te_norm.weight), ("tb", te_norm.bias))}
    diff, diff_b, w_norm, b_norm = _rand(256, 32, seed=1), _rand(256, seed=2), _rand(32, seed=3), _rand(32, seed=4)
    te_w, te_b = _rand(32, seed=5), _rand(32, seed=6)
    lin, gn, ln = (names.kohya_name("unet", LINEAR), names.kohya_name("unet", GROUPNORM),
                   names.kohya_name("text_encoder", TE_NORM))
    _merge(models, names, {f"{lin}.diff": diff, f"{lin}.diff_b": diff_b, f"{gn}.w_norm": w_norm, f"{gn}.b_norm": b_norm,
                           f"{ln}.w_norm": te_w, f"{ln}.b_norm": te_b}, te=-0.5, unet=1.5)
    _close(linear.weight, before["lw"] + 1.5 * diff)
    _close(linear.bias, before["lb"] + 1.5 * diff_b)
    _close(norm.weight, before["nw"] + 1.5 * w_norm)
    _close(norm.bias, before["nb"] + 1.5 * b_norm)
    _close(te_norm.weight, before["tw"] - 0.5 * te_w)  # text-encoder layers take the te multiplier
    _close(te_norm.bias, before["tb"] - 0.5 * te_b)


@pytest.mark.parametrize("m", [1.0, 0.4])
def test_dora_column_norm_decomposition(setup, m: float) -> None:
    models, names = setup
    linear = _module(models, LINEAR)
    w0 = linear.weight.detach().clone()
    rank, alpha = 4, 2.0
    up, down = _rand(256, rank, seed=1), _rand(rank, 32, seed=2)
    magnitude = 1.0 + _rand(1, 32, seed=3).abs()
    base = names.kohya_name("unet", LINEAR)
    _merge(models, names, {f"{base}.lora_up.weight": up, f"{base}.lora_down.weight": down,
                           f"{base}.alpha": torch.tensor(alpha), f"{base}.dora_scale": magnitude}, unet=m)
    directed = w0 + (alpha / rank) * up @ down
    dora = magnitude * directed / directed.norm(dim=0, keepdim=True)  # norm of each input column
    _close(linear.weight, w0 + m * (dora - w0))
    if m == 1.0:
        _close(linear.weight.detach().norm(dim=0), magnitude.flatten())
