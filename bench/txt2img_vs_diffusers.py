"""Our txt2img and checkpoint loading vs diffusers' StableDiffusionPipeline on the same full-size SD1.5 file."""
from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bench.common import (
    CHECKPOINT_DIR,
    CHECKPOINT_NAME,
    CHECKPOINT_PATH,
    REPO_ROOT,
    SEED,
    RssSampler,
    ensure_checkpoint,
    ensure_diffusers_config,
    load_diffusers_pipeline,
    machine_summary,
    median,
    peak_rss_mib,
)

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

    from webui.processing.runtime import Runtime

PROMPT = "a photograph of an astronaut riding a horse on the moon, detailed, 35mm"
NEGATIVE = "blurry, lowres"
CFG_SCALE = 7.0


@dataclass
class RunTiming:
    """One generation call: wall time, step end timestamps (relative to the call start) and memory."""

    total_s: float
    stamps: list[float]
    extra_rss_mib: float
    image: object = None

    @property
    def step_times(self) -> list[float]:
        """Steps 2..n (differences of consecutive step-end stamps); step 1 carries the warm-up and prompt encode."""
        return [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]

    @property
    def before_first_step_end_s(self) -> float:
        return self.stamps[0] if self.stamps else float("nan")

    @property
    def after_last_step_s(self) -> float:
        return self.total_s - self.stamps[-1] if self.stamps else float("nan")


@dataclass
class PathResults:
    runs: list[RunTiming] = field(default_factory=list)

    def steps(self) -> list[float]:
        return [t for run in self.runs for t in run.step_times]

    def column(self, what: str) -> float:
        return median([getattr(run, what) for run in self.runs])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --- our path -----------------------------------------------------------------------------------------------

def build_our_runtime(device: str, workdir: Path) -> "Runtime":
    from webui.models.device import device_config
    from webui.paths import Folders
    from webui.processing.runtime import build_runtime

    folders = Folders(checkpoints=CHECKPOINT_DIR, vae=workdir / "VAE", lora=(workdir / "Lora",),
                      embeddings=workdir / "embeddings", outputs=workdir / "outputs", data=workdir)
    # hashing=False: the app would sha256 the 2 GB file once per load, which is no part of a generation step.
    runtime = build_runtime(folders, device_config(device=device), hashing=False)
    runtime.models.load(CHECKPOINT_NAME)
    return runtime


def run_ours(runtime: "Runtime", size: int, steps: int, device: str, checkpoint: str = CHECKPOINT_NAME,
             batch: int = 1) -> RunTiming:
    from webui.processing.jobs import JobState
    from webui.processing.request import Txt2ImgRequest
    from webui.processing.txt2img import txt2img

    request = Txt2ImgRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, sampler_name="Euler",
                             scheduler="Automatic", cfg_scale=CFG_SCALE, width=size, height=size, seed=SEED,
                             checkpoint=checkpoint, batch_size=batch, save_images=False, save_grid=False)
    stamps: list[float] = []

    def on_step(_job) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    gc.collect()
    with RssSampler() as rss:
        _sync(device)
        start = time.perf_counter()
        result = txt2img(request, runtime, JobState(on_step=on_step))
        _sync(device)
        total = time.perf_counter() - start
    return RunTiming(total, [s - start for s in stamps], rss.peak_mib - rss.start_mib, result.images[0])


# --- diffusers path -------------------------------------------------------------------------------------------

def run_diffusers(pipe: "StableDiffusionPipeline", size: int, steps: int, device: str, batch: int = 1) -> RunTiming:
    stamps: list[float] = []

    def on_step_end(_pipe, _i, _t, kwargs):
        _sync(device)
        stamps.append(time.perf_counter())
        return kwargs

    generator = torch.Generator("cpu").manual_seed(SEED)
    gc.collect()
    with RssSampler() as rss:
        _sync(device)
        start = time.perf_counter()
        out = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=CFG_SCALE,
                   height=size, width=size, generator=generator, output_type="pil", num_images_per_prompt=batch,
                   callback_on_step_end=on_step_end)
        _sync(device)
        total = time.perf_counter() - start
    return RunTiming(total, [s - start for s in stamps], rss.peak_mib - rss.start_mib, out.images[0])


