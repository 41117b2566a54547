"""Progress with a live preview, interrupt and skip, on long generations run through the real server."""
from __future__ import annotations

import base64
import io
import threading
import time

import pytest
import webuiapi
from PIL import Image

pytestmark = pytest.mark.e2e

LONG = dict(width=64, height=64, steps=150, sampler_name="Euler", n_iter=2)


def _start(server, **fields):
    client = webuiapi.WebUIApi(host="127.0.0.1", port=server.port)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=client.txt2img(**fields)))
    thread.start()
    return thread, outcome


def _wait_for(api, predicate, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = api.get_progress()
        if predicate(progress):
            return progress
        time.sleep(0.05)
    raise AssertionError(f"progress never matched; last: {progress}")


def test_interrupt_during_a_long_generation_keeps_finished_images(api, server):
    started = time.monotonic()
    thread, outcome = _start(server, prompt="a red circle", seed=10, **LONG)
    _wait_for(api, lambda p: p["state"]["job_no"] == 1)
    first_image_took = time.monotonic() - started
    # (sampling_step still shows the first picture's last step until the second one's first step is done)
    progress = _wait_for(api, lambda p: p["state"]["job_no"] == 1 and 10 <= p["state"]["sampling_step"] < 150)
    assert 0.5 < progress["progress"] < 1 and progress["eta_relative"] > 0
    assert progress["state"]["job_count"] == 2 and progress["state"]["sampling_steps"] == 150
    preview = Image.open(io.BytesIO(base64.b64decode(progress["current_image"])))
    assert preview.size == (64, 64)
    assert api.session.get(f"{api.baseurl}/progress?skip_current_image=true").json()["current_image"] is None
    interrupted_at = time.monotonic()
    assert api.interrupt() == {}
    thread.join(300)
    # the second picture still had most of its steps to go; stopping must not wait for them
    assert not thread.is_alive() and time.monotonic() - interrupted_at < 0.5 * first_image_took
    result = outcome["result"]
    assert len(result.images) == 1 and result.info["all_seeds"] == [10]
    assert "Seed: 10," in result.images[0].info["parameters"]
    idle = api.get_progress()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0 and idle["current_image"] is None


def test_skip_drops_the_current_image_and_goes_on(api, server):
    thread, outcome = _start(server, prompt="a blue square", seed=20, **LONG)
    _wait_for(api, lambda p: p["state"]["job_no"] == 0 and 2 <= p["state"]["sampling_step"] < 150)
    assert api.skip() == {}
    thread.join(300)
    images = outcome["result"].images
    assert len(images) == 1 and "Seed: 21," in images[0].info["parameters"]
    assert outcome["result"].info["all_seeds"] == [21]  # the seeds of the pictures returned, not of the plan
