"""What a denoising UNet learns to predict, and kohya's min-SNR-gamma weight of each sample's loss."""
from __future__ import annotations

import torch


def denoising_target(latents: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor,
                     v_prediction: bool) -> torch.Tensor:
    """The noise itself, or v = sqrt(a) * noise - sqrt(1 - a) * x0 (`alphas_cumprod` broadcasts per sample)."""
    if not v_prediction:
        return noise
    return alphas_cumprod.sqrt() * noise - (1 - alphas_cumprod).sqrt() * latents


def min_snr_weight(snr: torch.Tensor, gamma: float, v_prediction: bool) -> torch.Tensor:
    """min(snr, gamma) over the loss's own x0 weight (snr for epsilon, snr + 1 for v), as kohya's --min_snr_gamma."""
    return torch.clamp(snr, max=gamma) / (snr + 1 if v_prediction else snr)
