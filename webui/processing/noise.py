"""Seeds and initial latent noise with A1111's "CPU" RNG source: one CPU generator per image."""
from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

SEED_RANGE = 4294967294  # A1111 draws random seeds from [0, 4294967294)
# Above this mean cosine the two noises are treated as parallel and slerp degrades to lerp.
_PARALLEL_DOT = 0.9995


def random_seed() -> int:
    """A fresh random seed in [0, 4294967294), from the OS generator (no global random state)."""
    return secrets.randbelow(SEED_RANGE)


def fix_seed(seed: int | float | str | None) -> int:
    """A1111's seed fix-up: -1, "", None or unreadable text → a random seed; numeric text → its int."""
    if seed is None or seed == "":
        return random_seed()
    if isinstance(seed, str):
        try:
            seed = int(seed.strip())
        except ValueError:
            return random_seed()
    value = int(seed)
    return random_seed() if value == -1 else value


def seeds_for_batch(seed: int, subseed: int, subseed_strength: float, count: int) -> tuple[list[int], list[int]]:
    """Per-image seeds and subseeds for `count` images (n_iter * batch_size).

    Without variation each image gets `seed + i`; with variation all share `seed` and vary by `subseed + i`.
    Subseeds are `subseed + i` in both cases, as A1111 computes them (they are unused at strength 0).
    """
    seeds = [int(seed) + (i if subseed_strength == 0 else 0) for i in range(count)]
    subseeds = [int(subseed) + i for i in range(count)]
    return seeds, subseeds


def create_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed`."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed))
    return generator


def _randn(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator, device="cpu", dtype=torch.float32)


def slerp(t: float, low: torch.Tensor, high: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Spherical interpolation from `low` (t=0) to `high` (t=1), vectors taken along `dim`.

    A1111 normalises along dim 1 of each (C, H, W) noise, i.e. per (channel, column) vector; the default keeps
    that so variation seeds give the same images. Nearly parallel inputs fall back to linear interpolation,
    where the angle is too small for sin() to be divided by safely.
    """
    low_unit = low / torch.linalg.vector_norm(low, dim=dim, keepdim=True)
    high_unit = high / torch.linalg.vector_norm(high, dim=dim, keepdim=True)
    dot = (low_unit * high_unit).sum(dim)
    if dot.mean() > _PARALLEL_DOT:
        # A1111 writes low*t + high*(1-t) here; the two only differ for inputs that are not identical, and
        # identical noise (seed == subseed) is the only way to get here in practice, so use the correct lerp.
        return low * (1.0 - t) + high * t
    omega = torch.acos(dot.clamp(-1.0, 1.0))
    sin_omega = torch.sin(omega)
    low_weight = (torch.sin((1.0 - t) * omega) / sin_omega).unsqueeze(dim)
    high_weight = (torch.sin(t * omega) / sin_omega).unsqueeze(dim)
    return low_weight * low + high_weight * high


def _paste_centred(small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
    # Centre `small` (C, h, w) on `big` (C, H, W); where small is larger, its centre part is used.
    _, h_small, w_small = small.shape
    _, h_big, w_big = big.shape
    dx = (w_big - w_small) // 2
    dy = (h_big - h_small) // 2
    width = w_small if dx >= 0 else w_small + 2 * dx
    height = h_small if dy >= 0 else h_small + 2 * dy
    target_x, target_y = max(dx, 0), max(dy, 0)
    source_x, source_y = max(-dx, 0), max(-dy, 0)
    out = big.clone()
    out[:, target_y:target_y + height, target_x:target_x + width] = (
        small[:, source_y:source_y + height, source_x:source_x + width]
    )
    return out


def image_noise(
    shape: Sequence[int],
    seeds: list[int],
    subseeds: list[int] | None = None,
    subseed_strength: float = 0.0,
    seed_resize_from: tuple[int, int] | None = None,
    *,
    eta_noise_seed_delta: int = 0,
    latent_scale: int = 8,
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Initial noise (B, C, H, W), fp32 on CPU, for latent `shape` (C, H, W), one image per seed.

    Image i draws from its own generator seeded with seeds[i], so its noise does not depend on the batch.
    Variation: slerp(subseed_strength, noise(seed), noise(subseed)); a missing subseed counts as 0.
    Seed resize (`seed_resize_from` = (width, height) in pixels, ignored when a side is <= 0): the noise (and
    its variation) is made at from-size / `latent_scale` (the VAE's factor, 8 for SD) and pasted centred into
    full-size noise of the same seed.
    The returned generators sit right after each image's full-size draw, so later sampler noise continues
    each image's stream; with `eta_noise_seed_delta` != 0 they are re-seeded with seed + delta instead.
    """
    if not seeds:
        raise ValueError("image_noise needs at least one seed")
    shape = tuple(int(s) for s in shape)
    channels = shape[0]
    noise_shape: tuple[int, ...] = shape
    if seed_resize_from is not None and seed_resize_from[0] > 0 and seed_resize_from[1] > 0:
        width, height = (int(v) for v in seed_resize_from)
        noise_shape = (channels, height // latent_scale, width // latent_scale)
    use_variation = subseeds is not None and subseed_strength != 0
    generators = [create_generator(seed) for seed in seeds]
    images = []
    for i, (seed, generator) in enumerate(zip(seeds, generators, strict=True)):
        resized = noise_shape != shape
        # The image's own generator makes the full-size draw; small noise comes from a fresh generator,
        # so the stream position after this function is the same with or without seed resize.
        noise = _randn(noise_shape, create_generator(seed)) if resized else _randn(shape, generator)
        if use_variation and subseeds is not None:
            subseed = subseeds[i] if i < len(subseeds) else 0
            noise = slerp(subseed_strength, noise, _randn(noise_shape, create_generator(subseed)))
        if resized:
            noise = _paste_centred(noise, _randn(shape, generator))
        images.append(noise)
    if eta_noise_seed_delta:
        generators = [create_generator(seed + eta_noise_seed_delta) for seed in seeds]
    return torch.stack(images), generators


def next_noise(shape: tuple[int, int, int], generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Further noise (B, C, H, W) for ancestral/SDE steps: one draw per image from its own generator."""
    return torch.stack([_randn(shape, generator) for generator in generators])
