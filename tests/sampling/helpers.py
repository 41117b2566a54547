"""Shared fixtures for sampling tests: an analytic Gaussian denoiser and a cheap batched noise source."""
from __future__ import annotations

import torch
from torch import Tensor

MU, STD = 0.5, 0.8


class GaussianDenoiser:
    """The exact posterior mean for data ~ N(MU, STD^2) per dimension: D(x, s) = MU + STD^2 / (STD^2 + s^2) (x - MU).

    Accepts the `step` keyword that `run_sampler` passes and records the steps it saw.
    """

    def __init__(self, mu: float = MU, std: float = STD):
        self.mu, self.std = mu, std
        self.steps: list[int] = []

    def __call__(self, x: Tensor, sigma: Tensor, *, step: int = 0) -> Tensor:
        self.steps.append(step)
        s2 = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype) ** 2
        return self.mu + self.std**2 / (self.std**2 + s2) * (x - self.mu)


class BatchNoise:
    """One generator for the whole batch: fine for statistics, far cheaper than one generator per image."""

    def __init__(self, like: Tensor, seed: int = 0):
        self.shape, self.gen = like.shape, torch.Generator().manual_seed(seed)

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        return torch.randn(self.shape, generator=self.gen, dtype=torch.float64)


class BrownianBatch:
    """A single Brownian tree over the whole batch, for SDE samplers whose sub-steps need correlated increments."""

    def __init__(self, like: Tensor, sigmas: Tensor, seed: int = 0):
        from webui.sampling.noise import BrownianNoise

        positive = sigmas[sigmas > 0]
        self.shape = like.shape
        self.inner = BrownianNoise(like.reshape(1, -1), [seed], float(positive.min()), float(sigmas.max()))

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        return self.inner(sigma, sigma_next).reshape(self.shape).to(torch.float64)


class ConsistencyDenoiser(GaussianDenoiser):
    """The exact consistency function for Gaussian data: the probability-flow ODE solution at sigma 0."""

    def __call__(self, x: Tensor, sigma: Tensor, *, step: int = 0) -> Tensor:
        self.steps.append(step)
        s2 = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype) ** 2
        return self.mu + self.std / (self.std**2 + s2) ** 0.5 * (x - self.mu)
