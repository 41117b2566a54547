"""User mistakes are 4xx answers with A1111's JSON error body, and the server keeps serving."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.api.server import SMALL

pytestmark = pytest.mark.e2e


def _post(api, path, body):
    return api.session.post(f"{api.baseurl}/{path}", json=body)


def _png_b64(size) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _assert_error(response, status, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail"} and body["error"]
    for word in words:
        assert word in str(body["detail"])


def test_unknown_sampler_is_400(api):
    _assert_error(_post(api, "txt2img", {**SMALL, "sampler_name": "Euler Turbo 9000"}), 400, "Euler Turbo 9000")
    _assert_error(_post(api, "txt2img", {"width": 64, "height": 64, "steps": 2, "sampler_index": "nope"}), 400)


def test_malformed_base64_is_422(api):
    _assert_error(_post(api, "png-info", {"image": "this is not base64 %%%"}), 422, "base64")
    not_an_image = base64.b64encode(b"just some bytes").decode()
    _assert_error(_post(api, "png-info", {"image": not_an_image}), 422, "image")


def test_image_too_large_is_413(api):
    _assert_error(_post(api, "png-info", {"image": _png_b64((4100, 8))}), 413, "4100x8")
    _assert_error(_post(api, "png-info", {"image": "data:image/png;base64," + _png_b64((8, 5000))}), 413)
    _assert_error(_post(api, "txt2img", {**SMALL, "width": 8192}), 413, "8192x64")


def test_bad_fields_are_422_with_each_problem_named(api):
    _assert_error(_post(api, "txt2img", {**SMALL, "width": 65}), 422, "width", "multiple of 8")
    _assert_error(_post(api, "txt2img", {**SMALL, "steps": "many"}), 422, "steps")
    _assert_error(_post(api, "txt2img", {**SMALL, "script_name": "x/y/q plot"}), 422, "x/y/q plot", "x/y/z plot")
    _assert_error(_post(api, "txt2img", {**SMALL, "override_settings": {"CLIP_stop_at_last_layers": 40}}), 422)


def test_unknown_checkpoint_in_options_is_400_and_changes_nothing(api):
    before = api.get_options()
    _assert_error(_post(api, "options", {"sd_model_checkpoint": "missing.safetensors"}), 400, "missing.safetensors")
    assert api.get_options() == before


def test_server_keeps_serving_after_errors(api, server):
    for _ in range(3):
        _post(api, "txt2img", {**SMALL, "sampler_name": "bogus"})
        _post(api, "png-info", {"image": "%%%"})
    assert server.process.poll() is None
    assert api.txt2img(prompt="a red circle", seed=1, **SMALL).image.size == (64, 64)
