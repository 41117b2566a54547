"""Width/height defaults follow the checkpoint: its native size unless the client or Settings chose one."""
from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from webui.api.server import api_only_app, build_api_router
from webui.errors import UserInputError
from webui.models.architectures import architecture_from_sidecar, load_architecture
from webui.paths import Folders
from webui.processing.runtime import build_runtime


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    root = tmp_path_factory.mktemp("size-defaults")
    folders = Folders(checkpoints=DEFAULT_CHECKPOINT.parent, vae=root / "vae", lora=(root / "lora",),
                      embeddings=root / "emb", outputs=root / "out", data=root)
    return build_runtime(folders, hashing=False)


@pytest.fixture(scope="module")
def client(runtime):
    return TestClient(api_only_app(build_api_router(runtime, {}, {})))


def _size(response) -> tuple[int, int]:
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(base64.b64decode(response.json()["images"][0]))) as image:
        return image.size


def test_native_sizes_come_from_the_architecture_configs():
    assert [load_architecture(name).native_size for name in ("sd1", "sd2", "sd2-v", "sdxl")] == [512, 512, 768, 1024]
    demo = architecture_from_sidecar(DEFAULT_CHECKPOINT.with_suffix(".json"))
    assert demo is not None and demo.native_size == 64


def test_api_body_without_a_size_gets_the_models_native_size(client, runtime):
    body = {"prompt": "a red circle on a white background", "steps": 2, "seed": 1}
    assert runtime.default_size() == (64, 64)
    assert _size(client.post("/sdapi/v1/txt2img", json=body)) == (64, 64)
    assert _size(client.post("/sdapi/v1/txt2img", json={**body, "width": 128})) == (128, 64)
    assert _size(client.post("/sdapi/v1/txt2img", json={**body, "width": 96, "height": 128})) == (96, 128)


def test_a_size_chosen_in_settings_wins_over_the_model(client, runtime):
    body = {"prompt": "a blue square on a gray background", "steps": 2, "seed": 2}
    runtime.settings.update({"default_width": 96, "default_height": 0})
    try:
        assert runtime.default_size() == (96, 64)
        assert _size(client.post("/sdapi/v1/txt2img", json=body)) == (96, 64)
    finally:
        runtime.settings.update({"default_width": 0, "default_height": 0})
    with pytest.raises(UserInputError):
        runtime.settings.update({"default_width": 32})
