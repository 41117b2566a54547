"""The "timestep" samplers (DDIM, DDIM CFG++, PLMS, UniPC), written in sigma space.

With x_sigma = x_vp / sqrt(alpha_bar) and sigma = sqrt((1 - alpha_bar) / alpha_bar), a DDIM update
x_vp' = sqrt(a') x0 + sqrt(1 - a') eps becomes x' = x0 + sigma' * eps: an Euler step of the probability-flow ODE.
These functions therefore take a descending sigma grid like every other sampler; `registry` builds the
A1111 timestep grid and converts between the VP and sigma scalings at the ends.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from webui.sampling.common import Denoiser, NoiseSource, StepCallback, UncondDenoiser, ancestral_step, call, report

CFGPP_SCALE_MULTIPLIER = 1 / 12.5  # CFG++ guidance lives in [0, 1]; A1111 maps its 0..12.5 CFG slider onto it


def sample_ddim(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                callback: StepCallback | None = None, eta: float = 0.0) -> Tensor:
    """DDIM (Song et al. 2021): x' = x0 + sigma_down * eps + sigma_up * z; eta 0 is deterministic.

    The DDIM variance eta^2 (1-a')/(1-a) (1 - a/a') maps exactly onto the ancestral sigma_up, so eta > 0 is
    DDIM's stochastic form.
    """
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        down, up = ancestral_step(s[i], s[i + 1], eta)
        x = denoised + (x - denoised) / s[i] * down
        if up > 0:
            x = x + noise(s[i], s[i + 1]) * up
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_ddim_cfgpp(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                      callback: StepCallback | None = None, eta: float = 0.0,
                      scale_multiplier: float = CFGPP_SCALE_MULTIPLIER) -> Tensor:
    """DDIM CFG++ (Chung et al. 2024): the guided x0, but re-noised along the *unconditional* eps.

    Needs `UncondDenoiser.denoise_with_uncond`; a plain denoiser is taken as unguided (then this is DDIM).
    """
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        sigma_batch = x.new_full((x.shape[0],), s[i])
        if isinstance(denoiser, UncondDenoiser):
            denoised, uncond = denoiser.denoise_with_uncond(x, sigma_batch, scale_multiplier)
        else:
            denoised = uncond = denoiser(x, sigma_batch)
        down, up = ancestral_step(s[i], s[i + 1], eta)
        x = denoised + (x - uncond) / s[i] * down
        if up > 0:
            x = x + noise(s[i], s[i + 1]) * up
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_plms(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                callback: StepCallback | None = None) -> Tensor:
    """PLMS / PNDM (Liu et al. 2022): DDIM steps driven by a 4th-order Adams-Bashforth blend of past eps.

    The first step has no history, so it uses an improved-Euler (Heun-like) eps average, costing two evaluations.
    """
    s = sigmas.tolist()
    n = len(s) - 1
    past: list[Tensor] = []
    for i in range(n):
        eps = (x - call(denoiser, x, s[i])) / s[i]
        if not past:
            x_trial = x + (s[i + 1] - s[i]) * eps
            eps_next = (x_trial - call(denoiser, x_trial, s[i + 1])) / s[i + 1] if s[i + 1] > 0 else eps
            blended = (eps + eps_next) / 2
        elif len(past) == 1:
            blended = (3 * eps - past[-1]) / 2
        elif len(past) == 2:
            blended = (23 * eps - 16 * past[-1] + 5 * past[-2]) / 12
        else:
            blended = (55 * eps - 59 * past[-1] + 37 * past[-2] - 9 * past[-3]) / 24
        denoised = x - s[i] * blended
        x = denoised + s[i + 1] * blended
        past = (past + [eps])[-3:]
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def _unipc_coefficients(rks: list[float], h: float, order: int, variant: str) -> tuple[Tensor, Tensor, float]:
    """UniPC's linear system (Zhao et al. 2023, Theorem 3.1): rows r^(k-1), right side k! phi_{k+1}(-h) / B(h)."""
    hh = -h  # data prediction integrates in -lambda
    b_h = hh if variant == "bh1" else math.expm1(hh)
    phi = math.expm1(hh) / hh - 1  # phi_2 in UniPC's scaled form; phi_{k+1} = phi_k / hh - 1/k!
    factorial = 1
    rows, rhs = [], []
    r = torch.tensor(rks, dtype=torch.float64)
    for k in range(1, order + 1):
        rows.append(r ** (k - 1))
        rhs.append(phi * factorial / b_h)
        factorial *= k + 1
        phi = phi / hh - 1 / factorial
    return torch.stack(rows), torch.tensor(rhs, dtype=torch.float64), b_h


