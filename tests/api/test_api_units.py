"""In-process checks of the API's building blocks: credentials, body-size limit, image decoding, error shape."""
from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from webui.api import errors as api_errors
from webui.api.auth import parse_credentials
from webui.api.images import decode_image, encode_png
from webui.api.server import api_only_app, build_api_router
from webui.paths import Folders
from webui.processing.png_info import read_png_parameters
from webui.processing.runtime import build_runtime


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-units")
    folders = Folders(checkpoints=root / "ckpt", vae=root / "vae", lora=(root / "lora",), embeddings=root / "emb",
                      outputs=root / "out", data=root)
    runtime = build_runtime(folders, hashing=False)
    return TestClient(api_only_app(build_api_router(runtime, {"flag": 1}, {"u": "p:q"})))


def test_credentials_parse_and_reject_malformed_entries():
    assert parse_credentials("a:b, c:d:e") == {"a": "b", "c": "d:e"}
    assert parse_credentials(None) == {}
    with pytest.raises(ValueError, match="user:pass"):
        parse_credentials("nocolon")
    with pytest.raises(ValueError):
        parse_credentials(":pass")


def test_oversized_body_is_413_before_it_is_read(client, monkeypatch):
    monkeypatch.setattr(api_errors, "MAX_BODY_BYTES", 1000)
    response = client.post("/sdapi/v1/png-info", json={"image": "A" * 2000}, auth=("u", "p:q"))
    assert response.status_code == 413 and response.json()["error"] == "PayloadTooLarge"
    assert "X-Process-Time" in response.headers


def test_auth_and_error_shape(client):
    assert client.get("/sdapi/v1/cmd-flags").status_code == 401
    assert client.get("/sdapi/v1/cmd-flags", auth=("u", "p")).status_code == 401
    assert client.get("/sdapi/v1/cmd-flags", auth=("u", "p:q")).json() == {"flag": 1}
    response = client.post("/sdapi/v1/txt2img", json={"steps": [1]}, auth=("u", "p:q"))
    body = response.json()
    assert response.status_code == 422 and set(body) == {"error", "detail", "body", "errors"}
    assert "steps" in body["detail"] and body["errors"][0]["loc"] == ["body", "steps"]


def test_txt2img_without_any_checkpoint_is_a_400_not_a_500(client):
    response = client.post("/sdapi/v1/txt2img", json={"width": 64, "height": 64, "steps": 1}, auth=("u", "p:q"))
    assert response.status_code == 400 and "No checkpoint" in response.json()["detail"]


def test_decode_accepts_bare_and_data_url_and_refuses_urls():
    buffer = io.BytesIO()
    Image.new("RGB", (5, 3), (1, 2, 3)).save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    assert decode_image(data).size == (5, 3)
    assert decode_image("data:image/png;base64," + data).getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(api_errors.ApiError) as caught:
        decode_image("http://example.invalid/x.png")
    assert caught.value.status == 422


def test_encoded_png_carries_infotext_and_extra_chunks():
    encoded = encode_png(Image.new("RGB", (4, 4)), "a cat\nSteps: 1, Seed: 2, Size: 4x4", {"postprocessing": "x"})
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    infotext, items = read_png_parameters(image)
    assert infotext == "a cat\nSteps: 1, Seed: 2, Size: 4x4" and items["postprocessing"] == "x"
