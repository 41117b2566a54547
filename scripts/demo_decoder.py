"""Stage 4 of the demo model's training: fine-tune the VAE decoder alone and write it into the chosen checkpoint."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from scripts.demo_checkpoint import write_checkpoint
from scripts.demo_recipe import BUCKETS, NATIVE_SIZE, architecture
from scripts.demo_scenes import VAE_MIX, make_scenes
from scripts.demo_vae import encode_latents, log, psnr, to_tensor
from webui.models.ldm_convert import diffusers_to_ldm

MSE_WEIGHT = 10.0


def finetune_decoder(vae: AutoencoderKL, images: torch.Tensor, steps: int, batch: int, seed: int) -> None:
    """Sharpen the decoder alone on whole pictures; the encoder, and so every latent the UNet learnt, stays as is."""
    generator = torch.Generator().manual_seed(seed + 2)
    latents = encode_latents(vae, images)
    vae.requires_grad_(False)
    params = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    for param in params:
        param.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for step in range(steps):
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        z = latents[index]
        # A little latent noise: what the UNet hands the decoder is never exactly an encoder's output.
        z = z + 0.05 * z.std() * torch.randn(z.shape, generator=generator)
        recon = vae.decode(z).sample
        # At the usual pixel error (about 0.05) L1's pull is 10x MSE's, so L1 + MSE is nearly L1: good for the median
        # pixel, weak on the few large errors along a long high-contrast edge, which are what lower a picture's PSNR.
        # Weighting MSE by MSE_WEIGHT makes those edges count.
        loss = F.l1_loss(recon, images[index]) + MSE_WEIGHT * F.mse_loss(recon, images[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            log(f"decoder step {step} loss {loss.item():.4f}")
    vae.requires_grad_(True)
    vae.eval()


def install_decoder(vae: AutoencoderKL, args: argparse.Namespace) -> None:
    """Stage 4: fine-tune the stage-1 VAE's decoder and write it into the selected checkpoint (`--out`)."""
    path = Path(args.out)
    sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    arch = architecture(sidecar)
    pixels, _ = make_scenes(int(BUCKETS[0][2] * args.data_scale), args.seed, BUCKETS[0][0], BUCKETS[0][1],
                            VAE_MIX)
    check = to_tensor(make_scenes(256, args.seed + 99, NATIVE_SIZE, NATIVE_SIZE)[0])

    def round_trip() -> float:
        with torch.no_grad():
            return psnr(vae.decode(vae.encode(check).latent_dist.mean).sample.clamp(-1, 1), check)

    before = round_trip()
    finetune_decoder(vae, to_tensor(pixels), args.decoder_steps, 16, args.seed)
    log(f"vae round trip (64, 64) on unseen scenes: {before:.2f} dB -> {round_trip():.2f} dB")
    state = dict(load_file(str(path)))
    decoder = {k: v for k, v in vae.state_dict().items() if k.startswith(("decoder.", "post_quant_conv."))}
    for key, tensor in diffusers_to_ldm({"vae": decoder}, arch).items():
        if key not in state:
            raise KeyError(f"{key} is not in {path.name}")
        state[key] = tensor
    sidecar["training"]["decoder_steps"] = args.decoder_steps
    sidecar["training"]["decoder_loss"] = f"l1 + {MSE_WEIGHT:g} * mse"
    write_checkpoint(state, sidecar, path)
    log(f"decoder written into {path}")
