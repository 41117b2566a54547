"""Ray Serve scale-out on the demo model: throughput of 1 vs 2 replicas, LoRA re-merges multiplexed vs round-robin."""
from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import ray  # noqa: E402
import requests  # noqa: E402
from ray import serve  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from bench.common import machine_summary  # noqa: E402  (sets the offline switches before diffusers is imported)
from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime  # noqa: E402
from tests.networks.tiny import kohya_lora, lora_targets  # noqa: E402
from webui.serve.cli import build_app, build_parser  # noqa: E402

LORA_FILES = 4
STACKS = 20


def write_loras(root: Path) -> None:
    names = demo_runtime(DEFAULT_CHECKPOINT, root).models.load().lora_names()
    (root / "Lora").mkdir(exist_ok=True)
    for seed in range(LORA_FILES):
        tensors = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=seed)
        save_file({k: v * 5 for k, v in tensors.items()}, str(root / "Lora" / f"l{seed}.safetensors"))


def zipf_stream(count: int, exponent: float, seed: int) -> list[str]:
    """`count` prompts over 20 distinct stacks, stack k drawn with probability ∝ 1/k^exponent."""
    stacks = [f"<lora:l{i % LORA_FILES}:{0.2 + 0.15 * (i // LORA_FILES):.2f}>" for i in range(STACKS)]
    weights = [1 / (rank + 1) ** exponent for rank in range(STACKS)]
    return random.Random(seed).choices(stacks, weights, k=count)


def run_config(root: Path, port: int, replicas: int, multiplex: bool, stream: list[str], steps: int) -> dict:
    argv = ["--ckpt-dir", str(DEFAULT_CHECKPOINT.parent), "--lora-dir", str(root / "Lora"), "--device", "cpu",
            "--data-dir", str(root / "data"), "--no-hashing", "--replicas", str(replicas), "--torch-threads", "1",
            "--num-cpus-per-replica", str(2 / replicas)]
    if not multiplex:
        argv.append("--no-multiplex")
    name = f"bench-{replicas}-{'mux' if multiplex else 'rr'}"
    for other in serve.status().applications:
        serve.delete(other)
    serve.run(build_app(build_parser().parse_args(argv), argv, name), name=name, route_prefix="/")
    url = f"http://127.0.0.1:{port}/sdapi/v1/txt2img"
    requests.post(url, json={"prompt": "warm-up", "steps": 1, "width": 64, "height": 64}, timeout=300)

    def one(prompt: str) -> float:
        start = time.perf_counter()
        answer = requests.post(url, json={"prompt": f"a red circle {prompt}", "steps": steps, "width": 64,
                                          "height": 64, "sampler_name": "Euler", "seed": 1}, timeout=600)
        answer.raise_for_status()
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(stream)) as pool:
        latencies = list(pool.map(one, stream))
    wall = time.perf_counter() - start
    stats = requests.get(f"http://127.0.0.1:{port}/serve/stats", timeout=60).json()
    return {"name": name, "wall": wall, "rps": len(stream) / wall, "median": statistics.median(latencies),
            "merges": sorted(entry["lora_merges"] for entry in stats.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--zipf", type=float, default=1.1)
    args = parser.parse_args()
    print(machine_summary())
    stream = zipf_stream(args.requests, args.zipf, seed=7)
    print(f"{len(stream)} requests, {len(set(stream))} distinct stacks of {STACKS} (Zipf s={args.zipf}), "
          f"{args.steps} steps, 64 px, all sent at once")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_loras(root)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}})
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        try:
            rows = [run_config(root, port, 1, True, stream, args.steps),
                    run_config(root, port, 2, True, stream, args.steps),
                    run_config(root, port, 2, False, stream, args.steps)]
        finally:
            serve.shutdown()
            ray.shutdown()
    print(f"{'config':<14} {'wall s':>7} {'req/s':>6} {'median s':>9}  re-merges per replica")
    for row in rows:
        print(f"{row['name']:<14} {row['wall']:7.1f} {row['rps']:6.2f} {row['median']:9.2f}  {row['merges']}")
    print(f"throughput 2 vs 1 replica (multiplexed): {rows[1]['rps'] / rows[0]['rps']:.2f}x; re-merges "
          f"multiplexed {sum(rows[1]['merges'])} vs round-robin {sum(rows[2]['merges'])} (2 replicas)")


if __name__ == "__main__":
    main()
