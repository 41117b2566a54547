"""The one sampling entry point: resolve names, build sigmas, scale noise, pick the noise source, run the sampler."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from webui.sampling import samplers_dpm_solver as dpm_solver
from webui.sampling import samplers_dpmpp as dpmpp
from webui.sampling import samplers_euler as euler
from webui.sampling import samplers_timestep as timestep
from webui.sampling.common import NoiseSource, StepCallback
from webui.sampling.names import SamplerName, ScheduleName, find_sampler, resolve_sampler
from webui.sampling.noise import make_noise_source
from webui.sampling.schedules import DiscreteSchedule, build_sigmas, ddim_timesteps, unipc_sigmas


@dataclass(frozen=True)
class SamplerSettings:
    """A1111's sampler options with its defaults (Settings > Sampler parameters)."""

    eta_ancestral: float = 1.0
    eta_ddim: float = 0.0
    s_churn: float = 0.0
    s_tmin: float = 0.0
    s_tmax: float = 0.0  # 0 means infinity, as in A1111
    s_noise: float = 1.0
    sigma_min: float | None = None  # schedule range overrides; None = the model's own
    sigma_max: float | None = None
    rho: float | None = None
    always_discard_penultimate_sigma: bool = False
    uni_pc_variant: str = "bh1"
    uni_pc_skip_type: str = "time_uniform"
    uni_pc_order: int = 3
    uni_pc_lower_order_final: bool = True
    img2img_fix_steps: bool = False
    initial_noise_multiplier: float = 1.0

    @classmethod
    def from_any(cls, value: SamplerSettings | Mapping[str, Any] | None) -> SamplerSettings:
        """Accept an instance, a plain dict of field values, or None (defaults); unknown keys are an error.

        A dict may also carry "eta" (a request's own eta, A1111's `p.eta`): when not None it overrides both
        `eta_ancestral` and `eta_ddim`, since A1111 gives it to whichever eta the chosen sampler uses.
        """
        if value is None:
            return cls()
        if isinstance(value, SamplerSettings):
            return value
        values = dict(value)
        eta = values.pop("eta", None)
        if eta is not None:
            values.update(eta_ancestral=float(eta), eta_ddim=float(eta))
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown sampler settings: {sorted(unknown)}")
        return cls(**values)


_CHURN = ("s_churn", "s_tmin", "s_tmax", "s_noise")
_ANCESTRAL = ("eta", "s_noise")

# sampler display name -> (function, the settings it takes). Read-only: no module-level mutable state.
SAMPLER_FUNCTIONS: Mapping[str, tuple[Callable[..., Tensor], tuple[str, ...]]] = MappingProxyType({
    "DPM++ 2M": (dpmpp.sample_dpmpp_2m, ()),
    "DPM++ SDE": (dpmpp.sample_dpmpp_sde, _ANCESTRAL),
    "DPM++ 2M SDE": (dpmpp.sample_dpmpp_2m_sde, _ANCESTRAL),
    "DPM++ 2M SDE Heun": (dpmpp.sample_dpmpp_2m_sde_heun, _ANCESTRAL),
    "DPM++ 2S a": (dpmpp.sample_dpmpp_2s_ancestral, _ANCESTRAL),
    "DPM++ 3M SDE": (dpmpp.sample_dpmpp_3m_sde, _ANCESTRAL),
    "Euler a": (euler.sample_euler_ancestral, _ANCESTRAL),
    "Euler": (euler.sample_euler, _CHURN),
    "LMS": (euler.sample_lms, ()),
    "Heun": (euler.sample_heun, _CHURN),
    "DPM2": (euler.sample_dpm_2, _CHURN),
    "DPM2 a": (euler.sample_dpm_2_ancestral, _ANCESTRAL),
    "DPM fast": (dpm_solver.sample_dpm_fast, _ANCESTRAL),
    "DPM adaptive": (dpm_solver.sample_dpm_adaptive, _ANCESTRAL),
    "Restart": (euler.sample_restart, ("s_noise",)),
    "DDIM": (timestep.sample_ddim, ("eta_ddim",)),
    "DDIM CFG++": (timestep.sample_ddim_cfgpp, ("eta_ddim",)),
    "PLMS": (timestep.sample_plms, ()),
    "UniPC": (timestep.sample_unipc, ("order", "variant", "lower_order_final")),
    "LCM": (euler.sample_lcm, ()),
})


