"""Sigma schedules: the model's discrete noise table and every A1111 schedule type, as functions returning tensors."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from webui.sampling.names import SamplerName, ScheduleName

# Published "Align Your Steps" 10-step schedules (NVIDIA how-to page); 11 sigmas each, terminal 0 appended later.
AYS_SD15: tuple[float, ...] = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
AYS_SDXL: tuple[float, ...] = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)

# A1111 v1.10.1 uses alpha = beta = 0.6 for the Beta schedule (the paper's values came later on dev).
BETA_ALPHA = 0.6
BETA_BETA = 0.6


@dataclass(frozen=True, eq=False)
class DiscreteSchedule:
    """A DDPM model's noise levels: sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) for t = 0 .. T-1."""

    alphas_cumprod: Tensor

    @classmethod
    def scaled_linear(cls, beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000) -> DiscreteSchedule:
        """Stable Diffusion's schedule; computed in float64 and stored as float32, as the LDM code registers it."""
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
        return cls(torch.cumprod(1.0 - betas, dim=0).to(torch.float32))

    @property
    def sigmas(self) -> Tensor:
        """Ascending sigmas, index = timestep."""
        a = self.alphas_cumprod
        return ((1 - a) / a) ** 0.5

    @property
    def log_sigmas(self) -> Tensor:
        return self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    @property
    def num_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    def sigma_to_t(self, sigma: Tensor) -> Tensor:
        """Continuous timestep for each sigma, interpolating linearly in log-sigma between table entries."""
        sigma = torch.as_tensor(sigma)
        log_sigmas = self.log_sigmas.to(sigma.device)
        log_sigma = sigma.to(log_sigmas.dtype).log()
        low = (torch.searchsorted(log_sigmas, log_sigma.reshape(-1), right=True) - 1).clamp(0, len(log_sigmas) - 2)
        low_v, high_v = log_sigmas[low], log_sigmas[low + 1]
        w = ((low_v - log_sigma.reshape(-1)) / (low_v - high_v)).clamp(0, 1)
        t = (1 - w) * low + w * (low + 1)
        return t.reshape(sigma.shape).to(sigma.dtype if sigma.is_floating_point() else torch.float32)

    def t_to_sigma(self, t: Tensor) -> Tensor:
        """Sigma at continuous timesteps, interpolating linearly in log-sigma (the inverse of `sigma_to_t`)."""
        t = torch.as_tensor(t, dtype=torch.float32)
        log_sigmas = self.log_sigmas.to(t.device)
        low = t.floor().long().clamp(0, len(log_sigmas) - 1)
        high = t.ceil().long().clamp(0, len(log_sigmas) - 1)
        w = t - t.floor()
        return ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()

    def get_sigmas(self, n: int) -> Tensor:
        """The "model sigmas": n timesteps evenly spaced from T-1 to 0, then a terminal 0."""
        t = torch.linspace(self.num_timesteps - 1, 0, n)
        return _append_zero(self.t_to_sigma(t))


def _append_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas.to(torch.float32), sigmas.new_zeros(1, dtype=torch.float32)])


def uniform_sigmas(n: int, model: DiscreteSchedule) -> Tensor:
    return model.get_sigmas(n)


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """Karras et al. 2022, eq. 5: evenly spaced in sigma^(1/rho)."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((hi + ramp * (lo - hi)) ** rho)


def exponential_sigmas(n: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Evenly spaced in log-sigma."""
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64).exp())


def polyexponential_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> Tensor:
    """Log-sigma following a polynomial ramp of degree rho (rho 1 is the exponential schedule)."""
    ramp = torch.linspace(1, 0, n, dtype=torch.float64) ** rho
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return _append_zero((ramp * (hi - lo) + lo).exp())


def _t_linspace_sigmas(n_points: int, drop_last: bool, model: DiscreteSchedule, sigma_min: float, sigma_max: float):
    start = model.sigma_to_t(torch.tensor(sigma_max, dtype=torch.float32))
    end = model.sigma_to_t(torch.tensor(sigma_min, dtype=torch.float32))
    t = torch.linspace(float(start), float(end), n_points)
    if drop_last:
        t = t[:-1]
    return _append_zero(model.t_to_sigma(t))


