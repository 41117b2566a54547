"""SIGTERM while a long job runs: the job is interrupted and the server process is gone within seconds."""
from __future__ import annotations

import signal
import threading
import time

import requests

from tests.api.server import start_server

LONG_JOB = {"prompt": "a red circle", "width": 64, "height": 64, "steps": 400, "sampler_name": "Euler", "n_iter": 4}


def test_sigterm_interrupts_the_running_job_and_the_server_exits(tmp_path):
    server = start_server(tmp_path, "--api", "--nowebui")
    try:
        threading.Thread(target=lambda: requests.post(server.url + "/sdapi/v1/txt2img", json=LONG_JOB, timeout=300),
                         daemon=True).start()
        deadline = time.monotonic() + 120
        while requests.get(server.url + "/sdapi/v1/progress", timeout=30).json()["state"]["sampling_step"] < 2:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(60)
        exited = time.monotonic() - sent
    finally:
        server.stop()
    # The job alone would run for a minute or more; graceful shutdown itself takes up to ~2 s after the interrupt.
    assert exited < 4.0, f"the server took {exited:.1f}s to exit after SIGTERM"
