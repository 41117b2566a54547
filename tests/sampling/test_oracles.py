"""Trajectories checked against diffusers' schedulers used as an independent oracle on the same toy eps-model."""
from __future__ import annotations

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)

from webui.sampling import DiscreteSchedule, ModelDenoiser, find_sampler, find_schedule, run_sampler, sample
from webui.sampling.schedules import build_sigmas

MODEL = DiscreteSchedule.scaled_linear()
SD_CONFIG = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def toy_eps(x_in: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
    """A smooth nonlinear "UNet" that ignores t, so diffusers' rounded timesteps do not matter."""
    return 0.6 * torch.tanh(x_in) + 0.1 * x_in.roll(1, dims=-1)


def _denoiser():
    inner = ModelDenoiser(toy_eps, MODEL, "epsilon")
    return lambda x, sigma, step=0: inner(x, sigma, {})


def _start(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_model_sigmas_match_diffusers_linspace_euler() -> None:
    for n in (10, 28):  # grids where linspace(999, 0, n) hits integers, so both interpolations agree
        ref = EulerDiscreteScheduler(**SD_CONFIG, timestep_spacing="linspace")
        ref.set_timesteps(n)
        assert torch.allclose(MODEL.get_sigmas(n), ref.sigmas.float(), rtol=1e-5, atol=1e-6)


def test_karras_sigmas_match_diffusers() -> None:
    ref = EulerDiscreteScheduler(**SD_CONFIG, timestep_spacing="linspace", use_karras_sigmas=True)
    ref.set_timesteps(15)
    ours = build_sigmas(find_sampler("DPM++ 2M"), find_schedule("automatic"), MODEL, 15)
    assert torch.allclose(ours, ref.sigmas.float(), rtol=1e-5, atol=1e-6)


def test_euler_matches_diffusers() -> None:
    ref = EulerDiscreteScheduler(**SD_CONFIG, timestep_spacing="linspace")
    ref.set_timesteps(10)
    x0 = _start() * ref.sigmas[0]
    x = x0.clone()
    for t in ref.timesteps:
        x = ref.step(toy_eps(ref.scale_model_input(x, t), t, {}), t, x).prev_sample
    ours = run_sampler("Euler", _denoiser(), x0.clone(), MODEL.get_sigmas(10), noise=None)
    assert torch.allclose(ours, x, rtol=1e-4, atol=1e-4)


def test_euler_ancestral_matches_diffusers_given_same_noise() -> None:
    ref = EulerAncestralDiscreteScheduler(**SD_CONFIG, timestep_spacing="linspace")
    ref.set_timesteps(10)
    x0 = _start(1) * ref.sigmas[0]
    x, gen = x0.clone(), torch.Generator().manual_seed(7)
    for t in ref.timesteps:
        x = ref.step(toy_eps(ref.scale_model_input(x, t), t, {}), t, x, generator=gen).prev_sample
    ours_gen = torch.Generator().manual_seed(7)
    noise = lambda s, s_next: torch.randn(x0.shape, generator=ours_gen)  # noqa: E731 - same draws as diffusers
    ours = run_sampler("Euler a", _denoiser(), x0.clone(), MODEL.get_sigmas(10), noise=noise)
    assert torch.allclose(ours, x, rtol=1e-4, atol=1e-4)


def test_dpmpp_2m_karras_matches_diffusers_multistep() -> None:
    ref = DPMSolverMultistepScheduler(**SD_CONFIG, algorithm_type="dpmsolver++", solver_order=2,
                                      use_karras_sigmas=True, lower_order_final=False, euler_at_final=False,
                                      final_sigmas_type="zero")
    ref.set_timesteps(12)
    sigmas = build_sigmas(find_sampler("DPM++ 2M"), find_schedule("automatic"), MODEL, 12)
    assert torch.allclose(sigmas, ref.sigmas.float(), rtol=1e-5, atol=1e-6)
    x0 = _start(2) * sigmas[0]
    x = x0 / (1 + sigmas[0] ** 2) ** 0.5  # diffusers' DPM-Solver works on VP latents
    for t in ref.timesteps:
        x = ref.step(toy_eps(x, t, {}), t, x).prev_sample
    ours = run_sampler("DPM++ 2M", _denoiser(), x0.clone(), sigmas, noise=None)
    assert torch.allclose(ours, x, rtol=1e-4, atol=1e-4)


def test_ddim_matches_diffusers_on_a1111_grid() -> None:
    # A1111's DDIM: timesteps 1, 51, ..., 951, unit VP noise in, and it stops at timestep 1 (19 updates).
    ref = DDIMScheduler(**SD_CONFIG, timestep_spacing="leading", steps_offset=1, set_alpha_to_one=False,
                        clip_sample=False)
    ref.set_timesteps(20)
    assert ref.timesteps.tolist() == list(range(951, 0, -50))
    noise = _start(3)
    x = noise.clone()
    for t in ref.timesteps[:-1]:
        x = ref.step(toy_eps(x, t, {}), t, x, eta=0.0).prev_sample
    ours = sample("DDIM", None, _denoiser(), noise.clone(), MODEL, 20, seeds=[1, 2], generators=None)
    assert torch.allclose(ours, x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("steps", [5, 20])
def test_deterministic_ddim_is_euler_on_the_same_sigmas(steps: int) -> None:
    from webui.sampling.registry import SamplerSettings, _timestep_grid

    grid = _timestep_grid(find_sampler("DDIM"), MODEL, steps, None, SamplerSettings())[0]
    x0 = _start(4) * grid[0]
    ddim = run_sampler("DDIM", _denoiser(), x0.clone(), grid, noise=None)
    euler = run_sampler("Euler", _denoiser(), x0.clone(), grid, noise=None)
    assert torch.allclose(ddim, euler, rtol=1e-5, atol=1e-5)
