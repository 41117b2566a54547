"""The one device check: gpu tests, txt2img and LoRA ours vs diffusers, fast paths; writes device-report.md + JSON.

Run through bench/device/run.sh (which installs what a bare GPU image lacks); `--device cpu --quick` rehearses
the same code with tiny shapes. Every section runs under a shared deadline and records its own error, so one
failure or a slow section never costs the rest of the report.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.common import machine_summary  # noqa: E402  (sets the offline switches first)
from bench.device import workloads as w  # noqa: E402
from bench.device.report import write_report  # noqa: E402
from webui.files import atomic_write_text  # noqa: E402
from webui.models.device import device_config  # noqa: E402

# Fast-path variants of the UNet on a GPU: flag text → device_config keyword arguments.
GPU_VARIANTS: dict[str, dict[str, Any]] = {
    "default (--precision autocast, SDPA)": {},
    "--precision half": {"precision": "half"},
    "--precision bf16": {"precision": "bf16"},
    "--upcast-sampling": {"upcast_sampling": True},
    "--opt-channelslast": {"channels_last": True},
    "--opt-sdp-no-mem-attention": {"attention": "sdpa-no-mem"},
    "--disable-opt-split-attention": {"attention": "classic"},
    "--medvram": {"medvram": True},
    "--lowvram": {"lowvram": True},
}
CPU_VARIANTS: dict[str, dict[str, Any]] = {
    "default (SDPA)": {},
    "--opt-channelslast": {"channels_last": True},
    "--disable-opt-split-attention": {"attention": "classic"},
}


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def save(figures: dict, out: Path) -> None:
    """The JSON after every part, so a run stopped from outside still leaves the figures measured so far."""
    atomic_write_text(out / "device-figures.json", json.dumps(figures, indent=2, default=str) + "\n")


def section(figures: dict, key: str, deadline: Deadline, needs_s: float, fn: Callable[[], Any]) -> None:
    """Run one part of the check; record its figures, or why it was skipped or failed, under `key`."""
    if deadline.left() < needs_s:
        figures[key] = {"skipped": f"not enough time left ({deadline.left():.0f} s < {needs_s:.0f} s)"}
        print(f"[{key}] skipped: time", flush=True)
        return
    started = time.perf_counter()
    print(f"[{key}] ...", flush=True)
    try:
        figures[key] = fn()
    except Exception as error:  # one failing part must not cost the others
        figures[key] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-4000:]}
        print(figures[key]["traceback"], flush=True)
    if isinstance(figures[key], dict):
        figures[key]["section_s"] = round(time.perf_counter() - started, 2)
    print(f"[{key}] done in {time.perf_counter() - started:.1f} s", flush=True)
    w.free_memory()
    save(figures, figures["out"])


def run_subprocess(command: list[str], timeout: float, log: Path) -> dict:
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        output, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as expired:
        partial = [text if isinstance(text, str) else "" for text in (expired.stdout, expired.stderr)]
        output, code = "".join(partial) + f"\nTIMEOUT after {timeout:.0f} s", -1
    log.write_text(output, encoding="utf-8")
    tail = [line for line in output.strip().splitlines() if line.strip()][-1:] or [""]
    return {"command": " ".join(command), "returncode": code, "summary": tail[0], "log": log.name,
            "seconds": round(time.perf_counter() - started, 1)}


def gpu_test_files() -> list[str]:
    """The test modules that hold gpu-marked tests: collecting only those keeps the UI's packages (gradio,
    playwright …), which a bare GPU image lacks, out of the collection."""
    return sorted(str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("test_*.py")
                  if "mark.gpu" in path.read_text(encoding="utf-8", errors="replace"))


def gpu_tests(out: Path, timeout: float) -> dict:
    result = run_subprocess([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
                             f"--junitxml={out / 'gpu-tests.xml'}", *gpu_test_files()], timeout,
                            out / "gpu-tests.log")
    result["files"] = gpu_test_files()
    return result


def train_step(device: str, quick: bool, out: Path, timeout: float) -> dict:
    script = REPO / "bench" / "train_step.py"
    if not script.is_file():
        return {"skipped": "bench/train_step.py is not in this tree"}
    usage = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True)
    command = [sys.executable, str(script)]
    if "--device" in usage.stdout:
        command += ["--device", device]
    if quick and "--quick" in usage.stdout:
        command.append("--quick")
    return run_subprocess(command, timeout, out / "train-step.log")


def family_section(shape: w.Shape, config, workdir: Path, bandwidth: float, with_diffusers: bool) -> dict:
    """Build one family's random model once, then txt2img and LoRA ours vs diffusers on it."""
    build_s, components = w.timed(config.device, lambda: w.build_components(shape, config))
    name = f"bench-{shape.arch_name}"
    runtime = w.runtime_with(components, config, workdir / shape.arch_name, name)
    pipe = w.diffusers_pipeline(components) if with_diffusers else None
    result: dict[str, Any] = {"shape": shape.label, "build_s": build_s,
                              "unet_params_m": sum(p.numel() for p in components.unet.parameters()) / 1e6}
    result["txt2img"] = w.txt2img_figures(runtime, pipe, shape, config.device, name)
    result["lora"] = w.lora_figures(components, pipe, shape, config.device, bandwidth, shape.repeats)
    result["vae_decode"] = w.vae_figures(components, shape, config)
    return result