def sgm_uniform_sigmas(n: int, model: DiscreteSchedule, sigma_min: float, sigma_max: float) -> Tensor:
    """n+1 timesteps evenly spaced between t(sigma_max) and t(sigma_min), the last dropped (SGM's spacing)."""
    return _t_linspace_sigmas(n + 1, True, model, sigma_min, sigma_max)


def normal_sigmas(n: int, model: DiscreteSchedule, sigma_min: float, sigma_max: float) -> Tensor:
    """n timesteps evenly spaced between t(sigma_max) and t(sigma_min)."""
    return _t_linspace_sigmas(n, False, model, sigma_min, sigma_max)


def kl_optimal_sigmas(n: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Evenly spaced in arctan(sigma) (Sabour et al. 2024).

    As in A1111 v1.10.1 this has n+1 points ending at sigma_min, not at 0: the last step lands on sigma_min.
    """
    frac = torch.arange(n + 1, dtype=torch.float64) / n
    angles = frac * math.atan(sigma_min) + (1 - frac) * math.atan(sigma_max)
    return angles.tan().to(torch.float32)


def align_your_steps_sigmas(n: int, *, is_sdxl: bool = False) -> Tensor:
    """The published 10-step AYS list, resampled to n points by linear interpolation of log-sigma."""
    base = np.array(AYS_SDXL if is_sdxl else AYS_SD15, dtype=np.float64)
    if n == len(base):
        return _append_zero(torch.from_numpy(base))
    # Interpolate over the ascending list so np.interp sees increasing x; flip back afterwards.
    ys = np.log(base[::-1])
    resampled = np.exp(np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(base)), ys))[::-1].copy()
    return _append_zero(torch.from_numpy(resampled))


def simple_sigmas(n: int, model: DiscreteSchedule) -> Tensor:
    """Every (T/n)-th model sigma, from the top."""
    table = model.sigmas
    stride = len(table) / n
    return _append_zero(torch.stack([table[-(1 + int(k * stride))] for k in range(n)]))


def ddim_sigmas(n: int, model: DiscreteSchedule) -> Tensor:
    """Model sigmas at timesteps 1, 1+s, 1+2s, ... (s = T // n), descending.

    Matches A1111: when T is not a multiple of n this yields more than n steps.
    """
    table = model.sigmas
    stride = max(len(table) // n, 1)
    return _append_zero(table[1::stride].flip(0))


def beta_sigmas(
    n: int, sigma_min: float, sigma_max: float, alpha: float = BETA_ALPHA, beta: float = BETA_BETA
) -> Tensor:
    """Lee et al. 2024 as in A1111 v1.10.1: Beta(alpha, beta) quantiles mapped linearly onto [sigma_min, sigma_max]."""
    from scipy import stats  # imported here: scipy is heavy and only this schedule needs it

    quantiles = stats.beta.ppf(1 - np.linspace(0, 1, n), alpha, beta)
    return _append_zero(torch.from_numpy(sigma_min + quantiles * (sigma_max - sigma_min)))


def schedule_sigmas(
    schedule: str,
    n: int,
    model: DiscreteSchedule,
    *,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float | None = None,
    is_sdxl: bool = False,
) -> Tensor:
    """Sigmas for one concrete schedule name (not "automatic"); sigma range defaults to the model's own."""
    lo = model.sigma_min if sigma_min is None else sigma_min
    hi = model.sigma_max if sigma_max is None else sigma_max
    if schedule == "uniform":
        return uniform_sigmas(n, model)
    if schedule == "karras":
        return karras_sigmas(n, lo, hi, 7.0 if rho is None else rho)
    if schedule == "exponential":
        return exponential_sigmas(n, lo, hi)
    if schedule == "polyexponential":
        return polyexponential_sigmas(n, lo, hi, 1.0 if rho is None else rho)
    if schedule == "sgm_uniform":
        return sgm_uniform_sigmas(n, model, lo, hi)
    if schedule == "kl_optimal":
        return kl_optimal_sigmas(n, lo, hi)
    if schedule == "align_your_steps":
        return align_your_steps_sigmas(n, is_sdxl=is_sdxl)
    if schedule == "simple":
        return simple_sigmas(n, model)
    if schedule == "normal":
        return normal_sigmas(n, model, lo, hi)
    if schedule == "ddim":
        return ddim_sigmas(n, model)
    if schedule == "beta":
        return beta_sigmas(n, lo, hi)
    raise ValueError(f"Unknown schedule type: {schedule!r}")


def build_sigmas(
    sampler: SamplerName,
    schedule: ScheduleName,
    model: DiscreteSchedule,
    steps: int,
    *,
    is_sdxl: bool = False,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float | None = None,
    always_discard_penultimate: bool = False,
) -> Tensor:
    """The sigmas a k-diffusion-style sampler runs over, for `steps` steps.

    "Automatic" means the sampler's default schedule, else the model sigmas. Samplers flagged
    `discard_penultimate_sigma` compute steps+1 sigmas and drop the second-to-last one.
    Timestep samplers use `timestep_sigmas` / `unipc_sigmas` instead (A1111 ignores the schedule for them).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    name = schedule.name if schedule.name != "automatic" else (sampler.default_schedule or "uniform")
    discard = sampler.discard_penultimate_sigma or always_discard_penultimate
    sigmas = schedule_sigmas(
        name, steps + 1 if discard else steps, model,
        sigma_min=sigma_min, sigma_max=sigma_max, rho=rho, is_sdxl=is_sdxl,
    )
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas


def ddim_timesteps(model: DiscreteSchedule, steps: int) -> Tensor:
    """A1111's timestep grid for DDIM/PLMS/UniPC: 1, 1+s, 1+2s, ... with s = T // steps, clipped to T-1."""
    stride = model.num_timesteps // steps
    return (torch.arange(0, model.num_timesteps, stride) + 1).clamp(0, model.num_timesteps - 1)


def timestep_sigmas(model: DiscreteSchedule, steps: int) -> Tensor:
    """Descending sigmas of the DDIM/PLMS grid, without a terminal 0.

    A1111's DDIM and PLMS step from each grid timestep to the next lower one and stop at timestep 1,
    so there is one step fewer than grid points and the result keeps sigma(1) of noise.
    """
    return model.sigmas[ddim_timesteps(model, steps)].flip(0).to(torch.float32)


def unipc_sigmas(model: DiscreteSchedule, steps: int, skip_type: str = "time_uniform", t_start: float = 1.0) -> Tensor:
    """UniPC's grid (Zhao et al. 2023) on the discrete VP schedule, as steps+1 descending sigmas.

    Continuous time t in [1/T, 1] maps to timestep T*t - 1; log(alpha) is interpolated linearly in t,
    which is how the discrete noise schedule is made continuous in DPM-Solver/UniPC.
    """
    n_t = model.num_timesteps
    t_end = 1.0 / n_t
    log_alpha = 0.5 * model.alphas_cumprod.to(torch.float64).log()
    grid_t = torch.linspace(1.0 / n_t, 1.0, n_t, dtype=torch.float64)

    def sigma_at(t: Tensor) -> Tensor:
        la = torch.from_numpy(np.interp(t.numpy(), grid_t.numpy(), log_alpha.numpy()))
        return (torch.expm1(-2 * la)).sqrt()  # sigma = sqrt(1 - a) / sqrt(a) with a = exp(2 log_alpha)

    if skip_type == "logSNR":
        ends = sigma_at(torch.tensor([t_start, t_end], dtype=torch.float64))
        return torch.linspace(ends[0].log(), ends[1].log(), steps + 1, dtype=torch.float64).exp().to(torch.float32)
    if skip_type == "time_quadratic":
        t = torch.linspace(t_start**0.5, t_end**0.5, steps + 1, dtype=torch.float64) ** 2
    elif skip_type == "time_uniform":
        t = torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)
    else:
        raise ValueError(f"Unknown UniPC skip type: {skip_type!r}")
    return sigma_at(t).to(torch.float32)
