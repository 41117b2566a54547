"""Trains the bundled demo checkpoint (a tiny SD1-layout model of coloured shapes) from scratch on one CPU core."""
from __future__ import annotations

import argparse
import copy
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
from safetensors.torch import load_file, save_file

from scripts.demo_shapes import IMAGE_SIZE, all_captions, eval_prompts, make_dataset, partial_captions
from tests.demo.analyser import analyse, matches
from webui.conditioning.encoder import apply_emphasis
from webui.conditioning.tokenizer import load_clip_tokenizer
from webui.models.architectures import Architecture, architecture_from_spec, load_architecture, merge_spec
from webui.models.ldm_convert import diffusers_to_ldm, ldm_to_diffusers

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
TEXT_WIDTH = 128
SIDECAR: dict[str, Any] = {
    "base": "sd1",
    "name": "demo-shapes",
    "unet": {"block_out_channels": [32, 64, 128], "layers_per_block": 1, "attention_head_dim": 4,
             "down_block_types": ["CrossAttnDownBlock2D"] * 3, "up_block_types": ["CrossAttnUpBlock2D"] * 3,
             "cross_attention_dim": TEXT_WIDTH, "norm_num_groups": 8, "sample_size": IMAGE_SIZE // 8},
    "vae": {"block_out_channels": [16, 32, 64, 64], "down_block_types": ["DownEncoderBlock2D"] * 4,
            "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 1, "norm_num_groups": 4,
            "sample_size": IMAGE_SIZE, "scaling_factor": 1.0},
    "text_encoders": [{"slot": "text_encoder", "config": {
        "hidden_size": TEXT_WIDTH, "intermediate_size": 4 * TEXT_WIDTH, "num_hidden_layers": 2,
        "num_attention_heads": 4, "projection_dim": TEXT_WIDTH, "vocab_size": 49408,
        "max_position_embeddings": 77}}],
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def architecture(sidecar: dict[str, Any]) -> Architecture:
    """The Architecture our loader will build from this sidecar (sd1 base + overrides)."""
    return architecture_from_spec(merge_spec(load_architecture("sd1"), sidecar), where="demo sidecar")


def build_models(arch: Architecture, seed: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    spec = arch.text_encoders[0]
    return {"unet": UNet2DConditionModel.from_config(arch.unet_config()),
            "vae": AutoencoderKL.from_config(arch.vae_config()),
            "text_encoder": transformers.CLIPTextModel(transformers.CLIPTextConfig(**spec.config_dict()))}


def _token_embedding(text_encoder: torch.nn.Module) -> torch.nn.Module:
    return getattr(text_encoder, "text_model", text_encoder).embeddings


class CompactVocab:
    """Trains only the embedding rows the captions use: ids are remapped onto a small table, written back on save.

    `compact_ids[i]` is caption i's tokens; `partial_ids[i, k]` those of its k-th partial caption.
    """

    def __init__(self, text_encoder: torch.nn.Module, captions: list[str]) -> None:
        tokenizer = load_clip_tokenizer(True)
        partial = [p for c in captions for p in partial_captions(*_words(c))]
        ids = tokenizer(captions + partial + [""], padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt")["input_ids"]
        self.used = torch.unique(ids)
        remap = torch.zeros(49408, dtype=torch.long)
        remap[self.used] = torch.arange(len(self.used))
        compact = remap[ids]
        self.compact_ids = compact[:len(captions)]
        self.partial_ids = compact[len(captions):-1].view(len(captions), -1, compact.shape[1])
        self.compact_empty = compact[-1]
        # 1 where a full caption's colour word sits (after BOS and "a"), for emphasis augmentation.
        self.colour_mask = torch.zeros(compact[:len(captions)].shape)
        for row, text in enumerate(captions):
            count = len(tokenizer(_words(text)[0], add_special_tokens=False)["input_ids"])
            self.colour_mask[row, 2:2 + count] = 1.0
        embeddings = _token_embedding(text_encoder)
        self.full_table = embeddings.token_embedding.weight.detach().clone()
        small = torch.nn.Embedding(len(self.used), self.full_table.shape[1])
        small.weight.data.copy_(self.full_table[self.used])
        embeddings.token_embedding = small

    def full_state_dict(self, text_encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The encoder's state dict with the real 49408-row table (trained rows written into the random one)."""
        state = {k: v.detach().clone() for k, v in text_encoder.state_dict().items()}
        key = next(k for k in state if k.endswith("token_embedding.weight"))
        table = self.full_table.clone()
        table[self.used] = state[key]
        state[key] = table
        return state


def _words(text: str) -> tuple[str, str, str]:
    """(colour, shape, background) of a full caption."""
    words = text.split()
    return words[1], words[2], words[5]


def train_vae(vae: AutoencoderKL, images: torch.Tensor, steps: int, batch: int, seed: int) -> None:
    """L1 + MSE reconstruction with a tiny KL term; flat colours need little more."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # start with a small posterior std, so the decoder does not begin by decoding noise
        channels = vae.config.latent_channels
        vae.quant_conv.weight[channels:] *= 0.1
        vae.quant_conv.bias[channels:] = -6.0
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    vae.train()
    for step in range(steps):
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        x = images[index]
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(z).sample
        kl = posterior.kl().mean() / z[0].numel()
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step} loss {loss.item():.4f} kl {kl.item():.2f}")
    vae.eval()


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    return torch.cat([vae.encode(images[i:i + chunk]).latent_dist.mean for i in range(0, len(images), chunk)])


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@torch.no_grad()
def sample(models: dict[str, torch.nn.Module], arch: Architecture, context: torch.Tensor, uncond: torch.Tensor,
           seed: int, steps: int = 20, cfg: float = 7.0) -> torch.Tensor:
    """Euler a with CFG at native size; returns images in [-1, 1]."""
    scheduler = EulerAncestralDiscreteScheduler.from_config(arch.scheduler_config())
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    n = context.shape[0]
    size = arch.unet["sample_size"]
    latents = torch.randn((n, 4, size, size), generator=generator) * scheduler.init_noise_sigma
    both = torch.cat([uncond.expand(n, -1, -1), context])
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        eps_u, eps_c = models["unet"](x, t, encoder_hidden_states=both).sample.chunk(2)
        latents = scheduler.step(eps_u + cfg * (eps_c - eps_u), t, latents, generator=generator).prev_sample
    vae = models["vae"]
    return vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)


def evaluate(models: dict[str, torch.nn.Module], arch: Architecture, vocab: CompactVocab, every: int,
             seed: int = 1000) -> tuple[float, float, float]:
    """Accuracy (fg colour, background, shape) on every `every`-th eval prompt, at a seed the eval script avoids."""
    captions = all_captions()
    triples = eval_prompts()[::every]
    ids = torch.stack([vocab.compact_ids[captions.index(f"a {c} {s} on a {b} background")] for c, s, b in triples])
    encoder = models["text_encoder"]
    context = encoder(input_ids=ids).last_hidden_state
    uncond = encoder(input_ids=vocab.compact_empty[None]).last_hidden_state
    images = sample(models, arch, context, uncond, seed)
    return analyse_batch(images, [f"a {c} {s} on a {b} background" for c, s, b in triples])


def analyse_batch(images: torch.Tensor, captions: list[str]) -> tuple[float, float, float]:
    """Analyser accuracy of images in [-1, 1] against captions "a {colour} {shape} on a {background} background"."""
    pixels = ((images.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    scores = np.array([matches(analyse(p), *_words(c)) for p, c in zip(pixels, captions, strict=True)], dtype=float)
    return tuple(round(float(x), 3) for x in scores.mean(axis=0))  # type: ignore[return-value]


def load_checkpoint(models: dict[str, torch.nn.Module], arch: Architecture, path: Path) -> None:
    """Start from a saved demo checkpoint (fine-tuning): LDM layout back to the diffusers modules."""
    converted = ldm_to_diffusers(load_file(str(path)), arch)
    for name, state in converted.components.items():
        models[name].load_state_dict({k: v.float() for k, v in state.items()})
    models["vae"].eval()


def save_checkpoint(models: dict[str, torch.nn.Module], vocab: CompactVocab, arch: Architecture,
                    sidecar: dict[str, Any], path: Path) -> None:
    """A1111 single-file layout (fp16) plus the same-name JSON sidecar, written next to each other."""
    components = {"unet": models["unet"].state_dict(), "vae": models["vae"].state_dict(),
                  "text_encoder": vocab.full_state_dict(models["text_encoder"])}
    state = diffusers_to_ldm(components, arch)
    tensors = {k: v.detach().clone().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt", "modelspec.title": "demo-shapes"})
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def emphasise(context: torch.Tensor, colour_mask: torch.Tensor, sizes: torch.Tensor, share: float,
              allowed: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Teach what `(red:1.4)` means: for a share of full captions, weight the colour word as A1111 does, by
    0.5-1.5 rising with the picture's shape size (30-70 % of the side), so more weight draws more of the colour."""
    chosen = (torch.rand(len(sizes), generator=generator) < share) & allowed
    weights = 1.0 + (sizes - 0.5) / 0.4
    rows = []
    for i in range(len(sizes)):
        if chosen[i]:
            multipliers = 1.0 + (weights[i] - 1.0) * colour_mask[i:i + 1]
            rows.append(apply_emphasis(context[i:i + 1], multipliers, "Original")[0])
        else:
            rows.append(context[i])
    return torch.stack(rows)


def train(args: argparse.Namespace) -> None:
    """Stage 1 the VAE (or --vae-cache / --init), stage 2 latents of the fixed dataset, stage 3 UNet + text encoder."""
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    init = Path(args.init) if args.init else None
    sidecar = json.loads(init.with_suffix(".json").read_text(encoding="utf-8")) if init else copy.deepcopy(SIDECAR)
    arch = architecture(sidecar)
    models = build_models(arch, args.seed)
    started = time.time()
    pixels, specs = make_dataset(args.images, args.seed)
    captions = [spec.caption for spec in specs]
    sizes = torch.tensor([spec.size / IMAGE_SIZE for spec in specs])
    images = to_tensor(pixels)
    log(f"dataset: {len(captions)} images")
    if init:
        load_checkpoint(models, arch, init)
    elif args.vae_cache and Path(args.vae_cache).exists():
        models["vae"].load_state_dict(torch.load(args.vae_cache))
        models["vae"].eval()
    else:
        train_vae(models["vae"], images, args.vae_steps, 16, args.seed)
        if args.vae_cache:
            torch.save(models["vae"].state_dict(), args.vae_cache)
    latents = encode_latents(models["vae"], images)
    scale = float(1.0 / latents.std()) if not init else float(sidecar["vae"]["scaling_factor"])
    sidecar["vae"]["scaling_factor"] = round(scale, 5)
    arch = architecture(sidecar)
    models["vae"].register_to_config(scaling_factor=sidecar["vae"]["scaling_factor"])
    latents = latents * sidecar["vae"]["scaling_factor"]
    recon = models["vae"].decode(latents[:64] / scale).sample.detach()
    log(f"latents {tuple(latents.shape)} scale {scale:.4f}; vae recon mse {F.mse_loss(recon, images[:64]).item():.5f}"
        f"; recon accuracy (fg, bg, shape) {analyse_batch(recon, captions[:64])}")
    del images, pixels

    vocab = CompactVocab(models["text_encoder"], all_captions())
    caption_index = torch.tensor([all_captions().index(c) for c in captions])
    unet, encoder = models["unet"], models["text_encoder"]
    scheduler_cfg = arch.scheduler_config()
    betas = torch.linspace(scheduler_cfg["beta_start"] ** 0.5, scheduler_cfg["beta_end"] ** 0.5,
                           scheduler_cfg["num_train_timesteps"]) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    snr = alphas_cumprod / (1 - alphas_cumprod)
    loss_weight = torch.clamp(snr, max=args.min_snr) / snr
    params = [{"params": unet.parameters(), "lr": args.lr},
              {"params": encoder.parameters(), "lr": args.lr * args.text_lr_mult}]
    optimizer = torch.optim.AdamW(params, weight_decay=0.01)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    ema = {name: copy.deepcopy(models[name]).requires_grad_(False) for name in ("unet", "text_encoder")}
    ema_models = {"unet": ema["unet"], "text_encoder": ema["text_encoder"], "vae": models["vae"]}
    generator = torch.Generator().manual_seed(args.seed + 1)
    unet.train()
    encoder.train()
    best = -1.0
    step_time = time.time()
    for step in range(1, args.steps + 1):
        warm = min(1.0, step / args.warmup)
        cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
        for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = lr * warm * cosine
        index = torch.randint(0, latents.shape[0], (args.batch,), generator=generator)
        x0 = latents[index]
        flip = torch.rand(args.batch, generator=generator) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        ids = vocab.compact_ids[caption_index[index]]
        partial = torch.zeros(args.batch, dtype=torch.bool)
        if args.partial_captions > 0:
            variant = torch.randint(0, vocab.partial_ids.shape[1], (args.batch,), generator=generator)
            partial = torch.rand(args.batch, generator=generator) < args.partial_captions
            ids = torch.where(partial[:, None], vocab.partial_ids[caption_index[index], variant], ids)
        drop = torch.rand(args.batch, generator=generator) < args.caption_dropout
        ids = torch.where(drop[:, None], vocab.compact_empty[None], ids)
        noise = torch.randn(x0.shape, generator=generator)
        noise = noise + args.offset_noise * torch.randn((args.batch, 4, 1, 1), generator=generator)
        t = torch.randint(0, len(betas), (args.batch,), generator=generator)
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        context = encoder(input_ids=ids).last_hidden_state
        if args.emphasis_aug > 0:
            context = emphasise(context, vocab.colour_mask[caption_index[index]], sizes[index], args.emphasis_aug,
                                ~(drop | partial), generator)
        if args.context_dropout > 0:
            # Hide single token states (behind the empty prompt's), so each word's own state has to matter:
            # that is what makes an emphasis weight on one word move the picture.
            empty = encoder(input_ids=vocab.compact_empty[None]).last_hidden_state
            hide = torch.rand((args.batch, context.shape[1], 1), generator=generator) < args.context_dropout
            context = torch.where(hide & ~drop[:, None, None], empty, context)
        pred = unet(noisy, t, encoder_hidden_states=context).sample
        loss = ((pred - noise) ** 2).mean(dim=(1, 2, 3)).mul(loss_weight[t]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(unet.parameters()) + list(encoder.parameters()), 1.0)
        optimizer.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for name in ema:
                for p_ema, p in zip(ema[name].parameters(), models[name].parameters(), strict=True):
                    p_ema.lerp_(p, 1 - decay)
        if step % 50 == 0:
            log(f"step {step} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                f"{(time.time() - step_time) / 50:.3f} s/step elapsed {(time.time() - started) / 60:.1f} min")
            step_time = time.time()
        if step % args.eval_every == 0 or step == args.steps:
            fg, bg, shape = evaluate(ema_models, arch, vocab, every=args.eval_subsample)
            score = fg + bg + shape
            log(f"eval step {step}: fg {fg:.2f} bg {bg:.2f} shape {shape:.2f}")
            if score >= best:
                best = score
                save_checkpoint(ema_models, vocab, arch, sidecar, Path(args.out))
                log(f"saved {args.out} (best so far)")
            step_time = time.time()
    log(f"done in {(time.time() - started) / 60:.1f} min")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, epilog=(
        "The shipped checkpoint is the defaults (seed 0): VAE 2,500 steps (16 min), UNet 8,500 steps (51 min), one "
        "thread. --init, --emphasis-aug, --partial-captions and --context-dropout are fine-tuning experiments, off."))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--vae-steps", type=int, default=2500)
    parser.add_argument("--vae-cache", default="", help="reuse/store the trained VAE here (speeds up trials)")
    parser.add_argument("--steps", type=int, default=8500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--text-lr-mult", type=float, default=2.0)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--min-snr", type=float, default=5.0)
    parser.add_argument("--offset-noise", type=float, default=0.1)
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    parser.add_argument("--init", default="", help="fine-tune from this demo checkpoint (its sidecar and VAE)")
    parser.add_argument("--context-dropout", type=float, default=0.0, help="share of token states hidden")
    parser.add_argument("--emphasis-aug", type=float, default=0.0, help="share of captions with a weighted colour")
    parser.add_argument("--partial-captions", type=float, default=0.0, help="share of shortened captions")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-subsample", type=int, default=1, help="use every n-th of the 48 eval prompts")
    return parser.parse_args(argv)


if __name__ == "__main__":
    train(parse_args())
