"""Trains the bundled demo checkpoint v2 (a tiny SD1-layout model of coloured shapes) from scratch on the CPU.

Recipe (all in this file, `demo_scenes.py`, `demo_vocab.py` and `demo_decoder.py`; seed 0): stage 1 a 4x-downsampling
VAE on 32 px crops of its own scenes (`VAE_MIX`); stage 2 latents of 64x64, 128x128, 96x128 and 128x96 scenes with
more pairs and positions (`UNET_MIX`); stage 3 UNet + text encoder with EMA, cosine LR, min-SNR, extra weight on low
noise (img2img), 10 % caption dropout, 20 % shortened captions, unseen-token distractors and colour-weight emphasis
tied to the shape's size, keeping the best EMA by the selection prompts; stage 4 the VAE decoder alone (the encoder,
so the latents, unchanged). `--only-decoder` runs stage 4 by itself on a saved stage-3 checkpoint and the stage-1 VAE
(`--vae-cache`), with the same result as the single run.

`--prediction-type v_prediction` and `--unet-levels 4` were tried for position words (runs 4-6) and did not make
the words place the shape; `--beta-end` trains on another noise schedule (run 3). BENCHMARKS.md, "Demo model v2".
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel
from safetensors.torch import save_file

from scripts.demo_recipe import BUCKETS, NATIVE_SIZE, SIDECAR, UNET_LEVELS, architecture
from scripts.demo_scenes import UNET_MIX, VAE_MIX, make_scenes
from scripts.demo_shapes import FOREGROUND_COLOURS, caption, eval_prompts
from scripts.demo_vocab import DemoVocab
from tests.demo.analyser import analyse, matches
from webui.conditioning.encoder import apply_emphasis
from webui.models.architectures import Architecture, load_architecture
from webui.models.ldm_convert import diffusers_to_ldm
from webui.processing.model_calls import alphas_cumprod as schedule_alphas_cumprod
from webui.training.objective import denoising_target, min_snr_weight

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
SD_BETA_END = float(load_architecture("sd1").scheduler_config()["beta_end"])  # another value goes into the sidecar


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def build_models(arch: Architecture, seed: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    spec = arch.text_encoders[0]
    return {"unet": UNet2DConditionModel.from_config(arch.unet_config()),
            "vae": AutoencoderKL.from_config(arch.vae_config()),
            "text_encoder": transformers.CLIPTextModel(transformers.CLIPTextConfig(**spec.config_dict()))}


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


@torch.no_grad()
def sample(models: dict[str, torch.nn.Module], arch: Architecture, context: torch.Tensor, uncond: torch.Tensor,
           seed: int, size: int, steps: int = 20, cfg: float = 7.0) -> torch.Tensor:
    """Euler a with CFG; returns images in [-1, 1]."""
    scheduler = EulerAncestralDiscreteScheduler.from_config(arch.scheduler_config())
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    n = context.shape[0]
    latents = torch.randn((n, 4, size // 4, size // 4), generator=generator) * scheduler.init_noise_sigma
    both = torch.cat([uncond.expand(n, -1, -1), context])
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        eps_u, eps_c = models["unet"](x, t, encoder_hidden_states=both).sample.chunk(2)
        latents = scheduler.step(eps_u + cfg * (eps_c - eps_u), t, latents, generator=generator).prev_sample
    vae = models["vae"]
    return vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)


def selection_score(models: dict[str, torch.nn.Module], arch: Architecture, vocab: DemoVocab,
                    seed: int = 1000) -> dict[str, float]:
    """Accuracy on the 48 selection prompts at 64 px and every 4th at 128 px, at a seed the eval script avoids."""
    encoder = models["text_encoder"]
    uncond = encoder(input_ids=vocab.empty[None]).last_hidden_state
    scores: dict[str, float] = {}
    for size, triples in ((64, eval_prompts()), (128, eval_prompts()[::4])):
        captions = [caption(*t) for t in triples]
        context = encoder(input_ids=vocab.encode(captions)).last_hidden_state
        images = sample(models, arch, context, uncond, seed, size)
        pixels = ((images.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        hits = np.array([matches(analyse(p), c, s, b) for p, (c, s, b) in zip(pixels, triples, strict=True)])
        for name, column in zip(("fg", "bg", "shape"), hits.T.astype(float), strict=True):
            scores[f"{name}{size}"] = round(float(column.mean()), 3)
    return scores


def save_checkpoint(models: dict[str, torch.nn.Module], vocab: DemoVocab, arch: Architecture,
                    sidecar: dict[str, Any], path: Path) -> None:
    """A1111 single-file layout (fp16) plus the same-name JSON sidecar, each written whole (temp + rename)."""
    components = {"unet": models["unet"].state_dict(), "vae": models["vae"].state_dict(),
                  "text_encoder": vocab.full_state_dict(models["text_encoder"])}
    state = diffusers_to_ldm(components, arch)
    write_checkpoint(state, sidecar, path)


def write_checkpoint(state: dict[str, torch.Tensor], sidecar: dict[str, Any], path: Path) -> None:
    """Tensors in fp16 and the sidecar, each written whole (temp + rename), the sidecar first."""
    tensors = {k: v.detach().clone().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt", "modelspec.title": "demo-shapes",
                                           "modelspec.resolution": f"{NATIVE_SIZE}x{NATIVE_SIZE}"})
    side_tmp = path.with_suffix(".json.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    side_tmp.replace(path.with_suffix(".json"))
    tmp.replace(path)


def emphasise(context: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weight each row's colour tokens as A1111's "Original" emphasis does (weights 1.0: unchanged rows)."""
    rows = [apply_emphasis(context[i:i + 1], 1.0 + (weights[i] - 1.0) * mask[i:i + 1], "Original")[0]
            if weights[i] != 1.0 else context[i] for i in range(len(weights))]
    return torch.stack(rows)


