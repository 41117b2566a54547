"""ModelDenoiser parameterisations and CFGDenoiser guidance, batching and step-following."""
from __future__ import annotations

import torch

from webui.sampling import CFGDenoiser, DiscreteSchedule, ModelDenoiser

MODEL = DiscreteSchedule.scaled_linear()


def test_eps_and_v_recover_clean_data_from_exact_predictions() -> None:
    x0 = torch.randn(3, 4, 2, 2)
    noise = torch.randn_like(x0)
    sigma = torch.tensor([0.5, 2.0, 9.0])
    s = sigma.view(-1, 1, 1, 1)
    x = x0 + s * noise
    alpha, sigma_vp = (1 + s**2) ** -0.5, s * (1 + s**2) ** -0.5
    eps_model = ModelDenoiser(lambda x_in, t, c: noise, MODEL, "epsilon")
    v_model = ModelDenoiser(lambda x_in, t, c: alpha * noise - sigma_vp * x0, MODEL, "v_prediction")
    assert torch.allclose(eps_model(x, sigma, {}), x0, atol=1e-5)
    assert torch.allclose(v_model(x, sigma, {}), x0, atol=1e-5)


def test_model_denoiser_feeds_scaled_input_and_timesteps() -> None:
    seen = {}

    def unet(x_in, t, cond):
        seen.update(x_in=x_in, t=t)
        return torch.zeros_like(x_in)

    sigma = MODEL.sigmas[[100, 700]]
    ModelDenoiser(unet, MODEL)(torch.ones(2, 4, 1, 1), sigma, {})
    assert torch.allclose(seen["t"], torch.tensor([100.0, 700.0]), atol=1e-3)
    assert torch.allclose(seen["x_in"][:, 0, 0, 0], (sigma**2 + 1) ** -0.5)


class RecordingModel:
    """A fake conditional denoiser: output = x * (1 + mean of cond["c"]); counts calls and batch sizes."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, x, sigma, cond):
        self.batches.append(x.shape[0])
        return x * (1 + cond["c"].flatten(1).mean(1).view(-1, 1, 1, 1))


def _cond(value: float, tokens: int = 77, batch: int = 2) -> dict:
    return {"c": torch.full((batch, tokens, 8), value)}


def test_scale_one_equals_cond() -> None:
    model = RecordingModel()
    cfg = CFGDenoiser(model, lambda step: [(_cond(0.3), 1.0)], lambda step: _cond(-0.2), cfg_scale=1.0)
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(cfg(x, torch.ones(2)), x * 1.3)
    assert model.batches == [4]  # cond + uncond in one call


def test_and_weights_combine_linearly() -> None:
    x = torch.randn(2, 4, 3, 3)
    conds = [(_cond(0.5), 0.7), (_cond(-0.1), 0.4)]
    cfg = CFGDenoiser(RecordingModel(), lambda step: conds, lambda step: _cond(0.0), cfg_scale=7.5)
    uncond = x
    want = uncond + 7.5 * (0.7 * (x * 1.5 - uncond) + 0.4 * (x * 0.9 - uncond))
    assert torch.allclose(cfg(x, torch.ones(2)), want, atol=1e-5)


def test_mismatched_shapes_run_separate_calls() -> None:
    model = RecordingModel()
    cfg = CFGDenoiser(model, lambda step: [(_cond(0.2, tokens=154), 1.0)], lambda step: _cond(0.0), cfg_scale=5.0)
    x = torch.randn(2, 4, 3, 3)
    out, uncond = cfg.denoise_with_uncond(x, torch.ones(2))
    assert model.batches == [2, 2]
    assert torch.allclose(uncond, x) and torch.allclose(out, x + 5.0 * (x * 1.2 - x))


def test_conditioning_follows_the_step() -> None:
    model = RecordingModel()
    cfg = CFGDenoiser(model, lambda step: [(_cond(0.1 if step < 3 else 0.9), 1.0)], lambda step: _cond(0.0), 1.0)
    x = torch.ones(2, 1, 1, 1)
    assert torch.allclose(cfg(x, torch.ones(2), step=2), x * 1.1)
    assert torch.allclose(cfg(x, torch.ones(2), step=3), x * 1.9)


def test_scale_multiplier_scales_guidance() -> None:
    cfg = CFGDenoiser(RecordingModel(), lambda step: [(_cond(1.0), 1.0)], lambda step: _cond(0.0), cfg_scale=12.5)
    x = torch.ones(2, 1, 1, 1)
    out, uncond = cfg.denoise_with_uncond(x, torch.ones(2), 1 / 12.5)
    assert torch.allclose(out, x * 2.0) and torch.allclose(uncond, x)
