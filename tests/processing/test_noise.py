"""Seeds and CPU-RNG initial noise: reproducibility, batch independence, variation and seed resize."""
from __future__ import annotations

import random

import pytest
import torch

from webui.processing.noise import (
    SEED_RANGE,
    create_generator,
    fix_seed,
    image_noise,
    next_noise,
    random_seed,
    seeds_for_batch,
    slerp,
)

SHAPE = (4, 8, 12)  # (C, H, W) latent for a 96x64 image


def test_same_seed_same_noise():
    a, _ = image_noise(SHAPE, [123])
    b, _ = image_noise(SHAPE, [123])
    assert a.shape == (1, *SHAPE) and a.dtype == torch.float32 and a.device.type == "cpu"
    assert torch.equal(a, b)
    c, _ = image_noise(SHAPE, [124])
    assert not torch.equal(a, c)


def test_noise_is_plain_cpu_randn_of_the_seed():
    noise, _ = image_noise(SHAPE, [42])
    expected = torch.randn(SHAPE, generator=torch.Generator().manual_seed(42))
    assert torch.equal(noise[0], expected)


def test_batch_independence():
    alone, _ = image_noise(SHAPE, [5])
    batch, _ = image_noise(SHAPE, [5, 6, 7])
    later, _ = image_noise(SHAPE, [9, 5])
    assert torch.equal(batch[0], alone[0])
    assert torch.equal(later[1], alone[0])


def test_generators_continue_after_initial_draw():
    _, gens = image_noise(SHAPE, [11, 12])
    after = next_noise(SHAPE, gens)
    for i, seed in enumerate((11, 12)):
        g = create_generator(seed)
        torch.randn(SHAPE, generator=g)
        assert torch.equal(after[i], torch.randn(SHAPE, generator=g))


def test_generators_positioned_the_same_with_seed_resize_and_variation():
    _, plain = image_noise(SHAPE, [3])
    _, fancy = image_noise(SHAPE, [3], [8], 0.4, seed_resize_from=(64, 48))
    assert torch.equal(next_noise(SHAPE, plain), next_noise(SHAPE, fancy))


def test_ensd_reseeds_generators():
    _, gens = image_noise(SHAPE, [100], eta_noise_seed_delta=31337)
    expected = torch.randn(SHAPE, generator=create_generator(100 + 31337))
    assert torch.equal(next_noise(SHAPE, gens)[0], expected)


def test_slerp_endpoints_and_midpoint_norm():
    low = torch.randn(SHAPE, generator=create_generator(1))
    high = torch.randn(SHAPE, generator=create_generator(2))
    assert torch.allclose(slerp(0.0, low, high), low, atol=1e-5)
    assert torch.allclose(slerp(1.0, low, high), high, atol=1e-5)
    mid = slerp(0.5, low, high)
    assert not torch.allclose(mid, (low + high) / 2, atol=1e-3)  # spherical, not linear


def test_slerp_parallel_falls_back_to_lerp():
    low = torch.randn(SHAPE, generator=create_generator(1))
    result = slerp(0.3, low, low * 2)  # parallel vectors: the angle formula would divide by ~0
    assert torch.isfinite(result).all()
    assert torch.allclose(result, low * 0.7 + low * 2 * 0.3, atol=1e-6)
    assert torch.equal(slerp(0.5, low, low), low)


def test_variation_strength_zero_and_one():
    base, _ = image_noise(SHAPE, [10])
    sub, _ = image_noise(SHAPE, [77])
    zero, _ = image_noise(SHAPE, [10], [77], 0.0)
    one, _ = image_noise(SHAPE, [10], [77], 1.0)
    half, _ = image_noise(SHAPE, [10], [77], 0.5)
    assert torch.equal(zero, base)
    assert torch.allclose(one, sub, atol=1e-5)
    assert torch.allclose(half[0], slerp(0.5, base[0], sub[0]))