@dataclasses.dataclass
class Bucket:
    """Latents, caption ids and emphasis weights of one resolution's scenes."""

    latents: torch.Tensor
    full: torch.Tensor
    partial: torch.Tensor
    weights: torch.Tensor
    batch: int


def build_buckets(vae: AutoencoderKL, vocab_texts: list[str], args: argparse.Namespace,
                  images_by_bucket: list[tuple[torch.Tensor, list[Any]]], text_encoder: torch.nn.Module,
                  scale: float) -> tuple[list[Bucket], DemoVocab]:
    vocab = DemoVocab(text_encoder, vocab_texts, set(FOREGROUND_COLOURS))
    buckets = []
    for (images, scenes), (_, _, _, batch, _) in zip(images_by_bucket, BUCKETS, strict=True):
        latents = encode_latents(vae, images) * scale
        full = vocab.encode([s.caption for s in scenes])
        partial = torch.stack([vocab.encode(s.partial_captions) for s in scenes])
        # Lone shapes without a size word: colour weight 0.5-1.5 rising with the shape's size, so that
        # "(red:1.4)" draws more red, as users expect of emphasis.
        weights = torch.tensor([1.0 + (s.shapes[0].extent / min(s.width, s.height) - 0.47) / 0.31
                                if len(s.shapes) == 1 and not s.size_word else 1.0 for s in scenes])
        buckets.append(Bucket(latents, full, partial, weights.clamp(0.5, 1.5), batch))
    return buckets, vocab


