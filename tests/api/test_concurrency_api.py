"""20 concurrent txt2img requests, with and without a LoRA, each get exactly their own sequential result."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import webuiapi

from tests.api.server import SMALL

pytestmark = pytest.mark.e2e

PLAIN = "a red circle"
WITH_LORA = "a red circle <lora:tinylora:1>"


def _jobs():
    # Pairs share a seed, one with the LoRA and one without, so a mix-up of either seed or LoRA shows.
    return [(700 + index // 2, WITH_LORA if index % 2 else PLAIN) for index in range(20)]


def _run(port, seed, prompt):
    client = webuiapi.WebUIApi(host="127.0.0.1", port=port)  # one session per thread
    result = client.txt2img(prompt=prompt, seed=seed, **SMALL)
    return np.asarray(result.image).copy(), result.image.info["parameters"], result.info


def test_concurrent_requests_match_their_sequential_results(server):
    jobs = _jobs()
    sequential = [_run(server.port, seed, prompt) for seed, prompt in jobs]
    for index in range(0, 20, 2):  # the LoRA really changes the picture for the same seed
        assert not np.array_equal(sequential[index][0], sequential[index + 1][0])
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(_run, server.port, seed, prompt) for seed, prompt in jobs]
        concurrent = [future.result(timeout=300) for future in futures]
    for (seed, prompt), (pixels, text, info), (expected, _, _) in zip(jobs, concurrent, sequential, strict=True):
        assert info["seed"] == seed and f"Seed: {seed}," in text
        assert text.startswith(prompt + "\n")
        assert info["warnings"] == []
        assert np.array_equal(pixels, expected), f"seed {seed} / {prompt!r} differs from its sequential run"
    assert server.process.poll() is None
