"""`POST /sdapi/v1/train/lora` (kohya option names as JSON), its progress and Stop."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from webui.processing.runtime import Runtime
from webui.training.service import training_service


def add_training_routes(router: APIRouter, runtime: Runtime) -> None:
    service = training_service(runtime)

    def start(options: dict[str, Any] = Body(..., examples=[{  # noqa: B008 - FastAPI's declaration style
            "train_data_dir": "/data/img", "output_name": "my-lora", "network_dim": 16, "network_alpha": 8,
            "learning_rate": 1e-4, "max_train_epochs": 10, "save_every_n_epochs": 1}])) -> dict[str, Any]:
        return service.start(options)

    def progress() -> dict[str, Any]:
        status = service.status()
        status["queue_position"] = runtime.queue.position(service.job) if service.job is not None else None
        return status

    def stop() -> dict[str, Any]:
        return {"stopping": service.stop()}

    router.add_api_route("/train/lora", start, methods=["POST"])
    router.add_api_route("/train/lora", progress, methods=["GET"])
    router.add_api_route("/train/lora/progress", progress, methods=["GET"])
    router.add_api_route("/train/lora/stop", stop, methods=["POST"])
