"""Trains the bundled demo checkpoint v2 (a tiny SD1-layout model of coloured shapes) from scratch on the CPU.

Recipe (this file and the `demo_*.py` beside it; seed 0): stage 1 a 4x-downsampling VAE on 32 px crops of its own
scenes (`VAE_MIX`); stage 2 latents of 64x64, 128x128, 96x128 and 128x96 scenes with more pairs and positions
(`UNET_MIX`); stage 3 UNet + text encoder with EMA, cosine LR, min-SNR, extra weight on low noise (img2img), 10 %
caption dropout, 20 % shortened captions, unseen-token distractors and colour-weight emphasis tied to the shape's
size, keeping the best EMA by the selection prompts (`demo_selection.py`); stage 3b, the position fine-tune: the same
data with a word probe on the encoder's output (`--word-loss`), more samples at the highest noise
(`--high-noise-share`) and an x0-weight floor there (`--x0-floor`), kept only where it beats stage 3; stage 3c, the
low-noise settle of the UNet alone: a short pass below `--settle-max-t` at a small LR, mostly 64 px, 30 % of captions
another scene's (img2img keeps more of the picture, whatever the prompt); stage 4 the VAE decoder alone (the encoder,
so the latents, unchanged). `--init-from` runs stages 3b and 3c by themselves on a saved checkpoint; `--only-decoder`
runs stage 4 by itself on a saved checkpoint and the stage-1 VAE (`--vae-cache`).

Why stage 3b: after stage 3 the encoder maps "on the left" and "on the right" to nearly the same output, so the
words could not place the shape (runs 2-6; `--prediction-type v_prediction`, `--unet-levels 4` and `--beta-end` did
not help). Two-shape prompts came right (held-out 59 % -> 94 %) with a second stage-3b run at `--pair-share 0.7`.
The shipped checkpoint is one run from scratch and two `--init-from` runs on it (3b + 3c, then 3b alone); the three
commands are in BENCHMARKS.md, "Demo model v2, shipped".
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

import torch
from diffusers import AutoencoderKL

from scripts.demo_checkpoint import build_models, load_trained, save_checkpoint
from scripts.demo_recipe import BUCKETS, SIDECAR, TEXT_WIDTH, UNET_LEVELS, architecture
from scripts.demo_scenes import UNET_MIX, VAE_MIX, make_scenes
from scripts.demo_selection import selection_score
from scripts.demo_shapes import FOREGROUND_COLOURS, caption, eval_prompts
from scripts.demo_vae import encode_latents, log, psnr, to_tensor, train_or_load_vae
from scripts.demo_vocab import DemoVocab, WordProbe
from webui.conditioning.encoder import apply_emphasis
from webui.models.architectures import Architecture, load_architecture
from webui.processing.model_calls import alphas_cumprod as schedule_alphas_cumprod
from webui.training.objective import denoising_target, min_snr_weight

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
SD_BETA_END = float(load_architecture("sd1").scheduler_config()["beta_end"])  # another value goes into the sidecar


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


@dataclasses.dataclass(frozen=True)
class Phase:
    """One UNet + text-encoder phase: stage 3 from scratch, 3b the position fine-tune or 3c the low-noise settle."""

    name: str
    steps: int
    lr: float
    warmup: int
    seed: int
    ema: float = 0.999  # EMA decay of the weights that are scored and saved (0: the live weights)
    cosine: bool = True  # cosine LR decay after the warm-up; False keeps the LR constant
    word_loss: float = 0.0  # weight of the WordProbe loss on the encoder's output
    high_noise_share: float = 0.0  # share of samples drawn from the last 200 timesteps
    x0_floor: float = 0.0  # least x0-space weight of any timestep
    max_t: int = 0  # > 0: every timestep drawn below it (no low/high-noise shares)
    select: bool = True  # keep the best-scoring weights (else the last ones, scored once at the end)
    plain: bool = False  # full captions only: no caption, distractor, emphasis or offset noise augmentation
    native_weight: float = 1.0  # the native (first) bucket's share of steps is multiplied by this
    mismatch: float = 0.0  # share of captions swapped for another scene's of the same bucket (the picture stays)
    probe_lr: float = 0.0  # the WordProbe's LR (0: the text encoder's)
    train_text: bool = True  # False: the text encoder stays as it is (give such a phase no word loss)


def loss_weights(snr: torch.Tensor, phase: Phase, args: argparse.Namespace) -> torch.Tensor:
    """Per-timestep weight of the target's squared error.

    In x0 terms an epsilon loss weighs each step by snr, a v loss by snr + 1. Kohya's min-SNR caps both at
    min(snr, gamma), which at the highest noise (snr ~0.005, where only the words can place the shape) gives the
    layout ~1/200 of plain v's weight; for v this script caps snr + 1 instead, so plain v's weight stays there.
    `x0_floor` lifts every step's x0 weight to at least that value (stage 3b: positions are decided at high noise).
    """
    v_prediction = args.prediction_type == "v_prediction"
    x0_per_unit = snr + 1 if v_prediction else snr
    weight = min_snr_weight(x0_per_unit, args.min_snr, v_prediction=False)
    return torch.maximum(weight, phase.x0_floor / x0_per_unit)


def train_denoiser(models: dict[str, torch.nn.Module], buckets: list[Bucket], vocab: DemoVocab, arch: Architecture,
                   sidecar: dict[str, Any], args: argparse.Namespace, phase: Phase, best: float,
                   record: dict[str, Any]) -> float:
    """Trains the UNet and text encoder with EMA; saves the EMA to --out whenever it scores >= `best`.

    The models end on the weights --out holds: the best scored, the start where nothing beat `best`, or the last
    weights of a phase that does not select. `record` (the phase's sidecar record) gets the step saved.
    """
    unet, encoder, vae = models["unet"], models["text_encoder"], models["vae"]
    alphas_cumprod = schedule_alphas_cumprod(arch.scheduler_config())  # the app's own reading of the sidecar
    loss_weight = loss_weights(alphas_cumprod / (1 - alphas_cumprod), phase, args)
    params = [{"params": unet.parameters(), "lr": phase.lr}]
    if phase.train_text:
        params.append({"params": encoder.parameters(), "lr": phase.lr * args.text_lr_mult})
    probe = WordProbe(TEXT_WIDTH, len(vocab.used), vocab.eos_row) if phase.word_loss > 0 else None
    if probe is not None:
        params.append({"params": probe.parameters(), "lr": phase.probe_lr or phase.lr * args.text_lr_mult})
    optimizer = torch.optim.AdamW(params, weight_decay=0.01)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    ema = {name: copy.deepcopy(models[name]).requires_grad_(False) for name in ("unet", "text_encoder")}
    ema_models = {"unet": ema["unet"], "text_encoder": ema["text_encoder"], "vae": vae}
    generator = torch.Generator().manual_seed(phase.seed)
    shares = torch.tensor([b[4] * (phase.native_weight if index == 0 else 1.0) for index, b in enumerate(BUCKETS)])
    partial_share, distractors, emphasis, offset = (0.0, 0.0, 0.0, 0.0) if phase.plain else \
        (args.partial_captions, args.distractors, args.emphasis_aug, args.offset_noise)
    timesteps = len(alphas_cumprod)
    best_state = {name: copy.deepcopy(models[name].state_dict()) for name in ema}
    unet.train()
    encoder.train()
    started = step_time = time.time()
    for step in range(1, phase.steps + 1):
        warm = min(1.0, step / phase.warmup)
        cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / phase.steps))) if phase.cosine else 1.0
        for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = lr * warm * cosine
        bucket = buckets[int(torch.multinomial(shares, 1, generator=generator))]
        n = bucket.batch
        index = torch.randint(0, bucket.latents.shape[0], (n,), generator=generator)
        x0 = bucket.latents[index]
        ids = bucket.full[index]
        if phase.mismatch > 0:  # draws nothing otherwise, so the other phases' random streams stay as they were
            swap = torch.rand(n, generator=generator) < phase.mismatch
            other = torch.randint(0, bucket.full.shape[0], (n,), generator=generator)
            ids = torch.where(swap[:, None], bucket.full[other], ids)
        variant = torch.randint(0, bucket.partial.shape[1], (n,), generator=generator)
        partial = torch.rand(n, generator=generator) < partial_share
        ids = torch.where(partial[:, None], bucket.partial[index, variant], ids)
        drop = torch.rand(n, generator=generator) < args.caption_dropout
        ids = torch.where(drop[:, None], vocab.empty[None], ids)
        ids = vocab.with_distractors(ids, distractors, generator)
        noise = torch.randn(x0.shape, generator=generator)
        noise = noise + offset * torch.randn((n, 4, 1, 1), generator=generator)
        low = torch.rand(n, generator=generator) < args.low_noise_share
        t = torch.where(low, torch.randint(0, 250, (n,), generator=generator),
                        torch.randint(0, timesteps, (n,), generator=generator))
        if phase.max_t > 0:
            t = torch.randint(0, phase.max_t, (n,), generator=generator)
        elif phase.high_noise_share > 0:
            high = torch.rand(n, generator=generator) < phase.high_noise_share
            t = torch.where(high, torch.randint(timesteps - 200, timesteps, (n,), generator=generator), t)
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        with torch.set_grad_enabled(phase.train_text):
            context = encoder(input_ids=ids).last_hidden_state
        weights = torch.where(drop | partial, torch.ones(n), bucket.weights[index])
        use = torch.rand(n, generator=generator) < emphasis
        emphasised = emphasise(context, vocab.colour_mask(ids), torch.where(use, weights, torch.ones(n)))
        pred = unet(noisy, t, encoder_hidden_states=emphasised).sample
        target = denoising_target(x0, noise, ab, args.prediction_type == "v_prediction")
        loss = ((pred - target) ** 2).mean(dim=(1, 2, 3)).mul(loss_weight[t]).mean()
        if probe is not None:
            loss = loss + phase.word_loss * probe.loss(context, ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(unet.parameters()) + list(encoder.parameters()), 1.0)
        optimizer.step()
        decay = min(phase.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for name in ema:
                for p_ema, p in zip(ema[name].parameters(), models[name].parameters(), strict=True):
                    p_ema.lerp_(p, 1 - decay)
        if step % 100 == 0:
            log(f"{phase.name} step {step} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                f"{(time.time() - step_time) / 100:.3f} s/step elapsed {(time.time() - started) / 60:.1f} min")
            step_time = time.time()
        if (step % args.eval_every == 0 and phase.select) or step == phase.steps:
            scores = selection_score(ema_models, arch, vocab)
            total = sum(scores.values())
            log(f"{phase.name} eval step {step}: {scores}")
            if total >= best or not phase.select:
                best = total
                record["selected_step"] = step
                save_checkpoint(ema_models, vocab, arch, sidecar, Path(args.out))
                best_state = {name: copy.deepcopy(ema[name].state_dict()) for name in ema}
                log(f"saved {args.out} (best so far)")
            step_time = time.time()
    for name, state in best_state.items():  # the next phase goes on from what the checkpoint holds
        models[name].load_state_dict(state)
    return best


def finetune_phase(args: argparse.Namespace) -> Phase:
    # Constant LR and the live weights: with stage 3's cosine decay and EMA the UNet had not begun to use the position
    # words after 4,500 steps (BENCHMARKS.md, "Demo model v2, stage 3b").
    return Phase("finetune", args.finetune_steps, args.finetune_lr, 50, args.seed + 3, ema=0.0, cosine=False,
                 word_loss=args.word_loss, high_noise_share=args.high_noise_share, x0_floor=args.x0_floor)


def settle_phase(args: argparse.Namespace) -> Phase:
    # After stage 3b, img2img at strength 0.2 added another prompt's shape and redrew a drawn triangle 3 dB worse; a
    # short pass on low noise alone, at a small LR, on plain 64 px scenes won back 1-2 dB, where the same pass with
    # every bucket and augmentation won nothing. 64 px alone lost shapes at 128 px, so the other buckets keep a small
    # share. Captions swapped for another scene's (`--settle-mismatch`) teach that at low noise the picture, not the
    # prompt, decides: img2img with another prompt at 0.2 kept a drawn circle where two plain settles grew the new
    # prompt's shape. The selection does not score img2img, so the last weights are kept. The text encoder stays as
    # stage 3b left it: trained on swapped captions it lost the position words (held-out positions 81 % -> 56 %), and
    # low-noise steps have nothing to teach it.
    train_text = args.settle_train_text_encoder
    return Phase("settle", args.settle_steps, args.settle_lr, 50, args.seed + 4, ema=0.0, cosine=False,
                 word_loss=args.word_loss if train_text else 0.0, max_t=args.settle_max_t, select=False, plain=True,
                 probe_lr=1e-3, native_weight=args.settle_native_weight, mismatch=args.settle_mismatch,
                 train_text=train_text)


def train(args: argparse.Namespace) -> None:
    """Stage 1 the VAE, stage 2 latents, stage 3 UNet + text encoder, 3b the position fine-tune, 4 the decoder.

    With --init-from, stages 1, 3 and 4 come from that checkpoint and only 3b and 3c run (on scenes of the same mix,
    but for --pair-share).
    """
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    started = time.time()
    mix = dataclasses.replace(UNET_MIX, pair_share=args.pair_share)
    if args.init_from:
        sidecar, arch, models = load_trained(Path(args.init_from))
    else:
        sidecar = copy.deepcopy(SIDECAR)
        sidecar["unet"].update(copy.deepcopy(UNET_LEVELS[args.unet_levels]))
        sidecar["training"] = {"script": "scripts/train_demo_model.py", "seed": args.seed, "steps": args.steps,
                               "vae_steps": args.vae_steps, "buckets": [list(b[:2]) for b in BUCKETS],
                               "unet_mix": dataclasses.asdict(mix), "vae_mix": dataclasses.asdict(VAE_MIX),
                               "partial_captions": args.partial_captions, "emphasis_aug": args.emphasis_aug}
        if args.beta_end != SD_BETA_END:
            sidecar["scheduler"] = {"beta_end": args.beta_end}
        if args.prediction_type != "epsilon":
            sidecar["prediction_type"] = args.prediction_type
        arch = architecture(sidecar)
        models = build_models(arch, args.seed)
    phase, settle = finetune_phase(args), settle_phase(args)
    # One record per stage-3b and 3c run (--init-from on a fine-tuned checkpoint adds to the lists); a 3b record
    # without `selected_step` is a run that never beat its start.
    common = {"seed": args.seed, "init_from": Path(args.init_from).name if args.init_from else "",
              "unet_mix": dataclasses.asdict(mix), "word_loss": args.word_loss}
    finetune_record = {"steps": phase.steps, "lr": phase.lr, "ema": phase.ema, "constant_lr": not phase.cosine,
                       "high_noise_share": phase.high_noise_share, "x0_floor": phase.x0_floor,
                       "partial_captions": args.partial_captions, "emphasis_aug": args.emphasis_aug,
                       "distractors": args.distractors, **common}
    # The settle's scenes are plain (no caption augmentation or offset noise), so its record lists none of them.
    settle_record = {"steps": settle.steps, "lr": settle.lr, "max_t": settle.max_t, "plain": settle.plain,
                     "native_weight": settle.native_weight, "mismatch": settle.mismatch, "probe_lr": settle.probe_lr,
                     **common, "train_text_encoder": settle.train_text, "word_loss": settle.word_loss}
    if phase.steps > 0:
        sidecar["training"].setdefault("finetunes", []).append(finetune_record)
    if settle.steps > 0:
        sidecar["training"].setdefault("settles", []).append(settle_record)
    data = []
    for index, (width, height, count, _, _) in enumerate(BUCKETS):
        pixels, scenes = make_scenes(max(1, int(count * args.data_scale)), args.seed + index, width, height, mix)
        data.append((to_tensor(pixels), scenes))
    log(f"scenes: {[len(s) for _, s in data]}; {(time.time() - started):.0f} s")
    vae = models["vae"]
    if not args.init_from:
        train_or_load_vae(vae, args)
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
    log(f"latents encoded, scale {sidecar['vae']['scaling_factor']}; vocabulary {len(vocab.used)} tokens; "
        f"{(time.time() - started) / 60:.1f} min")
    ema_models = {"unet": models["unet"], "text_encoder": models["text_encoder"], "vae": vae}
    if args.init_from:  # the fine-tune is kept only where it beats the checkpoint it starts from
        scores = selection_score(ema_models, arch, vocab)
        log(f"{Path(args.init_from).name}: {scores}")
        best = sum(scores.values())
    else:
        best = train_denoiser(models, buckets, vocab, arch, sidecar, args,
                              Phase("stage3", args.steps, args.lr, args.warmup, args.seed + 1, ema=args.ema), -1.0,
                              sidecar["training"])
    if phase.steps > 0:
        train_denoiser(models, buckets, vocab, arch, sidecar, args, phase, best, finetune_record)
    if settle.steps > 0:
        train_denoiser(models, buckets, vocab, arch, sidecar, args, settle, best, settle_record)
    if not args.init_from:
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
    parser.add_argument("--init-from", default="", help="a checkpoint this script wrote: run stage 3b alone on it")
    parser.add_argument("--finetune-steps", type=int, default=5000, help="stage 3b, the position fine-tune")
    parser.add_argument("--finetune-lr", type=float, default=2e-4)
    parser.add_argument("--word-loss", type=float, default=0.02, help="stage 3b: weight of the WordProbe loss")
    parser.add_argument("--high-noise-share", type=float, default=0.4,
                        help="stage 3b: share of samples from the last 200 timesteps")
    parser.add_argument("--x0-floor", type=float, default=0.05, help="stage 3b: least x0-space weight of a step")
    parser.add_argument("--pair-share", type=float, default=UNET_MIX.pair_share, help="share of two-shape scenes")
    parser.add_argument("--settle-steps", type=int, default=1000, help="stage 3c, the low-noise settle")
    parser.add_argument("--settle-lr", type=float, default=5e-5)
    parser.add_argument("--settle-max-t", type=int, default=400, help="stage 3c: every timestep below this")
    parser.add_argument("--settle-native-weight", type=float, default=3.0,
                        help="stage 3c: the 64 px bucket's share of steps times this")
    parser.add_argument("--settle-mismatch", type=float, default=0.3,
                        help="stage 3c: share of captions swapped for another scene's")
    parser.add_argument("--settle-train-text-encoder", action="store_true",
                        help="stage 3c: train the text encoder too (by default only the UNet)")
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
