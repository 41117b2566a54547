"""Karras-style ODE/ancestral samplers: Euler, Euler a, Heun, DPM2, DPM2 a, LMS, LCM and Restart."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from webui.sampling.common import (
    Denoiser,
    NoiseSource,
    StepCallback,
    ancestral_step,
    call,
    churned_derivative,
    report,
    to_d,
)
from webui.sampling.schedules import karras_sigmas

_INF = float("inf")


def sample_euler(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                 callback: StepCallback | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
                 s_tmax: float = _INF, s_noise: float = 1.0) -> Tensor:
    """Karras et al. 2022, Algorithm 2 with first-order (Euler) steps."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        x, sigma_hat, denoised, d = churned_derivative(denoiser, x, s[i], n, noise, s_churn, s_tmin, s_tmax, s_noise)
        x = x + d * (s[i + 1] - sigma_hat)
        report(callback, i, n, sigma_hat, s[i + 1], x, denoised)
    return x


def sample_euler_ancestral(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                           callback: StepCallback | None = None, eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """Euler steps down to sigma_down, then fresh noise up to sigma_next (ancestral sampling)."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        down, up = ancestral_step(s[i], s[i + 1], eta)
        x = x + to_d(x, s[i], denoised) * (down - s[i])
        if s[i + 1] > 0 and up > 0:
            x = x + noise(s[i], s[i + 1]) * s_noise * up
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_heun(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                callback: StepCallback | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
                s_tmax: float = _INF, s_noise: float = 1.0) -> Tensor:
    """Karras et al. 2022, Algorithm 2: Heun's 2nd-order method, Euler on the final step to sigma 0."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        x, sigma_hat, denoised, d = churned_derivative(denoiser, x, s[i], n, noise, s_churn, s_tmin, s_tmax, s_noise)
        dt = s[i + 1] - sigma_hat
        if s[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, s[i + 1], call(denoiser, x_2, s[i + 1]))
            x = x + (d + d_2) / 2 * dt
        report(callback, i, n, sigma_hat, s[i + 1], x, denoised)
    return x


def sample_dpm_2(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                 callback: StepCallback | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
                 s_tmax: float = _INF, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver-2 (Lu et al. 2022) in Karras form: a midpoint step, the midpoint geometric in sigma."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        x, sigma_hat, denoised, d = churned_derivative(denoiser, x, s[i], n, noise, s_churn, s_tmin, s_tmax, s_noise)
        if s[i + 1] == 0:
            x = x + d * (s[i + 1] - sigma_hat)
        else:
            sigma_mid = math.exp((math.log(sigma_hat) + math.log(s[i + 1])) / 2)
            x_2 = x + d * (sigma_mid - sigma_hat)
            d_2 = to_d(x_2, sigma_mid, call(denoiser, x_2, sigma_mid))
            x = x + d_2 * (s[i + 1] - sigma_hat)
        report(callback, i, n, sigma_hat, s[i + 1], x, denoised)
    return x


def sample_dpm_2_ancestral(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                           callback: StepCallback | None = None, eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver-2 midpoint step down to sigma_down, then ancestral noise up to sigma_next."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        down, up = ancestral_step(s[i], s[i + 1], eta)
        d = to_d(x, s[i], denoised)
        if down == 0:
            x = x + d * (down - s[i])
        else:
            sigma_mid = math.exp((math.log(s[i]) + math.log(down)) / 2)
            x_2 = x + d * (sigma_mid - s[i])
            d_2 = to_d(x_2, sigma_mid, call(denoiser, x_2, sigma_mid))
            x = x + d_2 * (down - s[i])
        if s[i + 1] > 0 and up > 0:
            x = x + noise(s[i], s[i + 1]) * s_noise * up
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def _lms_coefficient(s: list[float], i: int, order: int, j: int) -> float:
    """Integral over [s_i, s_{i+1}] of the Lagrange basis polynomial for node s_{i-j} (nodes s_i .. s_{i-order+1})."""
    nodes = [s[i - k] for k in range(order)]
    poly = np.polynomial.Polynomial([1.0])
    for k, node in enumerate(nodes):
        if k != j:
            poly = poly * np.polynomial.Polynomial([-node, 1.0]) / (nodes[j] - node)
    antiderivative = poly.integ()
    return float(antiderivative(s[i + 1]) - antiderivative(s[i]))


def sample_lms(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
               callback: StepCallback | None = None, order: int = 4) -> Tensor:
    """Linear multistep (Adams-Bashforth in sigma) on dx/dsigma, using up to `order` past derivatives.

    The Lagrange integrals are polynomials, so they are integrated exactly rather than by quadrature.
    """
    s = sigmas.tolist()
    n = len(s) - 1
    history: list[Tensor] = []
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        history.append(to_d(x, s[i], denoised))
        history = history[-order:]
        cur = len(history)
        coeffs = [_lms_coefficient(s, i, cur, j) for j in range(cur)]
        x = x + sum(c * d for c, d in zip(coeffs, reversed(history), strict=True))
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_lcm(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
               callback: StepCallback | None = None) -> Tensor:
    """Multistep consistency sampling (Luo et al. 2023, Alg. 1): jump to the data estimate, re-noise to next sigma."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        x = denoised
        if s[i + 1] > 0:
            x = x + noise(s[i], s[i + 1]) * s[i + 1]
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def _restart_plan(sigmas: Tensor) -> list[tuple[float, float]]:
    """The (sigma, sigma_next) pairs Restart runs, as A1111 sets it up (Xu et al. 2023).

    With 20+ steps the main Karras schedule is shortened to pay for restart segments: one restart
    (9 steps) of the interval [0.1, 2], or two of steps // 4 steps from 36 steps on.
    """
    steps = len(sigmas) - 1
    restart_steps, restart_times = 0, 0
    if steps >= 20:
        restart_steps, restart_times = (steps // 4, 2) if steps >= 36 else (9, 1)
        sigmas = karras_sigmas(steps - restart_steps * restart_times, float(sigmas[-2]), float(sigmas[0]))
    plan: list[tuple[float, float]] = []
    s = sigmas.tolist()
    restart_at = int(torch.argmin((sigmas - 0.1).abs())) if restart_times else -1
    restart_top = int(torch.argmin((sigmas - 2.0).abs())) if restart_times else -1
    for i in range(len(s) - 1):
        plan.append((s[i], s[i + 1]))
        if i + 1 == restart_at and restart_top < restart_at:
            # restart_steps + 1 Karras points from sigma_max=2 down to 0.1, without the terminal zero
            seg = karras_sigmas(restart_steps + 1, s[restart_at], s[restart_top])[:-1].tolist()
            for _ in range(restart_times):
                plan.extend(zip(seg[:-1], seg[1:], strict=True))
    return plan


def sample_restart(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                   callback: StepCallback | None = None, s_noise: float = 1.0) -> Tensor:
    """Restart sampling (Xu et al. 2023): Heun ODE steps, jumping back up with fresh noise at restart points."""
    plan = _restart_plan(sigmas)
    last = None
    for i, (sigma, sigma_next) in enumerate(plan):
        if last is not None and last < sigma:
            # the restart jump: forward-diffuse from the current level back up to `sigma`
            x = x + noise(last, sigma) * s_noise * math.sqrt(sigma**2 - last**2)
        denoised = call(denoiser, x, sigma)
        d = to_d(x, sigma, denoised)
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigma_next, call(denoiser, x_2, sigma_next))
            x = x + (d + d_2) / 2 * dt
        report(callback, i, len(plan), sigma, sigma_next, x, denoised)
        last = sigma_next
    return x