class _StepCounter:
    """Tells the wrapped denoiser its step: the index of the model call, as A1111's CFG denoiser counts it.

    One instance per sampling run, so nothing outlives the run even when a callback raises.
    """

    def __init__(self, inner: Callable[..., Tensor]):
        self.inner = inner
        self.calls = 0

    def _next(self) -> int:
        self.calls += 1
        return self.calls - 1

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor:
        return self.inner(x, sigma, step=self._next())


@runtime_checkable
class _SteppedUncondDenoiser(Protocol):
    """What `sample` may be given: `common.UncondDenoiser` plus the model-call index as `step`."""

    def __call__(self, x: Tensor, sigma: Tensor, *, step: int) -> Tensor: ...

    def denoise_with_uncond(self, x: Tensor, sigma: Tensor, scale_multiplier: float, *,
                            step: int) -> tuple[Tensor, Tensor]: ...


class _UncondStepCounter(_StepCounter):
    def __init__(self, inner: _SteppedUncondDenoiser):
        super().__init__(inner)
        self.uncond_inner = inner

    def denoise_with_uncond(self, x: Tensor, sigma: Tensor, scale_multiplier: float = 1.0) -> tuple[Tensor, Tensor]:
        return self.uncond_inner.denoise_with_uncond(x, sigma, scale_multiplier, step=self._next())


def eta_for_infotext(sampler_name: str, eta: float | None) -> float | None:
    """The "Eta" A1111 writes: only for samplers that use eta, and only when it differs from their default."""
    if eta is None:
        return None
    takes = SAMPLER_FUNCTIONS[sampler_name][1]
    if "eta" in takes:
        return eta if eta != SamplerSettings.eta_ancestral else None
    if "eta_ddim" in takes:
        return eta if eta != SamplerSettings.eta_ddim else None
    return None


def _sampler_kwargs(sampler: SamplerName, settings: SamplerSettings) -> dict[str, Any]:
    values = {
        "eta": settings.eta_ancestral, "s_noise": settings.s_noise, "s_churn": settings.s_churn,
        "s_tmin": settings.s_tmin, "s_tmax": settings.s_tmax or math.inf, "eta_ddim": settings.eta_ddim,
        "order": settings.uni_pc_order, "variant": settings.uni_pc_variant,
        "lower_order_final": settings.uni_pc_lower_order_final,
    }
    kwargs = {name: values[name] for name in SAMPLER_FUNCTIONS[sampler.name][1]}
    if "eta_ddim" in kwargs:
        kwargs["eta"] = kwargs.pop("eta_ddim")
    return kwargs


def run_sampler(sampler: SamplerName | str, denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *,
                noise: NoiseSource, callback: StepCallback | None = None,
                settings: SamplerSettings | Mapping[str, Any] | None = None) -> Tensor:
    """Run one sampler over `sigmas` from x (already at sigmas[0]).

    `denoiser(x, sigma, *, step)` is told the model-call index as `step` (prompt editing follows it); if it has
    `denoise_with_uncond(x, sigma, scale_multiplier, *, step)` DDIM CFG++ uses that.
    DPM fast/adaptive ignore the sigmas' shape and use their range: sigmas[0] down to the last non-zero one.
    """
    spec = find_sampler(sampler) if isinstance(sampler, str) else sampler
    fn = SAMPLER_FUNCTIONS[spec.name][0]
    kwargs = _sampler_kwargs(spec, SamplerSettings.from_any(settings))
    counted = _UncondStepCounter(denoiser) if isinstance(denoiser, _SteppedUncondDenoiser) else _StepCounter(denoiser)
    if spec.name in ("DPM fast", "DPM adaptive"):
        positive = sigmas[sigmas > 0]
        lo, hi = float(positive.min()), float(sigmas.max())
        if spec.name == "DPM fast":
            return fn(counted, x, lo, hi, len(sigmas) - 1, noise=noise, callback=callback, **kwargs)
        return fn(counted, x, lo, hi, noise=noise, callback=callback, **kwargs)
    return fn(counted, x, sigmas, noise=noise, callback=callback, **kwargs)


def img2img_steps(steps: int, denoise_strength: float, fix_steps: bool = False) -> tuple[int, int]:
    """A1111's (schedule length, t_enc) for img2img; t_enc + 1 steps of the schedule are then run."""
    if fix_steps:
        total = int(steps / min(denoise_strength, 0.999)) if denoise_strength > 0 else 0
        return total, steps - 1
    return steps, int(min(denoise_strength, 0.999) * steps)


