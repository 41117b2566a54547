"""Values that used to answer 500 answer 4xx in A1111's error shape; absurd LoRAs are skipped with a warning."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image

SMALL = {"width": 64, "height": 64, "steps": 3, "sampler_name": "Euler", "seed": 11}


def _post(client, path: str, raw: str):
    return client.post("/sdapi/v1" + path, content=raw.encode(), headers={"Content-Type": "application/json"})


def _a1111_error(answer, status: int, *words: str) -> None:
    assert answer.status_code == status, answer.text[:400]
    body = answer.json()
    assert set(body) == {"error", "detail", "body", "errors"}
    for word in words:
        assert word in body["detail"], body["detail"]


def _pixels(answer) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0]))).convert("RGB"))


def test_seeds_beyond_64_bits_are_refused_and_the_largest_works(client):
    for field in ("seed", "subseed"):
        _a1111_error(_post(client, "/txt2img", json.dumps({**SMALL, field: 2**64})), 422, field)
        _a1111_error(_post(client, "/txt2img", json.dumps({**SMALL, field: -(2**63) - 1})), 422, field)
    answer = _post(client, "/txt2img", json.dumps({**SMALL, "seed": 2**64 - 1}))
    assert answer.status_code == 200 and json.loads(answer.json()["info"])["seed"] == 2**64 - 1


def test_a_batch_whose_later_seeds_pass_64_bits_is_refused_not_a_server_error(client):
    # A1111 v1.10.1 does not wrap seeds: modules/processing.py get_fixed_seed passes any int through and
    # process_images_inner gives image i the seed `int(seed) + i`; modules/rng.py create_generator then calls
    # torch.Generator(device).manual_seed(int(seed)), which raises "Overflow when unpacking long long" from 2^64 on
    # (checked with torch here). So a seed that only overflows for the second image is refused up front, as a 422.
    top = 2**64 - 1
    for extra in ({"seed": top, "batch_size": 2}, {"seed": top - 1, "n_iter": 3},
                  {"seed": top, "override_settings": {"eta_noise_seed_delta": 31337}},
                  {"seed": 5, "subseed": top, "subseed_strength": 0.5, "batch_size": 2}):
        _a1111_error(_post(client, "/txt2img", json.dumps({**SMALL, **extra})), 422, "seed", "2^64 - 1")
    # Variation keeps every image on the same seed, and subseeds are unused at strength 0: both fit.
    fits = _post(client, "/txt2img", json.dumps({**SMALL, "seed": top, "subseed": top, "subseed_strength": 0.5}))
    assert fits.status_code == 200, fits.text[:300]
    assert json.loads(fits.json()["info"])["all_seeds"] == [top]


def test_infinite_and_nan_sampler_values_are_refused(client):
    for raw in ('"s_noise": Infinity', '"s_churn": NaN', '"cfg_scale": -Infinity', '"eta": Infinity'):
        _a1111_error(_post(client, "/txt2img", json.dumps(SMALL)[:-1] + ", " + raw + "}"), 422, "finite")


def test_a_lone_surrogate_in_the_prompt_is_refused(client):
    raw = json.dumps({**SMALL, "prompt": "a red \ud800 circle"})  # json.dumps writes it as the escape \ud800
    _a1111_error(_post(client, "/txt2img", raw), 422, "surrogate")
    _a1111_error(_post(client, "/txt2img", json.dumps({**SMALL, "negative_prompt": "\udfff"})), 422, "surrogate")


def test_json_nested_thousands_deep_is_a_422(client):
    depth = 100_000
    for path in ("/txt2img", "/options", "/png-info"):
        _a1111_error(_post(client, path, "[" * depth + "]" * depth), 422, "nested")
        _a1111_error(_post(client, path, '{"prompt": "a", "comments": ' + '{"a": ' * depth + "1" + "}" * depth + "}"),
                     422, "nested")


def test_options_are_validated_when_written(client, robust_runtime):
    before = robust_runtime.settings.path.read_bytes() if robust_runtime.settings.path.is_file() else None
    _a1111_error(_post(client, "/options", json.dumps({"emphasis": "Bogus"})), 422, "emphasis")
    _a1111_error(_post(client, "/options", json.dumps({"default_sampler_name": "No Such"})), 422, "sampler")
    _a1111_error(_post(client, "/options", '{"default_cfg_scale": Infinity}'), 422, "finite")
    after = robust_runtime.settings.path.read_bytes() if robust_runtime.settings.path.is_file() else None
    assert after == before and robust_runtime.settings.current.emphasis == "Original"
    assert _post(client, "/options", json.dumps({"emphasis": "No norm"})).status_code == 200
    assert _post(client, "/options", json.dumps({"emphasis": "Original"})).status_code == 200


def test_absurd_lora_multipliers_and_weights_are_skipped_with_a_warning(client):
    plain = _post(client, "/txt2img", json.dumps({**SMALL, "prompt": "a red circle"}))
    good = _post(client, "/txt2img", json.dumps({**SMALL, "prompt": "a red circle <lora:good:1>"}))
    assert plain.status_code == good.status_code == 200
    assert not np.array_equal(_pixels(plain), _pixels(good))  # the good LoRA does change the picture
    for tag in ("<lora:good:1e308>", "<lora:good:-1e30>", "<lora:huge:1>", "<lora:huge:1e-20>"):
        answer = _post(client, "/txt2img", json.dumps({**SMALL, "prompt": f"a red circle {tag}"}))
        assert answer.status_code == 200, answer.text[:300]
        warnings = json.loads(answer.json()["info"])["warnings"]
        assert any("skipped" in warning for warning in warnings), (tag, warnings)
        image = _pixels(answer)
        assert np.array_equal(image, _pixels(plain)), tag  # skipped: exactly the picture without it
        assert image.max() > 0  # not the all-black picture a NaN/Inf merge gives
