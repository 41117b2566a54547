"""LyCORIS types merged by our patcher equal the `lycoris-lora` package's own ΔW functions (an independent oracle)."""
from __future__ import annotations

import pytest
import torch
from lycoris.functional import apply_dora_scale, locon, loha, lokr

from tests.networks.tiny import tiny_models
from webui.networks import LoraPatcher, ModelNames, parse_lora

LINEAR = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj"  # [256, 32]
CONV = "up_blocks.1.resnets.0.conv1"  # [32, 96, 3, 3]


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.1


@pytest.fixture()
def world():
    models = tiny_models()
    return models, ModelNames.from_models(models)


def _merged_delta(
    world, layer: str, suffixes: dict[str, torch.Tensor], multiplier: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(our W − W₀ for `layer` after applying the file at `multiplier`, W₀)."""
    models, names = world
    module = models["unet"].get_submodule(layer)
    w0 = module.weight.detach().clone()
    base = names.kohya_name("unet", layer)
    lora = parse_lora("x", {f"{base}.{k}": v for k, v in suffixes.items()}, {}, names)
    report = LoraPatcher(models).apply([(lora, multiplier, multiplier)])
    assert report.layers_written == 1 and not report.rejected
    return module.weight.detach() - w0, w0


def _assert_close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    assert float(theirs.abs().max()) > 1e-3  # a zero delta would make the comparison meaningless
    assert float((ours - theirs).abs().max() / theirs.abs().max()) <= 1e-5


def test_locon_with_tucker_mid(world) -> None:
    rank, alpha, m = 4, 3.0, 0.7
    down, mid, up = _rand(rank, 96, 1, 1, seed=1), _rand(rank, rank, 3, 3, seed=2), _rand(32, rank, 1, 1, seed=3)
    ours, _ = _merged_delta(world, CONV, {"lora_down.weight": down, "lora_mid.weight": mid, "lora_up.weight": up,
                                          "alpha": torch.tensor(alpha)}, m)
    _assert_close(ours, m * locon.diff_weight(down, up, mid, gamma=alpha / rank, backend="torch"))


def test_loha_linear(world) -> None:
    rank, alpha, m = 4, 2.0, -0.6
    w1a, w1b, w2a, w2b = (_rand(256, rank, seed=4), _rand(rank, 32, seed=5), _rand(256, rank, seed=6),
                          _rand(rank, 32, seed=7))
    ours, _ = _merged_delta(world, LINEAR, {"hada_w1_a": w1a * 10, "hada_w1_b": w1b, "hada_w2_a": w2a * 10,
                                            "hada_w2_b": w2b, "alpha": torch.tensor(alpha)}, m)
    # lycoris names the factors (w1d, w1u, w2d, w2u): down = `_b`, up = `_a` in the file.
    theirs = loha.diff_weight(w1b, w1a * 10, w2b, w2a * 10, None, None, gamma=alpha / rank, backend="torch")
    _assert_close(ours, m * theirs)


def test_loha_tucker_conv(world) -> None:
    rank, alpha, m = 3, 1.5, 1.2
    t1, t2 = _rand(rank, rank, 3, 3, seed=8), _rand(rank, rank, 3, 3, seed=9)
    w1a, w1b = _rand(rank, 32, seed=10) * 10, _rand(rank, 96, seed=11)
    w2a, w2b = _rand(rank, 32, seed=12) * 10, _rand(rank, 96, seed=13)
    ours, _ = _merged_delta(world, CONV, {"hada_t1": t1, "hada_t2": t2, "hada_w1_a": w1a, "hada_w1_b": w1b,
                                          "hada_w2_a": w2a, "hada_w2_b": w2b, "alpha": torch.tensor(alpha)}, m)
    theirs = loha.diff_weight(w1b, w1a, w2b, w2a, t1, t2, gamma=alpha / rank, backend="torch")
    _assert_close(ours, m * theirs)


def test_lokr_linear_with_decomposed_w2_and_conv_with_full_factors(world) -> None:
    rank, alpha, m = 2, 4.0, 0.5
    w1, w2a, w2b = _rand(16, 4, seed=14) * 10, _rand(16, rank, seed=15), _rand(rank, 8, seed=16)
    ours, _ = _merged_delta(world, LINEAR, {"lokr_w1": w1, "lokr_w2_a": w2a, "lokr_w2_b": w2b,
                                            "alpha": torch.tensor(alpha)}, m)
    # lycoris' functional LoKr takes alpha and divides by the decomposed side's rank itself.
    _assert_close(ours, m * lokr.diff_weight(w1, None, None, None, w2a, w2b, None, gamma=alpha, backend="torch"))
    c1, c2 = _rand(4, 8, seed=17) * 10, _rand(8, 12, 3, 3, seed=18)
    ours_conv, _ = _merged_delta(world, CONV, {"lokr_w1": c1, "lokr_w2": c2}, m)
    _assert_close(ours_conv, m * lokr.diff_weight(c1, None, None, c2, None, None, None, gamma=1.0, backend="torch"))


@pytest.mark.parametrize("m", [1.0, 0.4])
def test_dora_against_lycoris_apply_dora_scale(world, m: float) -> None:
    rank, alpha = 4, 2.0
    up, down = _rand(256, rank, seed=19), _rand(rank, 32, seed=20)
    magnitude = 1.0 + _rand(1, 32, seed=21).abs()
    ours, w0 = _merged_delta(world, LINEAR, {"lora_up.weight": up, "lora_down.weight": down,
                                             "alpha": torch.tensor(alpha), "dora_scale": magnitude}, m)
    rebuild = locon.diff_weight(down, up, None, gamma=alpha / rank, backend="torch")
    _assert_close(ours, apply_dora_scale(w0, rebuild, magnitude, m) - w0)