def _timestep_grid(sampler: SamplerName, model: DiscreteSchedule, steps: int, t_enc: int | None,
                   settings: SamplerSettings) -> tuple[Tensor, float]:
    """(descending sigma grid to run, sigma the start latent is noised to) for DDIM/PLMS/UniPC as A1111 runs them."""
    if settings.always_discard_penultimate_sigma:
        steps += 1
    timesteps = ddim_timesteps(model, steps)
    table = model.sigmas
    if t_enc is None:
        used, start = timesteps, float(table[timesteps[-1]])
    else:
        # A1111 noises to timestep[t_enc] but then samples the grid below it, starting at timestep[t_enc - 1].
        used, start = timesteps[:t_enc], float(table[timesteps[t_enc]])
    if sampler.name != "UniPC":
        return table[used].flip(0).to(torch.float32), start
    t_start = 1.0 if t_enc is None else float(used[-1]) / model.num_timesteps + 1 / model.num_timesteps
    grid = unipc_sigmas(model, len(used), settings.uni_pc_skip_type, t_start)
    return grid, (float(grid[0]) if t_enc is None else start)


def sample(
    sampler_name: SamplerName | str,
    schedule: ScheduleName | str | None,
    denoiser: Callable[..., Tensor],
    x_unit_noise: Tensor,
    model_schedule: DiscreteSchedule,
    steps: int,
    *,
    seeds: Sequence[int],
    generators: Sequence[torch.Generator] | None,
    callback: StepCallback | None = None,
    denoise_strength: float | None = None,
    init_latent: Tensor | None = None,
    settings: SamplerSettings | Mapping[str, Any] | None = None,
    is_sdxl: bool = False,
) -> Tensor:
    """Sample latents the way A1111 does for this sampler/schedule pair.

    txt2img (k-diffusion samplers): x = noise * sigma_start. img2img (`init_latent` and `denoise_strength` given):
    x = init + noise * sigma_start * initial_noise_multiplier, running t_enc + 1 steps from the matching sigma.
    `generators` are the per-image CPU generators that drew `x_unit_noise`; stochastic steps continue them.
    Timestep samplers (DDIM, DDIM CFG++, PLMS, UniPC) ignore the schedule type and use A1111's timestep grid;
    their input is unit VP noise (txt2img) and their output is the VP latent at the grid's last timestep,
    exactly as A1111 feeds and returns them.
    """
    if isinstance(sampler_name, SamplerName) and isinstance(schedule, ScheduleName):
        sampler, sched = sampler_name, schedule  # already resolved where the request was built
    else:
        sampler, sched = resolve_sampler(str(sampler_name), None if schedule is None else str(schedule))
    opts = SamplerSettings.from_any(settings)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    total, t_enc = steps, 0
    if init_latent is not None:
        if denoise_strength is None:
            raise ValueError("img2img needs denoise_strength along with init_latent")
        total, t_enc = img2img_steps(steps, denoise_strength, opts.img2img_fix_steps)
    noise_scale = opts.initial_noise_multiplier if init_latent is not None else 1.0

    if sampler.timestep_sampler:
        grid, start = _timestep_grid(sampler, model_schedule, total, t_enc if init_latent is not None else None, opts)
        # A1111 feeds these samplers VP latents: unit noise for txt2img, sqrt(a) (init + sigma noise) for img2img;
        # rescale to the sigma parameterisation of the grid's first level.
        if init_latent is not None:
            x_vp = (init_latent + x_unit_noise * noise_scale * start) / math.sqrt(1 + start**2)
        else:
            x_vp = x_unit_noise
        if len(grid) < 2:
            return x_vp
        x = x_vp * math.sqrt(1 + float(grid[0]) ** 2)
        sigmas = grid
    else:
        sigmas = build_sigmas(sampler, sched, model_schedule, total, is_sdxl=is_sdxl, sigma_min=opts.sigma_min,
                              sigma_max=opts.sigma_max, rho=opts.rho,
                              always_discard_penultimate=opts.always_discard_penultimate_sigma)
        x = x_unit_noise * noise_scale
        if init_latent is not None:
            sigmas = sigmas[total - t_enc - 1:]
            x = x * float(sigmas[0]) + init_latent
        else:
            x = x * float(sigmas[0])
    sigmas = sigmas.to(x.device)
    positive = sigmas[sigmas > 0]
    noise = make_noise_source(sampler, x, seeds, generators, float(positive.min()), float(sigmas.max()))
    out = run_sampler(sampler, denoiser, x, sigmas, noise=noise, callback=callback, settings=opts)
    if sampler.timestep_sampler and float(sigmas[-1]) > 0:
        out = out / math.sqrt(1 + float(sigmas[-1]) ** 2)
    return out
