"""DPM-Solver++ samplers (Lu et al. 2022b) in sigma space, where lambda = -log(sigma) and x decays like sigma."""
from __future__ import annotations

import math

from torch import Tensor

from webui.sampling.common import Denoiser, NoiseSource, StepCallback, ancestral_step, call, report, to_d


def sample_dpmpp_2s_ancestral(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                              callback: StepCallback | None = None, eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver++(2S) (single-step, midpoint r = 1/2) down to sigma_down, then ancestral noise up to sigma_next."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        down, up = ancestral_step(s[i], s[i + 1], eta)
        if down == 0:
            x = x + to_d(x, s[i], denoised) * (down - s[i])
        else:
            h = math.log(s[i]) - math.log(down)  # lambda step
            sigma_mid = s[i] * math.exp(-h / 2)
            x_2 = (sigma_mid / s[i]) * x - math.expm1(-h / 2) * denoised
            denoised_2 = call(denoiser, x_2, sigma_mid)
            x = (down / s[i]) * x - math.expm1(-h) * denoised_2
        if s[i + 1] > 0 and up > 0:
            x = x + noise(s[i], s[i + 1]) * s_noise * up
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_dpmpp_2m(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                    callback: StepCallback | None = None) -> Tensor:
    """DPM-Solver++(2M): second-order multistep, first-order on the first step and on the step to sigma 0."""
    s = sigmas.tolist()
    n = len(s) - 1
    old_denoised = None
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i]) - math.log(s[i + 1])
            estimate = denoised
            if old_denoised is not None:
                r = (math.log(s[i - 1]) - math.log(s[i])) / h  # ratio of the previous lambda step to this one
                estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (s[i + 1] / s[i]) * x - math.expm1(-h) * estimate
        old_denoised = denoised
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_dpmpp_sde(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                     callback: StepCallback | None = None, eta: float = 1.0, s_noise: float = 1.0,
                     r: float = 0.5) -> Tensor:
    """Stochastic DPM-Solver++(2S): each of the two sub-steps moves to its ancestral sigma_down and adds noise."""
    s = sigmas.tolist()
    n = len(s) - 1
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        if s[i + 1] == 0:
            x = x + to_d(x, s[i], denoised) * (s[i + 1] - s[i])
        else:
            h = math.log(s[i]) - math.log(s[i + 1])
            sigma_mid = s[i] * math.exp(-h * r)
            # Sub-step 1: to the intermediate level, split into deterministic part and fresh noise.
            down, up = ancestral_step(s[i], sigma_mid, eta)
            x_2 = (down / s[i]) * x - math.expm1(math.log(down) - math.log(s[i])) * denoised
            x_2 = x_2 + noise(s[i], sigma_mid) * s_noise * up
            denoised_2 = call(denoiser, x_2, sigma_mid)
            # Sub-step 2: the full step with the two predictions blended as in DPM-Solver++(2S).
            down, up = ancestral_step(s[i], s[i + 1], eta)
            fac = 1 / (2 * r)
            blended = (1 - fac) * denoised + fac * denoised_2
            x = (down / s[i]) * x - math.expm1(math.log(down) - math.log(s[i])) * blended
            x = x + noise(s[i], s[i + 1]) * s_noise * up
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_dpmpp_2m_sde(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                        callback: StepCallback | None = None, eta: float = 1.0, s_noise: float = 1.0,
                        solver_type: str = "midpoint") -> Tensor:
    """DPM-Solver++(2M) SDE: the exact linear part of the SDE plus a multistep correction ("midpoint" or "heun")."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    s = sigmas.tolist()
    n = len(s) - 1
    old_denoised: Tensor | None = None
    h_last: float | None = None
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i]) - math.log(s[i + 1])
            eta_h = eta * h
            x = (s[i + 1] / s[i]) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * denoised
            if old_denoised is not None and h_last is not None:
                r = h_last / h
                if solver_type == "heun":
                    coeff = -math.expm1(-h - eta_h) / (-h - eta_h) + 1
                else:
                    coeff = -0.5 * math.expm1(-h - eta_h)
                x = x + coeff * (1 / r) * (denoised - old_denoised)
            if eta:
                x = x + noise(s[i], s[i + 1]) * s[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise
            h_last = h
        old_denoised = denoised
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x


def sample_dpmpp_2m_sde_heun(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                             callback: StepCallback | None = None, eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver++(2M) SDE with the Heun-type second-order correction."""
    return sample_dpmpp_2m_sde(denoiser, x, sigmas, noise=noise, callback=callback, eta=eta, s_noise=s_noise,
                               solver_type="heun")


def sample_dpmpp_3m_sde(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource,
                        callback: StepCallback | None = None, eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver++(3M) SDE: third-order multistep on the data prediction with exact SDE noise."""
    s = sigmas.tolist()
    n = len(s) - 1
    d_1: Tensor | None = None  # the two previous data predictions
    d_2: Tensor | None = None
    h_1: float | None = None  # the two previous lambda steps
    h_2: float | None = None
    for i in range(n):
        denoised = call(denoiser, x, s[i])
        h: float | None = None
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i]) - math.log(s[i + 1])
            h_eta = h * (eta + 1)
            x = math.exp(-h_eta) * x - math.expm1(-h_eta) * denoised
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if h_2 is not None and h_1 is not None and d_1 is not None and d_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                diff_0 = (denoised - d_1) / r0
                diff_1 = (d_1 - d_2) / r1
                first = diff_0 + (diff_0 - diff_1) * r0 / (r0 + r1)
                second = (diff_0 - diff_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * first - phi_3 * second
            elif h_1 is not None and d_1 is not None:
                x = x + phi_2 * (denoised - d_1) / (h_1 / h)
            if eta:
                x = x + noise(s[i], s[i + 1]) * s[i + 1] * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise
        d_1, d_2 = denoised, d_1
        h_1, h_2 = h, h_1
        report(callback, i, n, s[i], s[i + 1], x, denoised)
    return x