def train(args: argparse.Namespace) -> None:
    """Stage 1 the VAE, stage 2 latents of the fixed scenes, stage 3 UNet + text encoder; keeps the best EMA."""
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    sidecar = copy.deepcopy(SIDECAR)
    sidecar["unet"].update(copy.deepcopy(UNET_LEVELS[args.unet_levels]))
    sidecar["training"] = {"script": "scripts/train_demo_model.py", "seed": args.seed, "steps": args.steps,
                           "vae_steps": args.vae_steps, "buckets": [list(b[:2]) for b in BUCKETS],
                           "unet_mix": dataclasses.asdict(UNET_MIX), "vae_mix": dataclasses.asdict(VAE_MIX),
                           "partial_captions": args.partial_captions, "emphasis_aug": args.emphasis_aug}
    if args.beta_end != SD_BETA_END:
        sidecar["scheduler"] = {"beta_end": args.beta_end}
    if args.prediction_type != "epsilon":
        sidecar["prediction_type"] = args.prediction_type
    arch = architecture(sidecar)
    models = build_models(arch, args.seed)
    started = time.time()
    data = []
    for index, (width, height, count, _, _) in enumerate(BUCKETS):
        pixels, scenes = make_scenes(max(1, int(count * args.data_scale)), args.seed + index, width, height,
                                     UNET_MIX)
        data.append((to_tensor(pixels), scenes))
    log(f"scenes: {[len(s) for _, s in data]}; {(time.time() - started):.0f} s")
    if args.vae_cache and Path(args.vae_cache).exists():
        models["vae"].load_state_dict(torch.load(args.vae_cache, weights_only=True))
        models["vae"].eval()
    else:
        width, height, count = BUCKETS[0][:3]
        vae_pixels, _ = make_scenes(max(1, int(count * args.data_scale)), args.seed, width, height, VAE_MIX)
        train_vae(models["vae"], to_tensor(vae_pixels), args.vae_steps, args.vae_batch, 32, args.seed)
        del vae_pixels
        if args.vae_cache:
            torch.save(models["vae"].state_dict(), args.vae_cache)
    vae = models["vae"]
    with torch.no_grad():
        for images, _ in data[:2]:
            check = images[:64]
            recon = vae.decode(vae.encode(check).latent_dist.mean).sample.clamp(-1, 1)
            log(f"vae round trip {tuple(check.shape[-2:])}: {psnr(recon, check):.2f} dB")
    scale = float(1.0 / encode_latents(vae, data[0][0][:2000]).std())
    sidecar["vae"]["scaling_factor"] = round(scale, 5)
    arch = architecture(sidecar)
    vae.register_to_config(scaling_factor=sidecar["vae"]["scaling_factor"])
    texts = [t for _, scenes in data for s in scenes for t in [s.caption, *s.partial_captions]]
    texts += [caption(*t) for t in eval_prompts()]
    buckets, vocab = build_buckets(vae, texts, args, data, models["text_encoder"], sidecar["vae"]["scaling_factor"])
    del data
    log(f"latents encoded, scale {scale:.4f}; vocabulary {len(vocab.used)} tokens; "
        f"{(time.time() - started) / 60:.1f} min")

    unet, encoder = models["unet"], models["text_encoder"]
    alphas_cumprod = schedule_alphas_cumprod(arch.scheduler_config())  # the app's own reading of the sidecar
    snr = alphas_cumprod / (1 - alphas_cumprod)
    v_prediction = args.prediction_type == "v_prediction"
    # In x0 terms an epsilon loss weighs each step by snr, a v loss by snr + 1. Kohya's min-SNR caps both at
    # min(snr, gamma), which at the highest noise (snr ~0.005, where only the words can place the shape) gives the
    # layout ~1/200 of plain v's weight; for v this script caps snr + 1 instead, so plain v's weight stays there.
    loss_weight = min_snr_weight(snr + 1 if v_prediction else snr, args.min_snr, v_prediction=False)
    params = [{"params": unet.parameters(), "lr": args.lr},
              {"params": encoder.parameters(), "lr": args.lr * args.text_lr_mult}]
    optimizer = torch.optim.AdamW(params, weight_decay=0.01)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    ema = {name: copy.deepcopy(models[name]).requires_grad_(False) for name in ("unet", "text_encoder")}
    ema_models = {"unet": ema["unet"], "text_encoder": ema["text_encoder"], "vae": vae}
    generator = torch.Generator().manual_seed(args.seed + 1)
    shares = torch.tensor([b[4] for b in BUCKETS])
    unet.train()
    encoder.train()
    best = -1.0
    step_time = time.time()
    for step in range(1, args.steps + 1):
        warm = min(1.0, step / args.warmup)
        cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
        for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = lr * warm * cosine
        bucket = buckets[int(torch.multinomial(shares, 1, generator=generator))]
        n = bucket.batch
        index = torch.randint(0, bucket.latents.shape[0], (n,), generator=generator)
        x0 = bucket.latents[index]
        ids = bucket.full[index]
        variant = torch.randint(0, bucket.partial.shape[1], (n,), generator=generator)
        partial = torch.rand(n, generator=generator) < args.partial_captions
        ids = torch.where(partial[:, None], bucket.partial[index, variant], ids)
        drop = torch.rand(n, generator=generator) < args.caption_dropout
        ids = torch.where(drop[:, None], vocab.empty[None], ids)
        ids = vocab.with_distractors(ids, args.distractors, generator)
        noise = torch.randn(x0.shape, generator=generator)
        noise = noise + args.offset_noise * torch.randn((n, 4, 1, 1), generator=generator)
        low = torch.rand(n, generator=generator) < args.low_noise_share
        t = torch.where(low, torch.randint(0, 250, (n,), generator=generator),
                        torch.randint(0, len(alphas_cumprod), (n,), generator=generator))
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        context = encoder(input_ids=ids).last_hidden_state
        weights = torch.where(drop | partial, torch.ones(n), bucket.weights[index])
        use = torch.rand(n, generator=generator) < args.emphasis_aug
        context = emphasise(context, vocab.colour_mask(ids), torch.where(use, weights, torch.ones(n)))
        pred = unet(noisy, t, encoder_hidden_states=context).sample
        target = denoising_target(x0, noise, ab, v_prediction)
        loss = ((pred - target) ** 2).mean(dim=(1, 2, 3)).mul(loss_weight[t]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(unet.parameters()) + list(encoder.parameters()), 1.0)
        optimizer.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for name in ema:
                for p_ema, p in zip(ema[name].parameters(), models[name].parameters(), strict=True):
                    p_ema.lerp_(p, 1 - decay)
        if step % 100 == 0:
            log(f"step {step} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                f"{(time.time() - step_time) / 100:.3f} s/step elapsed {(time.time() - started) / 60:.1f} min")
            step_time = time.time()
        if step % args.eval_every == 0 or step == args.steps:
            scores = selection_score(ema_models, arch, vocab)
            total = sum(scores.values())
            log(f"eval step {step}: {scores}")
            if total >= best:
                best = total
                sidecar["training"]["selected_step"] = step
                save_checkpoint(ema_models, vocab, arch, sidecar, Path(args.out))
                log(f"saved {args.out} (best so far)")
            step_time = time.time()
    from scripts.demo_decoder import install_decoder  # stage 4 lives beside this script and imports from it

    install_decoder(vae, args)
    log(f"done in {(time.time() - started) / 60:.1f} min")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-scale", type=float, default=1.0, help="share of each bucket's scene count")
    parser.add_argument("--vae-steps", type=int, default=2400)
    parser.add_argument("--vae-batch", type=int, default=24)
    parser.add_argument("--vae-cache", default="", help="reuse/store the trained VAE here (speeds up trials)")
    parser.add_argument("--unet-levels", type=int, choices=sorted(UNET_LEVELS), default=3)
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--text-lr-mult", type=float, default=2.0)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--beta-end", type=float, default=SD_BETA_END, help="last beta of the scaled-linear schedule")
    parser.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), default="epsilon",
                        help="what the UNet predicts (written into the sidecar, which the app samples with)")
    parser.add_argument("--min-snr", type=float, default=5.0)
    parser.add_argument("--low-noise-share", type=float, default=0.2, help="share of samples with t < 250")
    parser.add_argument("--offset-noise", type=float, default=0.05)
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    parser.add_argument("--partial-captions", type=float, default=0.2, help="share of shortened captions")
    parser.add_argument("--distractors", type=float, default=0.25, help="share of captions with unseen tokens")
    parser.add_argument("--emphasis-aug", type=float, default=0.7, help="share of captions with a weighted colour")
    parser.add_argument("--eval-every", type=int, default=750)
    parser.add_argument("--decoder-steps", type=int, default=3000, help="stage 4: decoder-only fine-tuning")
    parser.add_argument("--only-decoder", action="store_true",
                        help="run stage 4 alone: the stage-1 VAE from --vae-cache into the checkpoint at --out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.only_decoder:
        train(args)
        return
    torch.set_num_threads(args.threads)
    sidecar = json.loads(Path(args.out).with_suffix(".json").read_text(encoding="utf-8"))
    vae = AutoencoderKL.from_config(architecture(sidecar).vae_config())
    vae.load_state_dict(torch.load(args.vae_cache, weights_only=True))
    vae.register_to_config(scaling_factor=sidecar["vae"]["scaling_factor"])
    from scripts.demo_decoder import install_decoder

    install_decoder(vae.eval(), args)


if __name__ == "__main__":
    main()
