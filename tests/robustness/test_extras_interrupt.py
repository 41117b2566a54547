"""/interrupt stops a big Extras upscale (single image or batch) within about a second."""
from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tests.robustness.test_interrupt_latency import LIMIT_S


def _encoded(seed: int, side: int = 768) -> str:
    array = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()


def _interrupt_while_running(client, robust_runtime, route: str, body: dict) -> tuple[object, float]:
    """Post `body`, press /interrupt once the job has been in the upscaler a moment; (answer, seconds it ran on)."""
    answers: list = []
    worker = threading.Thread(target=lambda: answers.append(client.post(route, json=body)))
    worker.start()
    deadline = time.monotonic() + 60
    while robust_runtime.queue.current is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert robust_runtime.queue.current is not None, "the extras job never started"
    time.sleep(0.3)  # into the model's tiles (a 768 px picture x4 is ~25 tiles of ~0.1 s each)
    pressed = time.monotonic()
    assert client.post("/sdapi/v1/interrupt").status_code == 200
    worker.join(120)
    assert answers, "no answer"
    return answers[0], time.monotonic() - pressed


@pytest.fixture(scope="module")
def pictures() -> list[str]:
    return [_encoded(seed) for seed in range(3)]


def test_interrupt_stops_a_big_single_image_upscale(client, robust_runtime, pictures):
    body = {"image": pictures[0], "upscaler_1": "slow-x4", "upscaling_resize": 4}
    answer, ran_on = _interrupt_while_running(client, robust_runtime, "/sdapi/v1/extra-single-image", body)
    assert ran_on <= LIMIT_S, f"the upscale ran {ran_on:.2f}s after /interrupt"
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["image"] is None
    assert "Interrupted" in answer.json()["html_info"]


def test_interrupt_stops_a_big_batch_upscale(client, robust_runtime, pictures):
    body = {"imageList": [{"data": data, "name": f"{index}.png"} for index, data in enumerate(pictures)],
            "upscaler_1": "slow-x4", "upscaling_resize": 4}
    answer, ran_on = _interrupt_while_running(client, robust_runtime, "/sdapi/v1/extra-batch-images", body)
    assert ran_on <= LIMIT_S, f"the batch ran {ran_on:.2f}s after /interrupt"
    assert answer.status_code == 200, answer.text[:300]
    assert len(answer.json()["images"]) < len(pictures)
    assert "Interrupted" in answer.json()["html_info"]
    # The queue serves again: a small upscale right after is whole.
    small = client.post("/sdapi/v1/extra-single-image", json={"image": _encoded(9, 32), "upscaler_1": "slow-x4"})
    assert small.status_code == 200 and small.json()["image"]
