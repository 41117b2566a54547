"""Stage 1 of the demo model's training (the VAE on its own scenes) and the pixel/latent helpers every stage uses."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from scripts.demo_recipe import BUCKETS
from scripts.demo_scenes import VAE_MIX, make_scenes


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_vae(vae: AutoencoderKL, images: torch.Tensor, steps: int, batch: int, crop: int, seed: int) -> None:
    """L1 + MSE reconstruction of random crops (the VAE is convolutional) with a tiny KL term."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # start with a small posterior std, so the decoder does not begin by decoding noise
        channels = vae.config.latent_channels
        vae.quant_conv.weight[channels:] *= 0.1
        vae.quant_conv.bias[channels:] = -6.0
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    vae.train()
    side = images.shape[-1]
    for step in range(steps):
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        top, left = (int(v) for v in torch.randint(0, side - crop + 1, (2,), generator=generator) // 4 * 4)
        x = images[index, :, top:top + crop, left:left + crop]
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(z).sample
        kl = posterior.kl().mean() / z[0].numel()
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            log(f"vae step {step} loss {loss.item():.4f} kl {kl.item():.2f}")
    vae.eval()


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    return torch.cat([vae.encode(images[i:i + chunk]).latent_dist.mean for i in range(0, len(images), chunk)])


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean PSNR (dB) of images in [-1, 1]."""
    mse = ((a - b) / 2).pow(2).mean(dim=(1, 2, 3)).clamp(min=1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def train_or_load_vae(vae: AutoencoderKL, args: argparse.Namespace) -> None:
    """Stage 1, or its result from --vae-cache."""
    if args.vae_cache and Path(args.vae_cache).exists():
        vae.load_state_dict(torch.load(args.vae_cache, weights_only=True))
        vae.eval()
        return
    width, height, count = BUCKETS[0][:3]
    vae_pixels, _ = make_scenes(max(1, int(count * args.data_scale)), args.seed, width, height, VAE_MIX)
    train_vae(vae, to_tensor(vae_pixels), args.vae_steps, args.vae_batch, 32, args.seed)
    if args.vae_cache:
        torch.save(vae.state_dict(), args.vae_cache)
