"""Peak RSS of the checkpoint merger on a full-size SD1.5 pair vs a load-everything merge, each in its own process.

Usage: nice .venv/bin/python -m bench.merge [--repeat 3] [--no-reference] [--method weighted_sum|add_difference]
Two random-weight fp16 SD1.5 checkpoints (about 2 GB each) are streamed into a temporary folder; each merge runs in a
child process and its peak RSS is read from wait4(), so imports count and nothing else does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# The load-everything way (what A1111 does): all inputs in memory, the result built as a third state dict.
_REFERENCE = """
import sys, torch
from safetensors.torch import load_file, save_file
a, b, out = load_file(sys.argv[1]), load_file(sys.argv[2]), sys.argv[3]
merged = {k: (v.float() * 0.7 + b[k].float() * 0.3).half() if v.is_floating_point() else v for k, v in a.items()}
save_file(merged, out)
"""


def write_random_checkpoint(path: Path, seed: int) -> Path:
    """A full-size SD1.5 single file with seeded N(0, 0.02²) fp16 weights, written one tensor at a time."""
    import torch

    from tests.helpers.components import build_models
    from tests.helpers.tiny_models import tiny_ldm_extras
    from webui.files import atomic_target
    from webui.models.architectures import load_architecture
    from webui.models.ldm_convert import diffusers_to_ldm
    from webui.models.tensor_stream import DTYPE_NAMES, SafetensorsStreamWriter

    arch = load_architecture("sd1")
    meta = {name: model.state_dict() for name, model in build_models(arch, meta=True).items()}
    shapes = {key: tuple(t.shape) for key, t in diffusers_to_ldm(meta, arch).items()}
    extras = tiny_ldm_extras(arch, seed, torch.float16)
    layout = {key: ("F16", shapes[key]) for key in sorted(shapes)}
    layout.update({key: (DTYPE_NAMES[t.dtype], tuple(t.shape)) for key, t in extras.items()})
    generator = torch.Generator().manual_seed(seed)
    with atomic_target(path) as partial, open(partial, "wb") as handle:
        writer = SafetensorsStreamWriter(handle, layout, {"format": "pt"})
        for key, (_, shape) in layout.items():
            tensor = extras[key] if key in extras else (torch.randn(shape, generator=generator) * 0.02).half()
            writer.write(key, tensor)
        writer.finish()
    return path


def run_child(command: list[str]) -> tuple[float, float]:
    """(peak RSS in bytes, wall seconds) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[:4]} failed with exit status {child.returncode}")
    return usage.ru_maxrss * 1024.0, time.perf_counter() - started  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-reference", action="store_true", help="skip the load-everything merge")
    parser.add_argument("--method", choices=("weighted_sum", "add_difference"), default="weighted_sum")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        a = write_random_checkpoint(folder / "a.safetensors", seed=1)
        b = write_random_checkpoint(folder / "b.safetensors", seed=2)
        size = a.stat().st_size
        print(f"wrote two SD1.5 fp16 checkpoints of {size / 2**30:.2f} GiB in {time.perf_counter() - started:.0f} s")
        ours: list[tuple[float, float]] = []
        reference: list[tuple[float, float]] = []
        for index in range(args.repeat):
            out = folder / f"merged{index}.safetensors"
            extra = ["--c", str(a)] if args.method == "add_difference" else []
            ours.append(run_child([sys.executable, "-m", "webui.models.merge", "--a", str(a), "--b", str(b), *extra,
                                   "--method", args.method, "-m", "0.3", "--precision", "fp16", "--out", str(out),
                                   "--quiet"]))
            out.unlink()
            if not args.no_reference:
                reference.append(run_child([sys.executable, "-c", _REFERENCE, str(a), str(b), str(out)]))
                out.unlink()
        peak = statistics.median(rss for rss, _ in ours)
        print(f"streaming merge ({args.method}): median peak RSS {peak / 2**30:.2f} GiB = {peak / size:.2f}x one "
              f"model, median wall {statistics.median(s for _, s in ours):.0f} s over {len(ours)} run(s)")
        if reference:
            ref_peak = statistics.median(rss for rss, _ in reference)
            print(f"load-everything merge: median peak RSS {ref_peak / 2**30:.2f} GiB = {ref_peak / size:.2f}x one "
                  f"model, median wall {statistics.median(s for _, s in reference):.0f} s")
            print(f"ratio streaming / load-everything peak RSS: {peak / ref_peak:.2f}")


if __name__ == "__main__":
    main()