def _unipc_step(denoiser: Denoiser, x: Tensor, models: list[Tensor], sigmas_prev: list[float], sigma: float,
                order: int, variant: str, use_corrector: bool) -> tuple[Tensor, Tensor | None]:
    """One UniP-p predictor step to `sigma` and, when asked, the UniC corrector (whose evaluation is reused)."""
    lam = lambda v: -math.log(v)  # noqa: E731 - half log-SNR in the sigma parameterisation
    m0, s0 = models[-1], sigmas_prev[-1]
    if sigma == 0:
        return m0, None  # lambda is infinite at sigma 0; the exact first-order step lands on the prediction
    h = lam(sigma) - lam(s0)
    rks, diffs = [], []
    for k in range(1, order):
        rk = (lam(sigmas_prev[-(k + 1)]) - lam(s0)) / h
        rks.append(rk)
        diffs.append((models[-(k + 1)] - m0) / rk)
    rks.append(1.0)
    R, b, b_h = _unipc_coefficients(rks, h, order, variant)
    x_base = (sigma / s0) * x - math.expm1(-h) * m0  # the first-order (DPM-Solver++ 1) part
    if diffs:
        # order 2 uses the h -> 0 limit 1/2, as the UniPC authors do, rather than solving a 1x1 system
        rhos_p = [0.5] if order == 2 else torch.linalg.solve(R[:-1, :-1], b[:-1]).tolist()
        x_new = x_base - b_h * sum(r * d for r, d in zip(rhos_p, diffs, strict=True))
    else:
        x_new = x_base
    if not use_corrector:
        return x_new, None
    model_new = call(denoiser, x_new, sigma)
    rhos_c = [0.5] if order == 1 else torch.linalg.solve(R, b).tolist()
    correction = sum((r * d for r, d in zip(rhos_c[:-1], diffs, strict=True)), torch.zeros_like(x)) + rhos_c[-1] * (
        model_new - m0
    )
    return x_base - b_h * correction, model_new


def sample_unipc(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                 callback: StepCallback | None = None, order: int = 3, variant: str = "bh1",
                 lower_order_final: bool = True) -> Tensor:
    """UniPC multistep (UniP-p predictor + UniC corrector, data prediction); one model evaluation per step.

    The grid's last sigma may be > 0 (A1111 stops at timestep 0's sigma); the last step skips the corrector.
    """
    if variant not in ("bh1", "bh2"):
        raise ValueError(f"UniPC variant must be 'bh1' or 'bh2', got {variant!r}")
    s = sigmas.tolist()
    steps = len(s) - 1
    order = max(1, min(order, steps))
    models = [call(denoiser, x, s[0])]
    sigmas_prev = [s[0]]
    for step in range(1, steps + 1):
        if step < order:
            step_order = step  # warm-up: not enough history yet
        else:
            step_order = min(order, steps + 1 - step) if lower_order_final else order
        last = step == steps
        x, model_x = _unipc_step(denoiser, x, models, sigmas_prev, s[step], step_order, variant, not last)
        report(callback, step - 1, steps, s[step - 1], s[step], x, models[-1] if model_x is None else model_x)
        if not last:
            assert model_x is not None  # the corrector runs on every step but the last
            models = (models + [model_x])[-order:]
            sigmas_prev = (sigmas_prev + [s[step]])[-order:]
    return x
