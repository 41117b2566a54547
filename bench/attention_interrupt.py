"""Benchmark: how long Interrupt waits inside one big self-attention, one SDPA call vs the chunked processor.

Run: .venv/bin/python -m bench.attention_interrupt [--repeats 3]
SD1.5 shapes with random weights (CPU, fp32): the UNet's first-level self-attention (320 channels, 8 heads,
cond + uncond) at 768 and 1024 px, and the VAE decoder's mid-block attention (512 channels, 1 head) at 1024 px.
"One call" is diffusers' AttnProcessor2_0 (nothing can stop it part-way: Interrupt waits for its end); "chunked"
is the processor fast_paths picks, with a job running, timed end to end and by the longest gap between checks.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from webui.models.attention import InterruptibleSdpa, chunk_bounds

CASES: list[tuple[str, Callable[[], Attention], tuple[int, ...]]] = [
    ("UNet attn1, 768 px", lambda: Attention(320, heads=8, dim_head=40), (2, 96 * 96, 320)),
    ("UNet attn1, 1024 px", lambda: Attention(320, heads=8, dim_head=40), (2, 128 * 128, 320)),
    ("VAE mid attention, 1024 px", lambda: Attention(512, heads=1, dim_head=512, norm_num_groups=32,
                                                     residual_connection=True, upcast_softmax=True,
                                                     _from_deprecated_attn_block=True), (1, 512, 128, 128)),
]


def _timed(attention: Attention, hidden: torch.Tensor) -> tuple[torch.Tensor, float]:
    started = time.perf_counter()
    with torch.no_grad():
        out = attention(hidden)
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for label, make, shape in CASES:
        torch.manual_seed(0)
        attention, hidden = make(), torch.randn(*shape)
        rows = shape[2] * shape[3] if len(shape) == 4 else shape[1]
        chunks = len(chunk_bounds(rows, rows, attention.to_q.out_features, shape[0]))
        whole, chunked, gaps, identical = [], [], [], True
        for _ in range(args.repeats):
            plain: Any = AttnProcessor2_0()  # diffusers types set_processor for its classic processor only
            attention.set_processor(plain)
            reference, seconds = _timed(attention, hidden)
            whole.append(seconds)
            processor: Any = InterruptibleSdpa()
            checks: list[float] = []
            processor.check = lambda checks=checks: checks.append(time.perf_counter())
            attention.set_processor(processor)
            out, seconds = _timed(attention, hidden)
            chunked.append(seconds)
            gaps.append(max(later - earlier for earlier, later in zip(checks[:-1], checks[1:], strict=True)))
            identical = identical and torch.equal(reference, out)
        one, split, gap = statistics.median(whole), statistics.median(chunked), statistics.median(gaps)
        print(f"{label}: one call {one:.2f}s (= the wait for Interrupt) | chunked {split:.2f}s in {chunks} chunks, "
              f"longest gap between checks {gap:.3f}s | time ratio chunked/one {split / one:.2f} | "
              f"bit-identical: {identical}")


if __name__ == "__main__":
    main()
