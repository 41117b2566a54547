"""Peak RSS and time of a model upscale (random-weight RealESRGAN Compact, realesr-general-x4v3's shape) on the CPU.

Usage: .venv/bin/python -m bench.upscale_memory [--size 512] [--tile 192] [--overlap 8] [--arch compact|esrgan]
Each run is one process, so ru_maxrss is this upscale's peak (the imports are included in the baseline line).
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--overlap", type=int, default=8)
    parser.add_argument("--arch", choices=("compact", "esrgan"), default="compact")
    args = parser.parse_args()

    from tests.helpers.upscaler_models import compact_model, esrgan_model, save_model
    from webui.models.upscalers import UpscalerLibrary
    from webui.processing.upscale import upscale_image

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "ESRGAN"
        if args.arch == "compact":
            model = compact_model(scale=4, num_feat=64, num_conv=32)  # realesr-general-x4v3's layout
        else:
            model = esrgan_model(scale=4, num_filters=64, num_blocks=23)  # RealESRGAN_x4plus' layout
        save_model(model, folder / "model.pth")
        del model
        library = UpscalerLibrary([folder], tile=args.tile, overlap=args.overlap)
        library.load("model")
        picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8))
        before_peak, before_now = _rss_mib(), _current_rss_mib()
        start = time.perf_counter()
        out = upscale_image(picture, "model", args.size * 4, args.size * 4, library)
        seconds = time.perf_counter() - start
        print(f"arch={args.arch} input={args.size}x{args.size} output={out.size[0]}x{out.size[1]} tile={args.tile} "
              f"overlap={args.overlap} threads={torch.get_num_threads()}")
        print(f"rss before upscale: {before_now:.0f} MiB (peak so far {before_peak:.0f} MiB)")
        print(f"peak rss: {_rss_mib():.0f} MiB (+{_rss_mib() - before_now:.0f} MiB), time {seconds:.1f} s")


if __name__ == "__main__":
    main()
