"""Times a 20-step native-size txt2img on the demo checkpoint through the real path (median of 5 after a warm-up)."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from scripts.demo_shapes import IMAGE_SIZE
from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img

TARGET_SECONDS = 0.5  # a 20-step native-size image on this 2-core CPU


def time_generations(checkpoint: Path, repeats: int = 5, steps: int = 20, sampler: str = "Euler a") -> list[float]:
    """Wall seconds of `repeats` single-image generations (model already loaded, prompt cache cold each time)."""
    with tempfile.TemporaryDirectory() as scratch:
        runtime = demo_runtime(checkpoint, Path(scratch))

        def request(seed: int, prompt: str):
            return make_request(Txt2ImgRequest, {
                "prompt": prompt, "steps": steps, "sampler_name": sampler, "cfg_scale": 7.0,
                "width": IMAGE_SIZE, "height": IMAGE_SIZE, "seed": seed, "checkpoint": checkpoint.stem,
                "save_images": False, "save_grid": False})

        load_started = time.perf_counter()
        txt2img(request(0, "a red circle on a white background"), runtime)
        print(f"load + first image: {time.perf_counter() - load_started:.2f} s")
        times = []
        for index in range(repeats):
            # A different prompt each time, so the text encoder runs as it would for a new user prompt.
            prompt = f"a blue square on a {('black', 'white', 'gray', 'brown', 'navy')[index % 5]} background"
            started = time.perf_counter()
            txt2img(request(100 + index, prompt), runtime)
            times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    times = time_generations(args.checkpoint.resolve(), args.repeats, args.steps)
    median = statistics.median(times)
    print(f"{IMAGE_SIZE}x{IMAGE_SIZE}, Euler a, {args.steps} steps, CFG 7, {torch.get_num_threads()} threads: "
          f"runs {', '.join(f'{t:.3f}' for t in times)} s; median {median:.3f} s "
          f"({'under' if median < TARGET_SECONDS else 'OVER'} the {TARGET_SECONDS} s target)")
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
