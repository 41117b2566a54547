"""`POST /sdapi/v1/train/lora` end to end on the demo model: queued with generation, progress, stop, card refresh."""
from __future__ import annotations

import threading
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from scripts.eval_demo_model import demo_runtime
from tests.training.conftest import make_star_dataset
from webui.api.server import build_api_router
from webui.processing.jobs import JobState


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the training run"
        time.sleep(0.05)


@pytest.fixture()
def client_and_runtime(tmp_path, demo_checkpoint):
    runtime = demo_runtime(demo_checkpoint, tmp_path / "rt")
    app = FastAPI()
    app.include_router(build_api_router(runtime))
    return TestClient(app), runtime


def test_api_trains_into_the_lora_library_and_the_card_appears(client_and_runtime, tmp_path):
    client, runtime = client_and_runtime
    data = make_star_dataset(tmp_path / "img", count=2, repeats=1)
    assert [e.name for e in runtime.loras.entries()] == []
    started = client.post("/sdapi/v1/train/lora", json={
        "train_data_dir": str(data), "output_name": "api star", "resolution": 64, "network_dim": 2,
        "learning_rate": 1e-3, "max_train_epochs": 2, "save_every_n_epochs": 1, "seed": 1})
    assert started.status_code == 200, started.text
    _wait_for(lambda: not client.get("/sdapi/v1/train/lora").json()["running"])
    status = client.get("/sdapi/v1/train/lora/progress").json()
    assert status["error"] is None and status["step"] == status["total_steps"] == 4
    assert status["average_loss"] is not None and len(status["saved"]) == 2
    assert {e.name for e in runtime.loras.entries()} == {"api star-000001", "api star"}
    assert runtime.loras.info("api star").user.activation_text == "zkstar"


def test_bad_options_are_a_400_and_the_app_keeps_serving(client_and_runtime, tmp_path):
    client, _ = client_and_runtime
    response = client.post("/sdapi/v1/train/lora", json={"train_data_dir": str(tmp_path), "network_dimm": 4})
    assert response.status_code in (400, 422) and "network_dimm" in response.text
    response = client.post("/sdapi/v1/train/lora", json={"train_data_dir": str(tmp_path), "output_dir": "/etc"})
    assert response.status_code == 400 and "outside" in response.text
    (tmp_path / "empty").mkdir()
    client.post("/sdapi/v1/train/lora", json={"train_data_dir": str(tmp_path / "empty"), "resolution": 64})
    _wait_for(lambda: not client.get("/sdapi/v1/train/lora").json()["running"])
    assert "No data found" in client.get("/sdapi/v1/train/lora").json()["error"]


def test_generation_waits_in_the_queue_while_training_and_stop_saves_a_state(client_and_runtime, tmp_path):
    client, runtime = client_and_runtime
    data = make_star_dataset(tmp_path / "img", count=2, repeats=50)
    client.post("/sdapi/v1/train/lora", json={"train_data_dir": str(data), "output_name": "long", "resolution": 64,
                                              "network_dim": 2, "learning_rate": 1e-3, "max_train_epochs": 5})
    _wait_for(lambda: client.get("/sdapi/v1/train/lora").json()["phase"] == "training")
    generation = JobState()
    done = threading.Event()
    threading.Thread(target=lambda: runtime.queue.run(generation, done.set), daemon=True).start()
    _wait_for(lambda: runtime.queue.position(generation) == 1)
    assert not done.is_set()
    assert client.post("/sdapi/v1/train/lora/stop").json() == {"stopping": True}
    assert done.wait(60)
    _wait_for(lambda: not client.get("/sdapi/v1/train/lora").json()["running"])
    status = client.get("/sdapi/v1/train/lora").json()
    assert status["state"] and status["state"].endswith("long-state") and status["step"] < status["total_steps"]
