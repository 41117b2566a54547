"""DPM-Solver (Lu et al. 2022) with its fast fixed-budget recipe and its adaptive step-size variant."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from webui.sampling.common import Denoiser, NoiseSource, StepCallback, ancestral_step, call, report

# In this file "t" is lambda = -log(sigma); sigma(t) = exp(-t). Solvers work on the noise prediction eps.


def _eps(denoiser: Denoiser, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
    sigma = math.exp(-t)
    denoised = call(denoiser, x, sigma)
    return (x - denoised) / sigma, denoised


def _step_1(x: Tensor, t: float, t_next: float, eps: Tensor) -> Tensor:
    """DPM-Solver-1 (= DDIM) from t to t_next."""
    h = t_next - t
    return x - math.exp(-t_next) * math.expm1(h) * eps


def _step_2(denoiser: Denoiser, x: Tensor, t: float, t_next: float, eps: Tensor, r1: float = 0.5,
            cache: dict | None = None) -> Tensor:
    """DPM-Solver-2 (Algorithm 1): one intermediate evaluation at t + r1 h."""
    h = t_next - t
    eps_r1 = _intermediate_eps(denoiser, x, t, t + r1 * h, eps, cache)
    return x - math.exp(-t_next) * math.expm1(h) * eps - math.exp(-t_next) / (2 * r1) * math.expm1(h) * (eps_r1 - eps)


def _intermediate_eps(denoiser: Denoiser, x: Tensor, t: float, s1: float, eps: Tensor, cache: dict | None) -> Tensor:
    # DPM-Solver-23 (adaptive) evaluates the same first intermediate point for both orders; reuse it.
    if cache is not None and cache.get("s1") == s1:
        return cache["eps_r1"]
    u1 = x - math.exp(-s1) * math.expm1(s1 - t) * eps
    eps_r1, _ = _eps(denoiser, u1, s1)
    if cache is not None:
        cache.update(s1=s1, eps_r1=eps_r1)
    return eps_r1


def _step_3(denoiser: Denoiser, x: Tensor, t: float, t_next: float, eps: Tensor, r1: float = 1 / 3,
            r2: float = 2 / 3, cache: dict | None = None) -> Tensor:
    """DPM-Solver-3 (Algorithm 2): intermediate evaluations at t + r1 h and t + r2 h."""
    h = t_next - t
    s1, s2 = t + r1 * h, t + r2 * h
    eps_r1 = _intermediate_eps(denoiser, x, t, s1, eps, cache)
    u2 = (x - math.exp(-s2) * math.expm1(r2 * h) * eps
          - math.exp(-s2) * (r2 / r1) * (math.expm1(r2 * h) / (r2 * h) - 1) * (eps_r1 - eps))
    eps_r2, _ = _eps(denoiser, u2, s2)
    return (x - math.exp(-t_next) * math.expm1(h) * eps
            - math.exp(-t_next) / r2 * (math.expm1(h) / h - 1) * (eps_r2 - eps))


def _ancestral_target(t: float, t_next: float, t_end: float, eta: float) -> tuple[float, float]:
    """With eta > 0, solve the ODE only to sigma_down (capped at the end) and make up the rest with noise."""
    if not eta:
        return t_next, 0.0
    down, _ = ancestral_step(math.exp(-t), math.exp(-t_next), eta)
    t_down = min(t_end, -math.log(down))
    return t_down, math.sqrt(max(math.exp(-2 * t_next) - math.exp(-2 * t_down), 0.0))


def sample_dpm_fast(denoiser: Denoiser, x: Tensor, sigma_min: float, sigma_max: float, n: int, *,
                    noise: NoiseSource, callback: StepCallback | None = None, eta: float = 0.0,
                    s_noise: float = 1.0) -> Tensor:
    """DPM-Solver-fast: n model evaluations, uniform in lambda, orders 3,...,3 then 2,1 or n mod 3."""
    if sigma_min <= 0 or sigma_max <= 0:
        raise ValueError("sigma_min and sigma_max must be > 0")
    t_start, t_end = -math.log(sigma_max), -math.log(sigma_min)
    m = n // 3 + 1
    orders = [3] * (m - 2) + [2, 1] if n % 3 == 0 else [3] * (m - 1) + [n % 3]
    ts = torch.linspace(t_start, t_end, len(orders) + 1, dtype=torch.float64).tolist()
    for i, order in enumerate(orders):
        t, t_next = ts[i], ts[i + 1]
        t_down, su = _ancestral_target(t, t_next, t_end, eta)
        eps, denoised = _eps(denoiser, x, t)
        if order == 1:
            x = _step_1(x, t, t_down, eps)
        elif order == 2:
            x = _step_2(denoiser, x, t, t_down, eps)
        else:
            x = _step_3(denoiser, x, t, t_down, eps)
        if su > 0:
            x = x + noise(math.exp(-t), math.exp(-t_next)) * su * s_noise
        report(callback, i, len(orders), math.exp(-t), math.exp(-t_next), x, denoised)
    return x


def sample_dpm_adaptive(denoiser: Denoiser, x: Tensor, sigma_min: float, sigma_max: float, *,
                        noise: NoiseSource, callback: StepCallback | None = None, order: int = 3,
                        rtol: float = 0.05, atol: float = 0.0078, h_init: float = 0.05, accept_safety: float = 0.81,
                        eta: float = 0.0, s_noise: float = 1.0, max_evals: int = 10_000) -> Tensor:
    """Adaptive DPM-Solver-12/23 (Lu et al. 2022, section 4.3) with an integral step-size controller.

    Each step pairs a low- and a high-order solution; their scaled difference is the error estimate.
    The next step is h * (1 + atan(f - 1)) with f = (1/error)^(1/k), k the order (1.5 when stochastic), and
    a step is accepted when that factor is at least `accept_safety`.
    """
    if order not in (2, 3):
        raise ValueError("order must be 2 or 3")
    if sigma_min <= 0 or sigma_max <= 0:
        raise ValueError("sigma_min and sigma_max must be > 0")
    t, t_end = -math.log(sigma_max), -math.log(sigma_min)
    h = abs(h_init)
    exponent = 1 / (1.5 if eta else order)
    x_prev = x
    step = evals = 0
    while t < t_end - 1e-5:
        if evals > max_evals:
            raise RuntimeError("DPM adaptive did not converge within max_evals model evaluations")
        t_next = min(t_end, t + h)
        t_down, su = _ancestral_target(t, t_next, t_end, eta)
        eps, denoised = _eps(denoiser, x, t)
        cache: dict = {}
        if order == 2:
            x_low = _step_1(x, t, t_down, eps)
            x_high = _step_2(denoiser, x, t, t_down, eps, cache=cache)
            evals += 2
        else:
            x_low = _step_2(denoiser, x, t, t_down, eps, r1=1 / 3, cache=cache)
            x_high = _step_3(denoiser, x, t, t_down, eps, cache=cache)
            evals += 3
        delta = torch.maximum(torch.full_like(x_low, atol), rtol * torch.maximum(x_low.abs(), x_prev.abs()))
        error = float(torch.linalg.vector_norm((x_low - x_high) / delta) / x.numel() ** 0.5)
        factor = (1 / (error + 1e-8)) ** exponent
        factor = 1 + math.atan(factor - 1)  # soft limiter keeps the step-size change within (1 - pi/2, 1 + pi/2)
        if factor >= accept_safety:
            x_prev = x_low
            x = x_high
            if su > 0:
                x = x + noise(math.exp(-t), math.exp(-t_next)) * su * s_noise
            report(callback, step, step + 1, math.exp(-t), math.exp(-t_next), x, denoised)
            t = t_next
            step += 1
        h *= factor
    return x
