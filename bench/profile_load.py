"""cProfile one checkpoint load (ours or diffusers) on the cached full-size SD1.5 file and print the top functions."""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import torch

from bench.common import (
    CHECKPOINT_PATH,
    ensure_checkpoint,
    ensure_diffusers_config,
    load_diffusers_pipeline,
    peak_rss_mib,
)


def _load_ours() -> object:
    from webui.models.device import device_config
    from webui.models.loader import load_components

    return load_components(CHECKPOINT_PATH, device_config(device="cpu"))


def _load_diffusers() -> object:
    return load_diffusers_pipeline(torch.float32, "cpu")


def profile(which: str, top: int, sort: str) -> str:
    """Profile one load in this process (imports done first, outside the profile); returns the stats text."""
    from diffusers import StableDiffusionPipeline  # noqa: F401  (import cost is not load cost)

    from webui.models.loader import load_components  # noqa: F401

    loader = _load_ours if which == "ours" else _load_diffusers
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    loaded = loader()
    profiler.disable()
    seconds = time.perf_counter() - start
    out = io.StringIO()
    out.write(f"{which}: {seconds:.2f} s wall under cProfile, peak RSS {peak_rss_mib():.0f} MiB\n")
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
    del loaded
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("which", choices=("ours", "diffusers"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    args = parser.parse_args(argv)
    ensure_checkpoint()
    ensure_diffusers_config()
    print(profile(args.which, args.top, args.sort))


if __name__ == "__main__":
    main()
