"""txt2img and png-info through webuiapi against a real server: sizes, infotext, A1111 defaults, saving, overrides."""
from __future__ import annotations

import base64
import json

import pytest

from tests.api.server import SMALL

pytestmark = pytest.mark.e2e


def test_txt2img_images_carry_size_and_infotext(api, server):
    result = api.txt2img(prompt="a red circle", negative_prompt="blurry", seed=1234, n_iter=2, **SMALL)
    assert [image.size for image in result.images] == [(64, 64), (64, 64)]
    for image, seed in zip(result.images, (1234, 1235), strict=True):
        text = image.info["parameters"]
        assert text.startswith("a red circle\nNegative prompt: blurry\n")
        for part in (f"Seed: {seed},", "Size: 64x64", "Steps: 4,", "Sampler: Euler,", "Model: "):
            assert part in text
    info = result.info
    assert info["all_seeds"] == [1234, 1235] and info["seed"] == 1234
    assert (info["width"], info["height"], info["steps"], info["sampler_name"]) == (64, 64, 4, "Euler")
    assert info["infotexts"] == [image.info["parameters"] for image in result.images]
    assert info["index_of_first_image"] == 0 and info["all_prompts"] == ["a red circle"] * 2
    raw = result.json["images"][0]
    assert not raw.startswith("data:") and base64.b64decode(raw)[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.json["parameters"]["prompt"] == "a red circle" and isinstance(result.json["info"], str)
    assert not list((server.root / "data").rglob("*.png"))  # the API saves nothing unless asked


def test_api_defaults_are_euler_and_50_steps(api):
    response = api.session.post(f"{api.baseurl}/txt2img", json={"prompt": "a blue square", "width": 64,
                                                                "height": 64, "seed": 7})
    assert response.status_code == 200
    info = json.loads(response.json()["info"])
    assert (info["sampler_name"], info["steps"]) == ("Euler", 50)
    assert "Steps: 50, Sampler: Euler," in info["infotexts"][0]


def test_save_images_writes_a_png_with_its_infotext(api, server):
    from PIL import Image

    result = api.txt2img(prompt="a green triangle", seed=42, save_images=True, **SMALL)
    saved = list((server.root / "data").rglob("*.png"))
    assert len(saved) == 1
    with Image.open(saved[0]) as image:
        assert image.info["parameters"] == result.images[0].info["parameters"]
    saved[0].unlink()


def test_override_settings_apply_once_and_are_restored(api):
    with_override = api.txt2img(prompt="a red circle", seed=5, override_settings={"CLIP_stop_at_last_layers": 2},
                                **SMALL)
    assert "Clip skip: 2" in with_override.images[0].info["parameters"]
    assert with_override.info["clip_skip"] == 2
    assert api.get_options()["CLIP_stop_at_last_layers"] == 1
    after = api.txt2img(prompt="a red circle", seed=5, **SMALL)
    assert "Clip skip" not in after.images[0].info["parameters"]
    assert list(after.images[0].getdata()) != list(with_override.images[0].getdata())


def test_override_kept_when_not_restored(api):
    try:
        api.txt2img(prompt="a red circle", seed=5, override_settings={"CLIP_stop_at_last_layers": 2},
                    override_settings_restore_afterwards=False, **SMALL)
        assert api.get_options()["CLIP_stop_at_last_layers"] == 2
        assert "Clip skip: 2" in api.txt2img(prompt="a red circle", seed=5, **SMALL).images[0].info["parameters"]
    finally:
        api.set_options({"CLIP_stop_at_last_layers": 1})
    assert api.get_options()["CLIP_stop_at_last_layers"] == 1


def test_unknown_checkpoint_in_override_settings_is_a_400(api):
    with pytest.raises(RuntimeError) as caught:
        api.txt2img(prompt="x", override_settings={"sd_model_checkpoint": "no-such-model"}, **SMALL)
    status, text = caught.value.args
    body = json.loads(text)
    assert status == 400 and "no-such-model" in body["detail"] and body["error"]


def test_png_info_reads_back_what_txt2img_wrote(api):
    image = api.txt2img(prompt="a (yellow:1.2) star", seed=99, **SMALL).image
    result = api.png_info(image)
    assert result.info == image.info["parameters"]
    params = result.json["parameters"]
    assert (params["Prompt"], params["Seed"], params["Size-1"], params["Steps"]) == ("a (yellow:1.2) star", 99, 64, 4)


def test_infotext_field_fills_the_request(api):
    source = api.txt2img(prompt="a red circle", seed=321, **SMALL).image
    response = api.session.post(f"{api.baseurl}/txt2img", json={"infotext": source.info["parameters"]})
    assert response.status_code == 200
    info = json.loads(response.json()["info"])
    assert (info["seed"], info["steps"], info["width"]) == (321, 4, 64)