def prepare_diffusers(device: str) -> "StableDiffusionPipeline":
    from diffusers import EulerDiscreteScheduler

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    pipe = load_diffusers_pipeline(dtype, device)
    # Same sampler as our "Euler" + "Automatic" (model sigmas: timesteps evenly spaced from 999 down to 0).
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="linspace",
                                                        use_karras_sigmas=False, interpolation_type="linear")
    return pipe


# --- load benchmark (each load in a fresh process, so peak RSS belongs to that path alone) ----------------------

def load_child(which: str, device: str) -> dict:
    """Runs inside a child process: import first (not timed), then time one load."""
    from webui.models.device import device_config
    from webui.models.loader import load_components

    if which == "diffusers":
        from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline  # noqa: F401  (import outside timing)
        from transformers import CLIPTextModel, CLIPTokenizer  # noqa: F401
    config = device_config(device=device)
    before = peak_rss_mib()
    cpu_start = time.process_time()
    start = time.perf_counter()
    if which == "ours":
        loaded = load_components(CHECKPOINT_PATH, config)
        probe = loaded.unet
    else:
        loaded = load_diffusers_pipeline(config.dtype, device)
        probe = loaded.unet
    _sync(device)
    seconds = time.perf_counter() - start
    return {"which": which, "seconds": seconds, "cpu_seconds": time.process_time() - cpu_start,
            "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before,
            "unet_dtype": str(next(probe.parameters()).dtype)}


def bench_loading(repeats: int, device: str) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {"ours": [], "diffusers": []}
    with open(CHECKPOINT_PATH, "rb") as handle:  # warm the page cache so neither path pays the cold disk read
        while handle.read(64 << 20):
            pass
    for index in range(repeats):
        for which in (("ours", "diffusers") if index % 2 == 0 else ("diffusers", "ours")):
            child = [sys.executable, "-m", "bench.txt2img_vs_diffusers", "--load-child", which, "--device", device,
                     "--threads", str(torch.get_num_threads())]
            proc = subprocess.run(child, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"{which} load child failed:\n{proc.stderr[-3000:]}")
            results[which].append(json.loads(lines[-1]))
            last = results[which][-1]
            print(f"  load {which:9s} {last['seconds']:6.2f} s wall, {last['cpu_seconds']:6.2f} s CPU", flush=True)
    return results


def print_load_table(results: dict[str, list[dict]]) -> None:
    ours = [r["seconds"] for r in results["ours"]]
    theirs = [r["seconds"] for r in results["diffusers"]]
    print("\nCheckpoint load (fresh process each, imports not timed; median of %d, alternating)" % len(ours))
    print(f"{'path':30s} {'median s':>9s} {'runs s (wall)':>30s} {'CPU s':>7s} {'peak RSS MiB':>13s}")
    rows = (("ours  load_components", ours, results["ours"]),
            ("diffusers  from_single_file", theirs, results["diffusers"]))
    for label, times, raw in rows:
        runs = ", ".join(f"{t:.2f}" for t in times)
        cpu, rss = median([r["cpu_seconds"] for r in raw]), median([r["peak_rss_mib"] for r in raw])
        print(f"{label:30s} {median(times):9.2f} {runs:>30s} {cpu:7.2f} {rss:13.0f}")
    cpu_ours, cpu_theirs = ([r["cpu_seconds"] for r in results[k]] for k in ("ours", "diffusers"))
    cpu_ratio = median(cpu_ours) / median(cpu_theirs)
    print(f"ratio ours/diffusers (load time): {median(ours) / median(theirs):.3f} wall, {cpu_ratio:.3f} CPU")


