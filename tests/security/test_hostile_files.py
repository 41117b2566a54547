"""Malformed, mis-named and linked model files in every scanned folder: listed as broken or skipped, never a 500."""
from __future__ import annotations

import requests

from tests.api.server import SMALL
from tests.security.corpus import SECRET, malformed_files

API = "/sdapi/v1"
BAD_STEMS = [stem for stem in malformed_files() if stem not in ("valid-but-useless", "valid-but-empty", "中文名字")]


def _get(server, path):
    response = requests.get(server.url + API + path, timeout=60)
    assert response.status_code == 200, f"GET {path} answered {response.status_code}: {response.text[:300]}"
    assert SECRET.decode() not in response.text
    return response.json()


def _post(server, path, body):
    return requests.post(server.url + API + path, json=body, timeout=120)


def test_every_list_answers_and_leaves_out_links_and_undecodable_names(hostile_server):
    for path in ("/sd-models", "/sd-vae", "/loras", "/embeddings", "/upscalers"):
        listed = _get(hostile_server, path)
        text = repr(listed)
        assert "link-out" not in text and "bad-" not in text, path
        assert _post(hostile_server, path.replace("/sd-models", "/refresh-checkpoints").replace(
            "/sd-vae", "/refresh-vae").replace("/loras", "/refresh-loras"), {}).status_code in (200, 404, 405)
    names = {model["title"] for model in _get(hostile_server, "/sd-models")}
    assert {"demo-shapes.safetensors", "中文名字.safetensors", "link-in.safetensors"} <= names


def test_broken_loras_are_listed_with_the_reason_and_the_good_one_still_works(hostile_server):
    assert _post(hostile_server, "/refresh-loras", {}).status_code == 200
    loras = {lora["name"]: lora for lora in _get(hostile_server, "/loras")}
    for stem in BAD_STEMS:
        assert stem in loras and loras[stem]["error"], stem
    assert "error" not in loras["good-lora"] and "error" not in loras["link-in"]
    assert "nested too deeply" in loras["deep-json"]["error"]
    assert "__metadata__" in loras["metadata-list"]["error"]
    plain = _post(hostile_server, "/txt2img", {"prompt": "a red circle", "seed": 5, **SMALL})
    with_lora = _post(hostile_server, "/txt2img", {"prompt": "a red circle <lora:good-lora:1>", "seed": 5, **SMALL})
    assert plain.status_code == with_lora.status_code == 200
    assert plain.json()["images"][0] != with_lora.json()["images"][0]  # the good LoRA really changed the picture
    for stem in ("list-header", "metadata-list", "deep-json"):
        broken = _post(hostile_server, "/txt2img", {"prompt": f"a red circle <lora:{stem}:1>", "seed": 5, **SMALL})
        assert broken.status_code < 500, broken.text
        assert SECRET.decode() not in broken.text


def test_malformed_checkpoints_vaes_and_upscalers_answer_400_with_a_reason(hostile_server):
    for stem in BAD_STEMS + ["valid-but-useless"]:
        for suffix in (".safetensors", ".ckpt"):
            answer = _post(hostile_server, "/options", {"sd_model_checkpoint": f"{stem}{suffix}"})
            assert answer.status_code == 400, (stem, suffix, answer.status_code, answer.text[:300])
            assert answer.json()["detail"] and SECRET.decode() not in answer.text
    for stem in ("list-header", "metadata-list", "deep-json", "lying-offsets"):
        answer = _post(hostile_server, "/txt2img", {"prompt": "x", **SMALL,
                                                   "override_settings": {"sd_vae": f"{stem}.safetensors"}})
        assert 400 <= answer.status_code < 500, (stem, answer.text[:300])
        upscale = _post(hostile_server, "/extra-single-image", {"image": _tiny_png(), "upscaler_1": stem,
                                                                "upscaling_resize": 2})
        assert 400 <= upscale.status_code < 500, (stem, upscale.text[:300])
    for name in ("link-out.safetensors", "link-out"):
        answer = _post(hostile_server, "/options", {"sd_model_checkpoint": name})
        assert answer.status_code == 400 and SECRET.decode() not in answer.text
    # The server kept serving the demo model through all of it.
    assert _post(hostile_server, "/options", {"sd_model_checkpoint": "demo-shapes.safetensors"}).status_code == 200
    assert _post(hostile_server, "/txt2img", {"prompt": "a red circle", **SMALL}).status_code == 200


def _tiny_png() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()
