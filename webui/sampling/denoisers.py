"""Adapters from a UNet to the sampler's `denoiser(x, sigma)`: eps/v parameterisation, then classifier-free guidance."""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from webui.sampling.schedules import DiscreteSchedule

Cond = dict[str, Tensor]
UNetCall = Callable[[Tensor, Tensor, Cond], Tensor]
"""`unet_call(x_in, timesteps, cond) -> model output`; every cond tensor has the batch on dim 0."""


def _per_item(sigma: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-item sigma (B,) so it broadcasts over x (B, C, H, W)."""
    return sigma.reshape(sigma.shape[0], *([1] * (x.ndim - 1))).to(x.dtype)


class ModelDenoiser:
    """Wrap an eps- or v-predicting discrete-time UNet as D(x, sigma) on the sigma-scaled latent x = x0 + sigma * n.

    The UNet sees x_vp = x / sqrt(sigma^2 + 1) at t = sigma_to_t(sigma). With alpha = 1/sqrt(sigma^2+1) and
    sigma_vp = sigma * alpha:
    - eps: x_vp = alpha x0 + sigma_vp eps, so D = x - sigma * eps.
    - v: v = alpha eps - sigma_vp x0, so x0 = alpha x_vp - sigma_vp v
      = x / (sigma^2 + 1) - sigma / sqrt(sigma^2 + 1) * v.
    """

    def __init__(self, unet_call: UNetCall, schedule: DiscreteSchedule,
                 prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"):
        if prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}")
        self.unet_call = unet_call
        self.schedule = schedule
        self.prediction_type = prediction_type

    def __call__(self, x: Tensor, sigma: Tensor, cond: Cond) -> Tensor:
        s = _per_item(sigma, x)
        c_in = (s**2 + 1) ** -0.5
        t = self.schedule.sigma_to_t(sigma.to(torch.float32))
        out = self.unet_call(x * c_in, t, cond)
        if self.prediction_type == "epsilon":
            return x - s * out
        return x / (s**2 + 1) - s * c_in * out


CondSchedule = Callable[[int], list[tuple[Cond, float]]]
UncondSchedule = Callable[[int], Cond]
ConditionalDenoiser = Callable[[Tensor, Tensor, Cond], Tensor]


class CFGDenoiser:
    """Classifier-free guidance with composable AND sub-prompts (Liu et al. 2022):

        D = D_uncond + sum_i w_i * scale * (D_cond_i - D_uncond)

    `cond_at(step)` gives the (cond, weight) sub-prompts and `uncond_at(step)` the negative prompt in effect at a
    step, so prompt editing follows the step the sampling loop passes in. A1111 counts a step per model call
    (second-order samplers advance it twice per sampler step); `registry.sample` does that counting.
    Conditioning whose tensors all match in shape beyond the batch goes through one batched model call;
    otherwise each shape group gets its own call. Extra inputs (e.g. inpainting image conditioning) simply ride
    along as further keys of every cond dict.
    """

    def __init__(self, model: ConditionalDenoiser, cond_at: CondSchedule, uncond_at: UncondSchedule,
                 cfg_scale: float):
        self.model = model
        self.cond_at = cond_at
        self.uncond_at = uncond_at
        self.cfg_scale = cfg_scale

    def __call__(self, x: Tensor, sigma: Tensor, *, step: int = 0) -> Tensor:
        return self.denoise_with_uncond(x, sigma, step=step)[0]

    def denoise_with_uncond(self, x: Tensor, sigma: Tensor, scale_multiplier: float = 1.0, *,
                            step: int = 0) -> tuple[Tensor, Tensor]:
        """The guided prediction and the unconditional one (DDIM CFG++ re-noises along the latter)."""
        conds = self.cond_at(step)
        if not conds:
            raise ValueError("cond_at returned no sub-prompts")
        outputs = self._run_batched(x, sigma, [c for c, _ in conds] + [self.uncond_at(step)])
        uncond = outputs[-1]
        scale = self.cfg_scale * scale_multiplier
        denoised = uncond.clone()
        for (_, weight), out in zip(conds, outputs[:-1], strict=True):
            denoised += (out - uncond) * (weight * scale)
        return denoised, uncond

    def _run_batched(self, x: Tensor, sigma: Tensor, conds: list[Cond]) -> list[Tensor]:
        """Evaluate the model once per group of shape-compatible conds, returning outputs in the given order."""
        groups: dict[tuple, list[int]] = {}
        for index, cond in enumerate(conds):
            groups.setdefault(_signature(cond), []).append(index)
        results: list[Tensor | None] = [None] * len(conds)
        batch = x.shape[0]
        for indices in groups.values():
            members = [conds[i] for i in indices]
            joined = {key: torch.cat([m[key] for m in members]) for key in members[0]}
            out = self.model(torch.cat([x] * len(indices)), torch.cat([sigma] * len(indices)), joined)
            for slot, index in enumerate(indices):
                results[index] = out[slot * batch:(slot + 1) * batch]
        return [result for result in results if result is not None]  # every index belongs to one group


def _signature(cond: Cond) -> tuple:
    return tuple(sorted((key, tuple(value.shape[1:]), value.dtype) for key, value in cond.items()))


class MaskBlendDenoiser:
    """A1111's inpainting with a normal model: each step's prediction keeps the init latent outside the mask."""

    def __init__(self, inner: CFGDenoiser, init_latent: Tensor, keep: Tensor) -> None:
        self.inner = inner
        self.init_latent = init_latent
        self.keep = keep

    def _blend(self, denoised: Tensor) -> Tensor:
        return denoised * (1 - self.keep) + self.init_latent * self.keep

    def __call__(self, x: Tensor, sigma: Tensor, *, step: int = 0) -> Tensor:
        return self._blend(self.inner(x, sigma, step=step))

    def denoise_with_uncond(self, x: Tensor, sigma: Tensor, scale_multiplier: float = 1.0, *,
                            step: int = 0) -> tuple[Tensor, Tensor]:
        denoised, uncond = self.inner.denoise_with_uncond(x, sigma, scale_multiplier, step=step)
        return self._blend(denoised), uncond