# --- generation benchmark ---------------------------------------------------------------------------------------

def pixel_difference(a: object, b: object) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max())


def bench_generation(args: argparse.Namespace) -> tuple[PathResults, PathResults]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-txt2img-"))
    runtime = build_our_runtime(args.device, workdir)
    pipe = prepare_diffusers(args.device)
    ours, theirs = PathResults(), PathResults()
    if not args.no_warmup:
        print("  warm-up (2 steps each, not counted)", flush=True)
        run_ours(runtime, args.size, 2, args.device)
        run_diffusers(pipe, args.size, 2, args.device)
    for index in range(args.repeats):
        order = ((ours, run_ours, runtime), (theirs, run_diffusers, pipe))
        for results, fn, target in (order if index % 2 == 0 else order[::-1]):
            run = fn(target, args.size, args.steps, args.device)
            results.runs.append(run)
            name = "ours" if results is ours else "diffusers"
            steps = ", ".join(f"{t:.3f}" for t in run.step_times)
            print(f"  run {index + 1} {name:9s} total {run.total_s:6.2f} s  steps 2..n: {steps}", flush=True)
    diff = pixel_difference(ours.runs[-1].image, theirs.runs[-1].image)
    print(f"  max |pixel difference| ours vs diffusers, last run: {diff:.0f} / 255")
    return ours, theirs


def print_generation_table(args: argparse.Namespace, ours: PathResults, theirs: PathResults) -> None:
    print(f"\ntxt2img {args.size}x{args.size}, {args.steps} steps Euler (model sigmas), CFG {CFG_SCALE}, batch 1, "
          f"{args.device}, {args.repeats} runs each, alternating")
    header = f"{'metric (median)':44s} {'ours':>10s} {'diffusers':>10s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    rows = [
        ("per-step s (steps 2..n, all runs)", median(ours.steps()), median(theirs.steps())),
        ("first step end s (incl. prompt encode)", ours.column("before_first_step_end_s"),
         theirs.column("before_first_step_end_s")),
        ("after last step s (VAE decode, to PIL)", ours.column("after_last_step_s"),
         theirs.column("after_last_step_s")),
        ("total call s", ours.column("total_s"), theirs.column("total_s")),
        ("extra RSS during call MiB", ours.column("extra_rss_mib"), theirs.column("extra_rss_mib")),
    ]
    for label, a, b in rows:
        ratio = a / b if b else float("nan")
        print(f"{label:44s} {a:10.3f} {b:10.3f} {ratio:7.3f}")
    ratio = median(ours.steps()) / median(theirs.steps())
    verdict = "OK" if ratio <= 1.05 else "SLOWER than target"
    print(f"RATIO ours/diffusers per-step: {ratio:.3f} (target <= 1.05: {verdict})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256, help="width = height in pixels (multiple of 8)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="generation runs per path")
    parser.add_argument("--load-repeats", type=int, default=3, help="checkpoint loads per path (0 skips)")
    parser.add_argument("--device", default="cpu", help="cpu (fp32) or cuda (fp16)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--load-child", choices=("ours", "diffusers"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.load_child:
        print(json.dumps(load_child(args.load_child, args.device)))
        return
    ensure_checkpoint()
    ensure_diffusers_config()
    print(f"machine: {machine_summary()}")
    print(f"checkpoint: {CHECKPOINT_PATH} ({CHECKPOINT_PATH.stat().st_size / 2**30:.2f} GiB, fp16, random weights)")
    loads = bench_loading(args.load_repeats, args.device) if args.load_repeats > 0 else None
    generation = None if args.skip_generation else bench_generation(args)
    if loads:
        print_load_table(loads)
    if generation:
        print_generation_table(args, *generation)
    print(f"\nmachine at end: {machine_summary()}")


if __name__ == "__main__":
    main()
