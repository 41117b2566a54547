"""Schedule functions: shape, endpoints, monotonicity, formulas and A1111's quirks."""
from __future__ import annotations

import math

import pytest
import torch

from webui.sampling import SCHEDULE_NAMES, DiscreteSchedule, build_sigmas, find_sampler, find_schedule
from webui.sampling.schedules import (
    AYS_SD15,
    AYS_SDXL,
    align_your_steps_sigmas,
    ddim_sigmas,
    karras_sigmas,
    schedule_sigmas,
    timestep_sigmas,
    unipc_sigmas,
)

MODEL = DiscreteSchedule.scaled_linear()
CONCRETE = [s.name for s in SCHEDULE_NAMES if s.name != "automatic"]


def test_model_sigma_range_is_sd() -> None:
    assert MODEL.sigma_min == pytest.approx(0.0292, abs=1e-4)
    assert MODEL.sigma_max == pytest.approx(14.6146, abs=1e-3)


def test_sigma_t_round_trip() -> None:
    t = torch.tensor([0.0, 1.0, 10.5, 500.25, 999.0])
    assert torch.allclose(MODEL.sigma_to_t(MODEL.t_to_sigma(t)), t, atol=1e-3)
    assert torch.allclose(MODEL.t_to_sigma(torch.arange(1000.0)), MODEL.sigmas, rtol=1e-6)


@pytest.mark.parametrize("name", CONCRETE)
@pytest.mark.parametrize("n", [1, 7, 20])
def test_every_schedule_is_descending_from_the_top(name: str, n: int) -> None:
    sigmas = schedule_sigmas(name, n, MODEL)
    assert sigmas.dtype == torch.float32 and sigmas.ndim == 1
    if name == "ddim":
        assert len(sigmas) >= n + 1  # A1111's stride rounding can add steps
    else:
        assert len(sigmas) == n + 1
    if name == "kl_optimal":
        assert sigmas[-1].item() == pytest.approx(MODEL.sigma_min, rel=1e-5)  # A1111 v1.10.1 stops at sigma_min
    else:
        assert sigmas[-1].item() == 0.0
    if not (name == "align_your_steps" and n == 1):  # A1111 quirk: a 1-point resample picks the lowest sigma
        assert sigmas[0].item() == pytest.approx(14.61, abs=0.03) or name == "ddim"
    assert (sigmas[:-1] > sigmas[1:]).all() or n == 1


def test_karras_formula() -> None:
    sig = karras_sigmas(4, 0.1, 10.0, rho=7.0)
    ramp = [0, 1 / 3, 2 / 3, 1]
    want = [(10 ** (1 / 7) + r * (0.1 ** (1 / 7) - 10 ** (1 / 7))) ** 7 for r in ramp] + [0.0]
    assert torch.allclose(sig, torch.tensor(want), rtol=1e-6)


def test_exponential_is_geometric() -> None:
    sig = schedule_sigmas("exponential", 6, MODEL)[:-1]
    ratios = sig[1:] / sig[:-1]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-5)


def test_polyexponential_rho_1_is_exponential() -> None:
    assert torch.allclose(schedule_sigmas("polyexponential", 9, MODEL), schedule_sigmas("exponential", 9, MODEL))


def test_align_your_steps_published_lists() -> None:
    assert align_your_steps_sigmas(11).tolist()[:-1] == pytest.approx(list(AYS_SD15))
    assert align_your_steps_sigmas(11, is_sdxl=True).tolist()[:-1] == pytest.approx(list(AYS_SDXL))
    resampled = align_your_steps_sigmas(21)
    assert resampled[0].item() == pytest.approx(14.615) and resampled[-2].item() == pytest.approx(0.029)
    # log-linear: every other point of a 21-point resample is an original point
    assert resampled[:-1:2].tolist() == pytest.approx(list(AYS_SD15), rel=1e-5)


def test_sgm_uniform_and_normal_differ_by_the_dropped_point() -> None:
    normal = schedule_sigmas("normal", 5, MODEL)
    sgm = schedule_sigmas("sgm_uniform", 5, MODEL)
    assert normal[-2].item() == pytest.approx(MODEL.sigma_min, rel=1e-4)
    assert sgm[-2].item() > normal[-2].item()


def test_ddim_schedule_and_timestep_grid() -> None:
    assert len(ddim_sigmas(20, MODEL)) == 21
    assert len(ddim_sigmas(30, MODEL)) == 32  # 1000 // 30 = 33 -> 31 timesteps, as in A1111
    grid = timestep_sigmas(MODEL, 20)
    assert len(grid) == 20 and grid[-1].item() == pytest.approx(float(MODEL.sigmas[1]))


def test_beta_schedule_endpoints_and_symmetry() -> None:
    sig = schedule_sigmas("beta", 11, MODEL)
    assert sig[0].item() == pytest.approx(MODEL.sigma_max, rel=1e-5)
    assert sig[-2].item() == pytest.approx(MODEL.sigma_min, rel=1e-5)
    mid = (MODEL.sigma_min + MODEL.sigma_max) / 2
    assert sig[5].item() == pytest.approx(mid, rel=1e-5)  # Beta(0.6, 0.6) is symmetric


def test_simple_takes_every_kth_model_sigma() -> None:
    sig = schedule_sigmas("simple", 4, MODEL)
    assert torch.equal(sig[:-1], MODEL.sigmas[[999, 749, 499, 249]])


def test_automatic_and_discard_penultimate() -> None:
    dpm2 = build_sigmas(find_sampler("DPM2"), find_schedule("automatic"), MODEL, 10)
    karras11 = karras_sigmas(11, MODEL.sigma_min, MODEL.sigma_max)
    assert len(dpm2) == 11 and torch.allclose(dpm2, torch.cat([karras11[:-2], karras11[-1:]]))
    euler = build_sigmas(find_sampler("Euler"), find_schedule("automatic"), MODEL, 10)
    assert torch.equal(euler, MODEL.get_sigmas(10))
    explicit = build_sigmas(find_sampler("Euler"), find_schedule("Exponential"), MODEL, 10)
    assert torch.allclose(explicit, schedule_sigmas("exponential", 10, MODEL))


def test_unipc_grid_endpoints() -> None:
    grid = unipc_sigmas(MODEL, 20)
    assert len(grid) == 21
    assert grid[0].item() == pytest.approx(MODEL.sigma_max, rel=1e-4)
    assert grid[-1].item() == pytest.approx(MODEL.sigma_min, rel=1e-4)
    log_grid = unipc_sigmas(MODEL, 4, "logSNR").log()
    steps = log_grid[1:] - log_grid[:-1]
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-5)
    assert not math.isnan(unipc_sigmas(MODEL, 4, "time_quadratic").sum().item())
