"""/sdapi/v1/interrogate on a real server: the WD14 tagger behind A1111's names, and A1111's 404s."""
from __future__ import annotations

import base64
import io

import pytest
import requests
from PIL import Image

from tests.helpers.tiny_taggers import write_tiny_tagger


def _b64(colour: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def tagged_server(server):
    # The server lists its tagger folder on each request, so a tagger dropped in now is found without a restart.
    write_tiny_tagger(server.root / "tagger" / "tiny-wd14")
    return server


def _interrogate(server, body: dict) -> requests.Response:
    return requests.post(f"{server.url}/sdapi/v1/interrogate", json=body, timeout=60)


def test_tagger_answers_by_its_name_and_as_deepdanbooru(tagged_server):
    answer = _interrogate(tagged_server, {"image": _b64("red"), "model": "tiny-wd14"})
    assert answer.status_code == 200, answer.text
    caption = answer.json()["caption"]
    tags = caption.split(", ")
    assert "red" in tags and "green" not in tags and "blue" not in tags
    assert "simple background" in tags and "general" not in tags  # readable tags; ratings stay out
    green = _interrogate(tagged_server, {"image": "data:image/png;base64," + _b64("lime"), "model": "deepdanbooru"})
    assert green.status_code == 200 and "green" in green.json()["caption"].split(", ")


def test_unknown_or_missing_models_and_bad_images(tagged_server):
    missing_blip = _interrogate(tagged_server, {"image": _b64("red")})  # "clip" is the default, as in A1111
    assert missing_blip.status_code == 404
    assert str(tagged_server.root / "blip") in missing_blip.json()["detail"]
    unknown = _interrogate(tagged_server, {"image": _b64("red"), "model": "nope"})
    assert unknown.status_code == 404 and "tiny-wd14" in unknown.json()["detail"]
    assert _interrogate(tagged_server, {"image": "not base64!", "model": "tiny-wd14"}).status_code == 422
    escape = _interrogate(tagged_server, {"image": _b64("red"), "model": "../tagger/tiny-wd14"})
    assert escape.status_code == 404  # only folder names listed in the tagger folder are accepted