def test_missing_subseed_counts_as_zero():
    noise, _ = image_noise(SHAPE, [10, 10], [77], 0.5)
    base, _ = image_noise(SHAPE, [10])
    zero, _ = image_noise(SHAPE, [0])
    assert torch.allclose(noise[1], slerp(0.5, base[0], zero[0]))


def test_seed_resize_smaller_pastes_in_centre():
    # Real latent 8x12 (96x64 px), noise made for 48x32 px -> 4x6 latent, pasted at rows 2..6, cols 3..9.
    noise, _ = image_noise(SHAPE, [21], seed_resize_from=(48, 32))
    small = torch.randn((4, 4, 6), generator=create_generator(21))
    full = torch.randn(SHAPE, generator=create_generator(21))
    assert torch.equal(noise[0, :, 2:6, 3:9], small)
    outside = torch.ones(SHAPE, dtype=torch.bool)
    outside[:, 2:6, 3:9] = False
    assert torch.equal(noise[0][outside], full[outside])


def test_seed_resize_counts_in_the_vaes_own_cells():
    # A 4x VAE (the demo model): the same 8x12 latent is 48x32 px, and noise for 24x16 px is 4x6 cells, pasted centred.
    noise, _ = image_noise(SHAPE, [21], seed_resize_from=(24, 16), latent_scale=4)
    assert torch.equal(noise[0, :, 2:6, 3:9], torch.randn((4, 4, 6), generator=create_generator(21)))
    assert torch.equal(image_noise(SHAPE, [21], seed_resize_from=(48, 32), latent_scale=4)[0],
                       image_noise(SHAPE, [21])[0])


def test_seed_resize_larger_is_centre_cropped():
    noise, _ = image_noise(SHAPE, [21], seed_resize_from=(160, 96))  # 12x20 latent, bigger on both sides
    big = torch.randn((4, 12, 20), generator=create_generator(21))
    assert torch.equal(noise[0], big[:, 2:10, 4:16])


def test_seed_resize_ignored_when_a_side_is_zero_or_same_size():
    base, _ = image_noise(SHAPE, [21])
    assert torch.equal(image_noise(SHAPE, [21], seed_resize_from=(0, 32))[0], base)
    assert torch.equal(image_noise(SHAPE, [21], seed_resize_from=(96, 64))[0], base)


def test_seed_resize_with_variation_uses_small_size():
    noise, _ = image_noise(SHAPE, [21], [5], 0.5, seed_resize_from=(48, 32))
    small = torch.randn((4, 4, 6), generator=create_generator(21))
    small_sub = torch.randn((4, 4, 6), generator=create_generator(5))
    assert torch.allclose(noise[0, :, 2:6, 3:9], slerp(0.5, small, small_sub))


def test_image_noise_needs_a_seed():
    with pytest.raises(ValueError):
        image_noise(SHAPE, [])


def test_seeds_for_batch():
    assert seeds_for_batch(100, 7, 0.0, 3) == ([100, 101, 102], [7, 8, 9])
    assert seeds_for_batch(100, 7, 0.3, 3) == ([100, 100, 100], [7, 8, 9])


def test_fix_seed():
    for value in (-1, "", None, "-1", "not a number"):
        seed = fix_seed(value)
        assert 0 <= seed < SEED_RANGE
    assert fix_seed(1234) == 1234
    assert fix_seed("42") == 42
    assert fix_seed(0) == 0
    assert fix_seed(7.0) == 7


def test_random_seed_does_not_touch_global_state():
    random.seed(99)
    expected = random.random()
    random.seed(99)
    state = torch.random.get_rng_state()
    for _ in range(5):
        assert 0 <= random_seed() < SEED_RANGE
    assert random.random() == expected
    assert torch.equal(torch.random.get_rng_state(), state)
    image_noise(SHAPE, [1], [2], 0.5, seed_resize_from=(48, 32))
    assert torch.equal(torch.random.get_rng_state(), state)
