"""Noise sources, the `sample` entry point, img2img, callbacks and prompt-editing step counting."""
from __future__ import annotations

import pytest
import torch

from tests.sampling.helpers import GaussianDenoiser
from webui.sampling import (
    BrownianNoise,
    CFGDenoiser,
    DiscreteSchedule,
    GeneratorNoise,
    StepInfo,
    UnknownSamplerError,
    find_sampler,
    img2img_steps,
    make_noise_source,
    run_sampler,
    sample,
)

MODEL = DiscreteSchedule.scaled_linear()


def test_generator_noise_continues_each_image_stream() -> None:
    gens = [torch.Generator().manual_seed(s) for s in (10, 11)]
    first = torch.stack([torch.randn(4, 2, 2, generator=g) for g in gens])  # the "initial noise"
    src = GeneratorNoise(first, gens)
    step_noise = src(1.0, 0.5)
    refs = [torch.Generator().manual_seed(s) for s in (10, 11)]
    for i, g in enumerate(refs):
        torch.randn(4, 2, 2, generator=g)
        assert torch.equal(step_noise[i], torch.randn(4, 2, 2, generator=g))


def test_brownian_noise_is_batch_independent_and_unit_variance() -> None:
    x2 = torch.zeros(2, 4, 8, 8)
    both = BrownianNoise(x2, [1, 2], 0.03, 14.6)(3.0, 2.0)
    alone = BrownianNoise(x2[:1], [2], 0.03, 14.6)(3.0, 2.0)
    assert torch.allclose(both[1], alone[0])
    assert not torch.allclose(both[0], both[1])
    big = BrownianNoise(torch.zeros(1, 4, 64, 64), [3], 0.03, 14.6)(5.0, 1.0)
    assert big.std().item() == pytest.approx(1.0, abs=0.05)
    assert isinstance(make_noise_source(find_sampler("DPM++ 2M SDE"), x2, [1, 2], None, 0.03, 14.6), BrownianNoise)


def test_legacy_name_and_unknown_sampler() -> None:
    x = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    a = sample("DPM++ 2M Karras", None, GaussianDenoiser(), x, MODEL, 6, seeds=[0], generators=None)
    b = sample("DPM++ 2M", "Karras", GaussianDenoiser(), x, MODEL, 6, seeds=[0], generators=None)
    assert torch.equal(a, b)
    with pytest.raises(UnknownSamplerError):
        sample("Nope", None, GaussianDenoiser(), x, MODEL, 6, seeds=[0], generators=None)


def test_img2img_step_counts_match_a1111() -> None:
    assert img2img_steps(20, 0.75) == (20, 15)  # 16 steps run
    assert img2img_steps(20, 1.0) == (20, 19)
    assert img2img_steps(20, 0.5, fix_steps=True) == (40, 19)
    steps: list[StepInfo] = []
    init = torch.full((1, 4, 4, 4), 0.5)
    x = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    sample("Euler", None, GaussianDenoiser(), x, MODEL, 20, seeds=[1], generators=None, callback=steps.append,
           denoise_strength=0.75, init_latent=init)
    assert len(steps) == 16
    assert steps[0].sigma == pytest.approx(float(MODEL.get_sigmas(20)[4]))


def _eps_toy(x_in, t, cond):
    return 0.6 * torch.tanh(x_in) + 0.1 * x_in.roll(1, dims=-1)


def test_img2img_ddim_matches_the_vp_ddim_recurrence() -> None:
    """A1111 img2img DDIM: noise init to timestep[t_enc], then DDIM over timesteps[:t_enc] in VP space."""
    from webui.sampling import ModelDenoiser
    from webui.sampling.schedules import ddim_timesteps

    inner = ModelDenoiser(_eps_toy, MODEL)
    init = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(2)) * 0.5
    noise = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    out = sample("DDIM", None, lambda x, s, step=0: inner(x, s, {}), noise, MODEL, 20, seeds=[1], generators=None,
                 denoise_strength=0.5, init_latent=init)
    ac = MODEL.alphas_cumprod.double()
    ts = ddim_timesteps(MODEL, 20).tolist()
    t_enc = 10
    x = ac[ts[t_enc]].sqrt() * init.double() + (1 - ac[ts[t_enc]]).sqrt() * noise.double()
    for k in range(t_enc - 1, 0, -1):  # the model runs at ts[k] and steps to ts[k - 1]
        a, a_prev = ac[ts[k]], ac[ts[k - 1]]
        eps = _eps_toy(x, torch.tensor([ts[k]]), {})
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    assert torch.allclose(out.double(), x, atol=1e-4)


def test_callback_exception_propagates() -> None:
    class Stop(Exception):
        pass

    def cb(info: StepInfo) -> None:
        if info.i == 2:
            raise Stop

    x = torch.randn(1, 4, 4, 4)
    with pytest.raises(Stop):
        sample("Euler a", None, GaussianDenoiser(), x, MODEL, 10, seeds=[0], generators=None, callback=cb)


def test_step_counts_model_calls_for_prompt_editing() -> None:
    den = GaussianDenoiser()
    sigmas = MODEL.get_sigmas(5)
    run_sampler("Heun", den, torch.randn(1, 1, 2, 2) * sigmas[0], sigmas, noise=None)
    assert den.steps == list(range(9))  # 4 two-call steps + a final Euler step


def test_cfgpp_uses_uncond_direction() -> None:
    def model(x, sigma, cond):
        return x * 0.5 + 0.1 * (cond["c"].mean(1) > 0).float().view(-1, 1, 1, 1)

    cond = {"c": torch.ones(1, 3)}
    uncond = {"c": -torch.ones(1, 3)}
    cfg = CFGDenoiser(model, lambda step: [(cond, 1.0)], lambda step: uncond, cfg_scale=12.5)
    sigmas = torch.tensor([8.0, 4.0, 1.5, 0.5, 0.0])
    x0 = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(3)) * 8
    out = run_sampler("DDIM CFG++", cfg, x0, sigmas, noise=None)
    # Chung et al. 2024 with A1111's slider mapping: guidance scale 12.5 / 12.5 = 1 for the x0 estimate, and the
    # step to the next sigma re-noises along the *unconditional* eps (eta 0: no fresh noise).
    x = x0.clone()
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d_cond, d_uncond = model(x, s, cond), model(x, s, uncond)
        guided = d_uncond + (d_cond - d_uncond) * (12.5 / 12.5)
        x = guided + (x - d_uncond) / s * s_next
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)
    # Plain DDIM at the same CFG follows the guided eps instead, and lands elsewhere.
    plain = run_sampler("DDIM", cfg, x0, sigmas, noise=None)
    assert (plain - out).abs().max() > 0.1


def test_settings_accept_request_eta_and_reject_unknown_keys() -> None:
    from webui.sampling import SamplerSettings

    opts = SamplerSettings.from_any({"eta": 0.5, "s_noise": 1.0})
    assert opts.eta_ancestral == 0.5 and opts.eta_ddim == 0.5
    assert SamplerSettings.from_any({"eta": None}).eta_ancestral == 1.0
    with pytest.raises(ValueError):
        SamplerSettings.from_any({"bogus": 1})
