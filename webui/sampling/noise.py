"""Noise for stochastic steps: per-image CPU generator streams, or per-image Brownian trees for SDE samplers."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from webui.sampling.common import NoiseSource
from webui.sampling.names import SamplerName


class GeneratorNoise:
    """A1111's CPU RNG: image i draws from its own generator, shape (C, H, W), so each stream continues per image.

    Draws happen on the CPU and are moved to x's device/dtype, which makes results device-independent.
    """

    def __init__(self, like: Tensor, generators: Sequence[torch.Generator]):
        if len(generators) != like.shape[0]:
            raise ValueError(f"need one generator per image: {len(generators)} for a batch of {like.shape[0]}")
        self._generators = list(generators)
        self._shape = tuple(like.shape[1:])
        self._device, self._dtype = like.device, like.dtype

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        draws = [torch.randn(self._shape, generator=g, device="cpu", dtype=torch.float32) for g in self._generators]
        return torch.stack(draws).to(device=self._device, dtype=self._dtype)


class BrownianNoise:
    """Normalised Brownian increments W(sigma_next) - W(sigma) / sqrt(|dsigma|), one tree per image seed.

    Each image's tree depends only on its seed and the sigma range, so a picture is the same whatever
    batch it is generated in, and the noise between two sigmas is consistent across step sizes.
    """

    def __init__(self, like: Tensor, seeds: Sequence[int], sigma_min: float, sigma_max: float):
        import torchsde  # imported lazily: only the SDE samplers need it

        if len(seeds) != like.shape[0]:
            raise ValueError(f"need one seed per image: {len(seeds)} for a batch of {like.shape[0]}")
        lo, hi = sorted((float(sigma_min), float(sigma_max)))
        self._lo = torch.tensor(lo, dtype=torch.float32)
        self._hi = torch.tensor(hi, dtype=torch.float32)
        w0 = torch.zeros(like.shape[1:], dtype=torch.float32)
        self._trees = [torchsde.BrownianTree(self._lo, w0, self._hi, entropy=int(seed)) for seed in seeds]
        self._shape = (len(seeds), *like.shape[1:])
        self._device, self._dtype = like.device, like.dtype

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        a = torch.tensor(float(sigma), dtype=torch.float32).clamp(self._lo, self._hi)
        b = torch.tensor(float(sigma_next), dtype=torch.float32).clamp(self._lo, self._hi)
        sign = 1.0 if b >= a else -1.0  # the trees are queried forward in time; a backward step flips the sign
        lo, hi = (a, b) if b >= a else (b, a)
        width = float(hi - lo)
        if width <= 0:
            return torch.zeros(self._shape, device=self._device, dtype=self._dtype)
        with warnings.catch_warnings():
            # torchsde rounds the tree's end points, so queries exactly at sigma_min/max fall a hair outside and
            # get clamped with a warning; the clamped values are the ones A1111 gets too.
            warnings.filterwarnings("ignore", message="Should have t", category=UserWarning)
            w = torch.stack([tree(lo, hi) for tree in self._trees]) * sign
        return (w / width**0.5).to(device=self._device, dtype=self._dtype)


def make_noise_source(
    sampler: SamplerName,
    x: Tensor,
    seeds: Sequence[int],
    generators: Sequence[torch.Generator] | None,
    sigma_min: float,
    sigma_max: float,
) -> NoiseSource:
    """The noise source A1111 would use for this sampler.

    Brownian-flagged samplers get per-seed Brownian trees over [sigma_min, sigma_max]. Others continue the
    per-image generators (the ones that drew the initial noise; processing.noise.image_noise re-seeds them for
    ENSD), or fresh ones from the seeds when none are given.
    """
    if sampler.brownian:
        return BrownianNoise(x, seeds, sigma_min, sigma_max)
    if generators is None:
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    return GeneratorNoise(x, generators)
