"""Every sampler, run on Gaussian data with its exact denoiser, must reproduce the data's mean and spread."""
from __future__ import annotations

import pytest
import torch

from tests.sampling.helpers import MU, STD, BatchNoise, BrownianBatch, ConsistencyDenoiser, GaussianDenoiser
from webui.sampling import SAMPLER_NAMES, DiscreteSchedule, find_sampler, run_sampler
from webui.sampling.names import find_schedule
from webui.sampling.registry import SamplerSettings, _timestep_grid
from webui.sampling.schedules import build_sigmas

MODEL = DiscreteSchedule.scaled_linear()
N = 4096


def _grid(name: str, steps: int) -> torch.Tensor:
    sampler = find_sampler(name)
    if sampler.timestep_sampler:
        return _timestep_grid(sampler, MODEL, steps, None, SamplerSettings())[0]
    return build_sigmas(sampler, find_schedule("automatic"), MODEL, steps)


def _run(name: str, seed: int, steps: int = 100) -> torch.Tensor:
    sigmas = _grid(name, steps).to(torch.float64)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 1, 2, 2, generator=gen, dtype=torch.float64) * sigmas[0]
    sampler = find_sampler(name)
    noise = BrownianBatch(x, sigmas, seed + 1) if sampler.brownian else BatchNoise(x, seed + 1)
    # LCM needs a consistency function (the ODE flow map to sigma 0), not the posterior mean
    denoiser = ConsistencyDenoiser() if name == "LCM" else GaussianDenoiser()
    return run_sampler(name, denoiser, x, sigmas, noise=noise)


@pytest.mark.parametrize("name", [s.name for s in SAMPLER_NAMES])
def test_sampler_reproduces_gaussian_data(name: str) -> None:
    out = _run(name, seed=1)
    assert torch.isfinite(out).all()
    assert out.mean().item() == pytest.approx(MU, abs=0.03)
    assert out.std().item() == pytest.approx(STD, abs=0.04)


@pytest.mark.parametrize("name", [s.name for s in SAMPLER_NAMES])
def test_same_noise_same_result(name: str) -> None:
    assert torch.equal(_run(name, seed=3, steps=8), _run(name, seed=3, steps=8))
