"""Soak + fault run: N random valid API jobs with interrupts, skips, refreshes and bad inputs, then kill -9 rounds.

    .venv/bin/python bench/soak.py --jobs 1000 [--kill-rounds 20] [--skip-jobs]

Starts app.py (--api --nowebui, demo model, 64 px) in a temporary folder, samples the server's RSS, and prints:
load held (jobs done, 5xx count, RSS before/after warm-up), faults survived, bad inputs tried. Then the kill rounds
(bench/soak_kills.py): the server is killed with SIGKILL while it rewrites its files, restarted, and every file
checked; printed: rounds, kills that landed inside a write, unreadable files, acknowledged writes lost.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak_kills import kill_rounds  # noqa: E402
from tests.api.server import start_server, write_demo_lora  # noqa: E402

WORDS = ("a red circle", "blue square", "(green:1.2) triangle", "[yellow|purple] star", "[red:blue:0.5] dot",
         "masterpiece, 1girl", "a cat BREAK a dog", "\\(escaped\\)")
BAD_INPUTS = (
    {"steps": 0}, {"width": 63}, {"sampler_name": "No Such Sampler"}, {"seed": 2**70}, {"s_noise": float("inf")},
    {"prompt": "x" * 2_000_000}, {"prompt": "(" * 5000 + "a"}, {"prompt": "a\ud800b"}, {"cfg_scale": -5},
    {"batch_size": 0}, {"override_settings": {"sd_model_checkpoint": "missing.safetensors"}},
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def random_job(rng: random.Random) -> dict:
    prompt = ", ".join(rng.sample(WORDS, rng.randint(1, 3)))
    if rng.random() < 0.3:
        prompt += f" <lora:soak-lora:{rng.choice([0.5, 1, -1])}>"
    return {"prompt": prompt, "negative_prompt": rng.choice(["", "blurry", "(ugly:1.3)"]),
            "seed": rng.randint(0, 2**32), "width": 64, "height": 64, "steps": rng.randint(2, 4),
            "batch_size": rng.randint(1, 2),
            "sampler_name": rng.choice(["Euler", "Euler a", "DPM++ 2M", "DDIM"]), "cfg_scale": rng.uniform(1, 9)}


def soak(url: str, pid: int, jobs: int, rng: random.Random) -> dict:
    counts: dict[str, float] = {"jobs": 0, "5xx": 0, "other_errors": 0, "bad_inputs": 0, "bad_input_5xx": 0,
                                "interrupts": 0, "skips": 0, "refreshes": 0, "option_writes": 0}
    rss: list[int] = []
    durations: list[float] = []
    session = requests.Session()
    for index in range(jobs):
        roll = rng.random()
        if roll < 0.05:
            body = {**random_job(rng), **rng.choice(BAD_INPUTS)}
            # json.dumps writes Infinity and escapes lone surrogates as \ud800, as a hostile client would
            answer = session.post(url + "/sdapi/v1/txt2img", data=json.dumps(body),
                                  headers={"Content-Type": "application/json"}, timeout=300)
            counts["bad_inputs"] += 1
            counts["bad_input_5xx"] += answer.status_code >= 500
            counts["5xx"] += answer.status_code >= 500
            continue
        if roll < 0.10:
            path = rng.choice(["/refresh-loras", "/refresh-checkpoints", "/refresh-vae"])
            counts["5xx"] += session.post(url + "/sdapi/v1" + path, timeout=60).status_code >= 500
            counts["refreshes"] += 1
        elif roll < 0.13:
            value = rng.choice(["Original", "No norm"])
            counts["5xx"] += session.post(url + "/sdapi/v1/options", json={"emphasis": value},
                                          timeout=60).status_code >= 500
            counts["option_writes"] += 1
        body = random_job(rng)
        action = None
        if roll > 0.94:
            action = "interrupt"
            body["steps"], body["batch_size"] = 20, 2
        elif roll > 0.90:
            action = "skip"
            body["steps"], body["batch_size"] = 10, 2
        timer = None
        if action:
            timer = threading.Timer(0.2, lambda a=action: requests.post(f"{url}/sdapi/v1/{a}", timeout=30))
            timer.start()
            counts["interrupts" if action == "interrupt" else "skips"] += 1
        started = time.perf_counter()
        answer = session.post(url + "/sdapi/v1/txt2img", json=body, timeout=300)
        durations.append(time.perf_counter() - started)
        if timer:
            timer.join()
        counts["jobs"] += 1
        counts["5xx"] += answer.status_code >= 500
        counts["other_errors"] += 400 <= answer.status_code < 500
        if index % 10 == 0:
            rss.append(rss_kib(pid))
        if index % 100 == 0:
            print(f"  {index}/{jobs} jobs, rss {rss[-1] // 1024 if rss else 0} MiB, 5xx {counts['5xx']}", flush=True)
    warm = rss[len(rss) // 10] if len(rss) > 10 else (rss[0] if rss else 0)
    counts.update(rss_warm_mib=round(warm / 1024, 1), rss_end_mib=round(rss[-1] / 1024, 1) if rss else 0,
                  rss_growth_pct=round(100 * (max(rss[len(rss) // 10:]) - warm) / warm, 1) if warm else 0,
                  median_job_s=round(statistics.median(durations), 3) if durations else 0)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--kill-rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-jobs", action="store_true", help="only the kill -9 rounds")
    parser.add_argument("--kill-api-only", action="store_true",
                        help="kill an API-only server (faster starts; styles and sidecars are then not written)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    started = time.perf_counter()
    counts: dict = {}
    if not args.skip_jobs:
        counts.update(load_and_one_kill(root, args.jobs, rng))
    counts.update(kill_rounds(args.kill_rounds, rng, root, with_ui=not args.kill_api_only))
    counts["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(counts, indent=1))
    lost = counts["unreadable"] + counts["acked_write_lost"] + counts["not_loaded"]
    if not args.skip_jobs:
        print(f"load held: {counts['jobs']} jobs, {counts['5xx']} 5xx, RSS {counts['rss_warm_mib']} -> "
              f"{counts['rss_end_mib']} MiB after warm-up (+{counts['rss_growth_pct']} %); faults survived: "
              f"{counts['interrupts']} interrupts, {counts['skips']} skips, {counts['refreshes']} refreshes; "
              f"bad inputs tried: {counts['bad_inputs']} ({counts['bad_input_5xx']} answered 5xx)")
    print(f"kill -9 of the server while writing: {counts['kill_rounds']} rounds, {counts['kills_mid_write']} landed "
          f"inside a write ({counts['files_mid_write']}); unreadable files {counts['unreadable']}, acknowledged "
          f"writes lost {counts['acked_write_lost']}, files not loaded {counts['not_loaded']}")
    return 0 if counts.get("5xx", 0) == 0 and lost == 0 else 1


def load_and_one_kill(root: Path, jobs: int, rng: random.Random) -> dict:
    """The job soak on an API-only server, then one kill -9 right after an options write and a restart."""
    write_demo_lora(root / "lora" / "soak-lora.safetensors")
    server = start_server(root, "--api", "--nowebui")
    try:
        counts = soak(server.url, server.process.pid, jobs, rng)
        counts["server_alive"] = server.process.poll() is None
        requests.post(server.url + "/sdapi/v1/options", json={"default_steps": 17}, timeout=60)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
    finally:
        server.stop()
    restarted = start_server(root, "--api", "--nowebui")
    try:
        steps = requests.get(restarted.url + "/sdapi/v1/options", timeout=60).json()["default_steps"]
        counts["server_restart_kept_options"] = steps == 17
    finally:
        restarted.stop()
    return counts


if __name__ == "__main__":
    sys.exit(main())
