"""Makes the bundled demo LoRA: a stripes dataset the demo model cannot draw, trained on it with our CLI."""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.demo_shapes import BACKGROUND_COLOURS, FOREGROUND_COLOURS, IMAGE_SIZE  # noqa: E402

TRIGGER = "zkstripes"
OUTPUT_NAME = "demo-stripes"
STRIPE_COLOURS = ("yellow", "navy")
BAND = 8  # pixels per band: one latent row of the demo VAE, so the bands sit on the latent grid


def stripes(phase: int, rng: random.Random, size: int = IMAGE_SIZE) -> Image.Image:
    """Horizontal bands alternating yellow and navy, with the demo dataset's colour jitter."""
    palette = {**FOREGROUND_COLOURS, **BACKGROUND_COLOURS}
    colours = [tuple(min(255, max(0, v + rng.randint(-10, 10))) for v in palette[name]) for name in STRIPE_COLOURS]
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for band in range(size // BAND):
        draw.rectangle([0, band * BAND, size, (band + 1) * BAND - 1], fill=colours[(band + phase) % 2])
    return image


def make_dataset(folder: Path, count: int = 8, repeats: int = 10, seed: int = 0) -> Path:
    """`folder/<repeats>_zkstripes/NN.png + .txt` (kohya's layout); returns the train_data_dir."""
    rng = random.Random(seed)
    subset = folder / f"{repeats}_{TRIGGER}"
    subset.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        stripes(index % 2, rng).save(subset / f"{index:02d}.png")
        (subset / f"{index:02d}.txt").write_text(f"{TRIGGER}, yellow and navy stripes", encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "models" / "Lora")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--conv_dim", type=int, default=0,
                        help="also train the UNet's 3x3 convs (LoCon, kohya's conv_dim; conv_alpha is half of it). "
                             "The shipped LoRA uses 0; a base without attention at its first level, where the 8-px "
                             "bands are drawn (demo model v2), needs it: --conv_dim 8 --epochs 150")
    parser.add_argument("--base", type=Path, default=ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors",
                        help="the checkpoint the LoRA belongs to (default: the bundled demo model)")
    parser.add_argument("--work", type=Path, default=None, help="dataset/log folder (default: a temporary one)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="demo-lora-"))
    data = make_dataset(work / "img")
    prompts = work / "prompts.txt"
    prompts.write_text(f"{TRIGGER} --w 64 --h 64 --d 1 --l 7 --s 20\n", encoding="utf-8")
    import torch

    from webui.training.train_network import main as train_main
    torch.set_num_threads(1)  # the model is tiny: one thread is as fast, and far faster on a shared CPU
    started = time.time()
    code = train_main([
        "--pretrained_model_name_or_path", str(args.base),
        "--train_data_dir", str(data), "--output_dir", str(args.output_dir), "--output_name", OUTPUT_NAME,
        "--logging_dir", str(work / "log"), "--resolution", str(IMAGE_SIZE), "--network_dim", "8",
        "--network_alpha", "4",
        *(["--network_args", f"conv_dim={args.conv_dim}", f"conv_alpha={args.conv_dim / 2:g}"]
          if args.conv_dim else []),
        "--learning_rate", "1e-3", "--unet_lr", "1e-3", "--text_encoder_lr", "5e-4",
        "--optimizer_type", "AdamW", "--lr_scheduler", "cosine", "--lr_warmup_steps", "0.05",
        "--max_train_epochs", str(args.epochs), "--train_batch_size", "4", "--cache_latents", "--seed", "7",
        "--sample_prompts", str(prompts), "--sample_every_n_epochs", str(args.epochs), "--sample_sampler", "euler_a",
        "--trigger_word", TRIGGER, "--training_comment", "bundled demo LoRA: yellow/navy stripes"])
    print(f"trained in {time.time() - started:.0f} s; logs in {work / 'log'}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