def _variant(shape: w.Shape, device: str, options: dict[str, Any], workdir: Path) -> dict:
    config = device_config(device=device, **options)
    try:
        components = w.build_components(shape, config)
        runtime = w.runtime_with(components, config, workdir / "variants", "bench-variant")
        step, peak = w.per_step(runtime, shape, config.device, "bench-variant")
        return {"per_step_s": step, "it_s": 1.0 / step, "peak_vram_mib": peak,
                "dtype": str(config.dtype).removeprefix("torch."), "offload": config.offload}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        w.free_memory()


def _compiled(shape: w.Shape, device: str, workdir: Path) -> dict:
    backend = "eager" if device == "cpu" else "inductor"
    try:
        return w.compile_figures(shape, device_config(device=device), workdir, backend)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-3000:]}
    finally:
        w.free_memory()


def fast_paths_section(shape: w.Shape, device: str, quick: bool, workdir: Path, deadline: Deadline) -> dict:
    """The default first, then --compile (an acceptance target, so it goes before the other variants when time
    is short), then each other flag; every figure is also given as a ratio to the default."""
    variants = CPU_VARIANTS if device == "cpu" else GPU_VARIANTS
    base = next(iter(variants))
    results: dict[str, Any] = {"shape": shape.label, "size": shape.size, "steps": shape.steps}
    results[base] = _variant(shape, device, variants[base], workdir)
    compile_needs = 30 if quick else 100
    results["--compile"] = (_compiled(shape, device, workdir) if deadline.left() > compile_needs
                            else {"skipped": f"time ({deadline.left():.0f} s left < {compile_needs} s)"})
    for label, options in list(variants.items())[1:]:
        enough = deadline.left() >= (10 if quick else 25)
        results[label] = _variant(shape, device, options, workdir) if enough else {"skipped": "time"}
    if "per_step_s" in results[base]:
        for row in results.values():
            if isinstance(row, dict) and "per_step_s" in row:
                row["vs_default"] = row["per_step_s"] / results[base]["per_step_s"]
    return results


def quiet_libraries() -> None:
    """Their load reports and deprecation notes (PEFT layers, scheduler configs) would bury the figures."""
    import warnings

    import diffusers.utils.logging
    import transformers.utils.logging

    warnings.simplefilter("ignore", FutureWarning)
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def environment(device: str) -> dict:
    import diffusers
    import transformers

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "diffusers": diffusers.__version__, "transformers": transformers.__version__,
                            "machine": machine_summary(), "device": device}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["vram_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                        text=True).stdout.strip() or None
    except OSError:
        info["commit"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for device-report.md, device-figures.json and logs")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one repeat: a rehearsal, not figures")
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting new parts after this long")
    parser.add_argument("--skip-tests", action="store_true", help="do not run `pytest -m gpu`")
    parser.add_argument("--skip-diffusers", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible to torch: use --device cpu --quick for a rehearsal", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(args.budget_s)
    quiet_libraries()
    if args.quick and args.device == "cpu":
        torch.set_num_threads(1)  # tiny shapes: one thread is as fast, and far faster on a shared machine
    torch.set_grad_enabled(False)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # what the WebUI user gets for fp32 work as well
    figures: dict[str, Any] = {"environment": environment(args.device), "quick": args.quick, "out": args.out,
                               "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}
    if not args.skip_tests:
        section(figures, "gpu_tests", deadline, 60, lambda: gpu_tests(args.out, min(180.0, deadline.left() / 3)))
    device = torch.device(args.device)
    figures["copy_bandwidth_gb_s"] = w.copy_bandwidth(device, 64 if args.quick else 2048) / 1e9
    bandwidth = figures["copy_bandwidth_gb_s"] * 1e9
    all_shapes = w.shapes(args.quick)
    with tempfile.TemporaryDirectory(prefix="device-bench-") as scratch:
        workdir = Path(scratch)
        config = device_config(device=args.device)
        for shape, needs in zip(all_shapes, (40, 120), strict=True):
            section(figures, f"family {shape.arch_name}", deadline, 10 if args.quick else needs,
                    partial(family_section, shape, config, workdir, bandwidth, not args.skip_diffusers))
        section(figures, "fast_paths", deadline, 15 if args.quick else 60,
                lambda: fast_paths_section(all_shapes[0], args.device, args.quick, workdir, deadline))
    section(figures, "train_step", deadline, 10 if args.quick else 45,
            lambda: train_step(args.device, args.quick, args.out, max(30.0, min(120.0, deadline.left()))))
    figures["total_s"] = round(args.budget_s - deadline.left(), 1)
    save(figures, args.out)
    write_report(figures, args.out / "device-report.md")
    print(f"wrote {args.out / 'device-report.md'} and {args.out / 'device-figures.json'}")
    failed = [key for key, value in figures.items() if isinstance(value, dict) and "error" in value]
    if os.environ.get("DEVICE_BENCH_STRICT") and failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
