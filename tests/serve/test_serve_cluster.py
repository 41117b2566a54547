"""Two Ray Serve replicas on the demo model: bit-identical images, LoRA-aware routing, a replica killed mid-run."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from safetensors.torch import load_file, save_file

from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from tests.helpers.demo_fixtures import one_thread  # noqa: F401  (the twins run on one thread, as each replica)
from tests.networks.tiny import kohya_lora, lora_targets
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img

ray = pytest.importorskip("ray", reason="Ray Serve is the optional extra in requirements-serve.txt")
serve = pytest.importorskip("ray.serve")
webuiapi = pytest.importorskip("webuiapi")

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
STACKS = ("<lora:ink:0.8>", "<lora:dots:0.6>", "<lora:ink:0.5> <lora:dots:-0.4>", "")
SEEDS = (11, 12, 13, 14, 15)
WAIT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    runtime = demo_runtime(DEFAULT_CHECKPOINT, root)  # its LoRA folder is root / "Lora", as the replicas' is
    names = runtime.models.load().lora_names()
    (root / "Lora").mkdir()
    for seed, stem in ((1, "ink"), (2, "dots")):
        tensors = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=seed)
        save_file({k: v * 5 for k, v in tensors.items()}, str(root / "Lora" / f"{stem}.safetensors"))
    return root


@pytest.fixture(scope="module")
def cluster(folders):
    port = _free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()
    ray.shutdown()


def _deploy(folders: Path, name: str, multiplex: bool) -> None:
    from webui.serve.cli import build_app, build_parser

    argv = ["--ckpt-dir", str(DEFAULT_CHECKPOINT.parent), "--lora-dir", str(folders / "Lora"), "--device", "cpu",
            "--data-dir", str(folders / name), "--no-hashing", "--replicas", "2", "--torch-threads", "1",
            "--vae-dir", str(folders / "VAE"), "--embeddings-dir", str(folders / "embeddings")]
    if not multiplex:
        argv.append("--no-multiplex")
    running = serve.status().applications
    if name in running and running[name].status == "RUNNING":
        return  # the previous test's deployment, still healthy
    for other in running:
        serve.delete(other)
    serve.run(build_app(build_parser().parse_args(argv), argv, name), name=name, route_prefix="/")


def _fields(stack: str, seed: int, steps: int = 3) -> dict:
    return dict(prompt=f"a red circle {stack}".strip(), negative_prompt="", steps=steps, sampler_name="Euler",
                cfg_scale=7.0, width=64, height=64, seed=seed)


def _stream() -> list[tuple[str, int]]:
    return [(stack, seed) for seed in SEEDS for stack in STACKS]  # 20 requests, 4 distinct stacks


def _via_api(port: int, stack: str, seed: int) -> np.ndarray:
    result = webuiapi.WebUIApi(host="127.0.0.1", port=port).txt2img(**_fields(stack, seed))
    return np.asarray(result.image)


def _merges(port: int) -> dict[str, int]:
    stats = requests.get(f"http://127.0.0.1:{port}/serve/stats", timeout=30).json()
    return {replica: entry["lora_merges"] for replica, entry in stats.items()}


def _run_stream(port: int) -> dict[tuple[str, int], np.ndarray]:
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = {item: pool.submit(_via_api, port, *item) for item in _stream()}
        return {item: future.result(timeout=WAIT_S) for item, future in futures.items()}


def test_twenty_concurrent_requests_match_single_process_and_stick_to_their_stack(folders, cluster):
    twin = demo_runtime(DEFAULT_CHECKPOINT, folders)
    expected = {item: np.asarray(txt2img(make_request(Txt2ImgRequest, {**_fields(*item), "save_images": False}),
                                         twin).images[0]) for item in _stream()}

    _deploy(folders, "round-robin", multiplex=False)
    round_robin_images = _run_stream(cluster)
    round_robin = _merges(cluster)
    _deploy(folders, "multiplexed", multiplex=True)
    images = _run_stream(cluster)
    multiplexed = _merges(cluster)
    print(f"\nLoRA re-merges per replica over 20 requests / {len(STACKS)} stacks: "
          f"multiplexed {sorted(multiplexed.values())}, round-robin {sorted(round_robin.values())}")

    for item in expected:
        assert np.array_equal(images[item], expected[item]), item
        assert np.array_equal(round_robin_images[item], expected[item]), item
    assert len(multiplexed) == 2 and len(round_robin) == 2  # both replicas served
    assert max(multiplexed.values()) <= len(STACKS) + 2
    assert sum(multiplexed.values()) < sum(round_robin.values())


def test_options_and_refresh_reach_every_replica(folders, cluster):
    _deploy(folders, "multiplexed", multiplex=True)
    api = f"http://127.0.0.1:{cluster}/sdapi/v1"
    assert requests.get(f"{api}/options", timeout=30).json()["samples_format"] != "jpg"
    assert requests.post(f"{api}/options", json={"samples_format": "jpg"}, timeout=30).status_code == 200
    save_file({k: v.clone() for k, v in load_file(str(folders / "Lora" / "ink.safetensors")).items()},
              str(folders / "Lora" / "fresh.safetensors"))
    assert requests.post(f"{api}/refresh-loras", timeout=30).status_code == 200
    # Each GET lands on a replica the router picks: every answer must already carry the change.
    for _ in range(8):
        assert requests.get(f"{api}/options", timeout=30).json()["samples_format"] == "jpg"
        assert "fresh" in [lora["name"] for lora in requests.get(f"{api}/loras", timeout=30).json()]
    (folders / "Lora" / "fresh.safetensors").unlink()
    assert requests.post(f"{api}/options", json={"samples_format": "png"}, timeout=30).status_code == 200


def _busy_replica_pid(port: int) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        stats = requests.get(f"http://127.0.0.1:{port}/serve/stats", timeout=30).json()
        busy = [entry["pid"] for entry in stats.values() if entry.get("running")]
        if busy:
            return busy[0]
        time.sleep(0.1)
    raise AssertionError("no replica started a generation")


def _job_count(api: str) -> int:
    return requests.get(f"{api}/progress", timeout=30).json()["state"]["job_count"]


def _wait_for(condition) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_progress_and_interrupt_reach_the_replica_running_the_job(folders, cluster):
    _deploy(folders, "multiplexed", multiplex=True)
    api = f"http://127.0.0.1:{cluster}/sdapi/v1"
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(requests.post, f"{api}/txt2img", json=_fields(STACKS[0], 3, steps=400), timeout=WAIT_S)
        _busy_replica_pid(cluster)
        _wait_for(lambda: _job_count(api) > 0)
        # Whichever replica the router asks, /progress reports the job running on the other one too.
        assert all(_job_count(api) > 0 for _ in range(6))
        started = time.monotonic()
        assert requests.post(f"{api}/interrupt", timeout=30).status_code == 200
        answer = slow.result()
    assert answer.status_code == 200 and json.loads(answer.json()["info"])["interrupted"] is True
    assert time.monotonic() - started < 30  # 400 steps would take far longer than the interrupt


def test_killed_replica_gives_503_with_retry_after_and_later_requests_succeed(folders, cluster):
    _deploy(folders, "multiplexed", multiplex=True)
    url = f"http://127.0.0.1:{cluster}/sdapi/v1/txt2img"
    with ThreadPoolExecutor(max_workers=4) as pool:
        slow = [pool.submit(requests.post, url, json=_fields(stack, 1, steps=150), timeout=WAIT_S) for stack in STACKS]
        os.kill(_busy_replica_pid(cluster), signal.SIGKILL)
        answers = [future.result() for future in slow]
    codes = [answer.status_code for answer in answers]
    assert 503 in codes and set(codes) <= {200, 503}, codes
    for answer in answers:
        if answer.status_code == 503:
            assert int(answer.headers["Retry-After"]) > 0
            assert answer.json()["error"] == "ServiceUnavailable"
    later = [requests.post(url, json=_fields(stack, 2), timeout=WAIT_S) for stack in STACKS]
    assert [answer.status_code for answer in later] == [200] * len(STACKS)
