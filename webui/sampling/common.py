"""Types and small helpers shared by the sampler functions."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

Denoiser = Callable[[Tensor, Tensor], Tensor]
"""`denoiser(x, sigma_batch) -> denoised`: the data prediction at noise level sigma (one sigma per batch item)."""


@runtime_checkable
class UncondDenoiser(Protocol):
    """A denoiser that can also return the unconditional prediction (needed by DDIM CFG++).

    `denoise_with_uncond(x, sigma, scale_multiplier)` returns (guided, uncond) denoised predictions, with the
    guidance scale multiplied by `scale_multiplier` for this call. A denoiser without this method is treated as
    unguided: its output serves as both, so CFG++ degrades to plain DDIM.
    """

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor: ...

    def denoise_with_uncond(self, x: Tensor, sigma: Tensor, scale_multiplier: float = 1.0) -> tuple[Tensor, Tensor]: ...


class NoiseSource(Protocol):
    """Fresh unit-variance noise shaped like x for the step sigma -> sigma_next."""

    def __call__(self, sigma: float, sigma_next: float) -> Tensor: ...


@dataclass(frozen=True)
class StepInfo:
    """What a sampler reports after each step; a callback may raise to interrupt sampling."""

    i: int
    total: int
    sigma: float
    sigma_next: float
    x: Tensor
    denoised: Tensor


StepCallback = Callable[[StepInfo], None]


def report(callback: StepCallback | None, i: int, total: int, sigma: float, sigma_next: float, x: Tensor,
           denoised: Tensor) -> None:
    if callback is not None:
        callback(StepInfo(i, total, float(sigma), float(sigma_next), x, denoised))


def call(denoiser: Denoiser, x: Tensor, sigma: float) -> Tensor:
    """Run the denoiser at one noise level for the whole batch."""
    return denoiser(x, x.new_full((x.shape[0],), float(sigma)))


def to_d(x: Tensor, sigma: float, denoised: Tensor) -> Tensor:
    """The probability-flow ODE derivative dx/dsigma = (x - D(x)) / sigma (Karras et al. 2022, eq. 3)."""
    return (x - denoised) / sigma


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step to sigma_next into a deterministic move to sigma_down plus fresh noise of std sigma_up.

    sigma_down^2 + sigma_up^2 = sigma_next^2; eta = 1 gives the DDPM posterior variance, eta = 0 the ODE.
    """
    if not eta or sigma_next == 0:
        return sigma_next, 0.0
    up = min(sigma_next, eta * math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2, 0.0)))
    return math.sqrt(max(sigma_next**2 - up**2, 0.0)), up


def churn_sigma(sigma: float, steps: int, s_churn: float, s_tmin: float, s_tmax: float) -> float:
    """Karras et al. 2022, Algorithm 2: the raised noise level sigma_hat for stochastic churn."""
    gamma = min(s_churn / steps, 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
    return sigma * (gamma + 1)


def add_churn(x: Tensor, sigma: float, sigma_hat: float, noise: NoiseSource, s_noise: float) -> Tensor:
    """Raise x from sigma to sigma_hat with fresh noise (no draw when there is no churn, so streams stay put)."""
    if sigma_hat <= sigma:
        return x
    return x + noise(sigma, sigma_hat) * s_noise * math.sqrt(sigma_hat**2 - sigma**2)


def churned_derivative(denoiser: Denoiser, x: Tensor, sigma: float, steps: int, noise: NoiseSource,
                       s_churn: float, s_tmin: float, s_tmax: float,
                       s_noise: float) -> tuple[Tensor, float, Tensor, Tensor]:
    """The common start of a Karras Algorithm 2 step: churn, denoise at sigma_hat, and the ODE derivative.

    Returns (x at sigma_hat, sigma_hat, denoised, d).
    """
    sigma_hat = churn_sigma(sigma, steps, s_churn, s_tmin, s_tmax)
    x = add_churn(x, sigma, sigma_hat, noise, s_noise)
    denoised = call(denoiser, x, sigma_hat)
    return x, sigma_hat, denoised, to_d(x, sigma_hat, denoised)
