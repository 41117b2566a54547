"""Lists, refreshes and model switching through the options, as A1111 clients use them."""
from __future__ import annotations

import shutil

import pytest

from tests.api.server import DEMO, SMALL, place_file

pytestmark = pytest.mark.e2e


def test_sd_models_lists_both_checkpoints(api):
    models = {m["title"]: m for m in api.get_sd_models()}
    assert set(models) == {"demo-shapes.safetensors", "other.safetensors"}
    assert models["other.safetensors"]["model_name"] == "other"
    assert models["other.safetensors"]["config"].endswith("other.json")


def test_switching_the_model_through_options(api):
    try:
        api.set_options({"sd_model_checkpoint": "demo-shapes.safetensors"})
        assert api.get_options()["sd_model_checkpoint"] == "demo-shapes.safetensors"
        assert "Model: demo-shapes," in api.txt2img(prompt="a red circle", seed=3, **SMALL).image.info["parameters"]
        api.util_set_model("other")  # webuiapi's helper: closest title, then POST /options
        assert api.util_get_current_model() == "other.safetensors"
        result = api.txt2img(prompt="a red circle", seed=3, **SMALL)
        assert "Model: other," in result.image.info["parameters"] and result.info["sd_model_name"] == "other"
    finally:
        api.set_options({"sd_model_checkpoint": "demo-shapes.safetensors"})


def test_refresh_checkpoints_finds_a_new_file(api, server):
    link = server.root / "ckpt" / "third.safetensors"
    try:
        place_file(DEMO.with_suffix(".safetensors"), link)
        place_file(DEMO.with_suffix(".json"), server.root / "ckpt" / "third.json")
        assert "third.safetensors" not in api.util_get_model_names()
        api.refresh_checkpoints()
        assert "third.safetensors" in api.util_get_model_names()
    finally:
        link.unlink(missing_ok=True)
        (server.root / "ckpt" / "third.json").unlink(missing_ok=True)
        api.refresh_checkpoints()


def test_loras_listed_after_a_file_is_added_and_refreshed(api, server, lora_source):
    before = {lora["name"]: lora for lora in api.get_loras()}
    assert before["tinylora"]["alias"] == "shapes-lora"
    assert before["tinylora"]["metadata"]["ss_network_dim"] == "4"
    assert before["tinylora"]["path"].endswith("tinylora.safetensors")
    added = server.root / "lora" / "added-later.safetensors"
    shutil.copy(lora_source, added)
    try:
        assert "added-later" not in {lora["name"] for lora in api.get_loras()}
        response = api.session.post(f"{api.baseurl}/refresh-loras")
        assert response.status_code == 200
        assert "added-later" in {lora["name"] for lora in api.get_loras()}
    finally:
        added.unlink()
        api.session.post(f"{api.baseurl}/refresh-loras")


def test_samplers_schedulers_and_other_lists(api):
    samplers = {s["name"]: s for s in api.get_samplers()}
    assert samplers["DPM++ 2M"]["options"]["scheduler"] == "karras" and "k_euler" in samplers["Euler"]["aliases"]
    schedulers = {s["name"]: s for s in api.get_schedulers()}
    assert schedulers["karras"]["label"] == "Karras" and schedulers["karras"]["default_rho"] == 7.0
    scripts = api.get_scripts()
    assert {"x/y/z plot", "prompt matrix", "prompts from file or textbox"} == set(scripts["txt2img"])
    assert scripts["img2img"] == scripts["txt2img"]
    assert api.get_sd_vae() == []
    flags = api.get_cmd_flags()
    assert flags["nowebui"] is True and flags["no_hashing"] is True and flags["api_auth"] is None
    memory = api.get_memory()
    assert memory["ram"]["total"] > memory["ram"]["free"] > 0
    embeddings = api.get_embeddings()
    assert set(embeddings) == {"loaded", "skipped"}


def test_openapi_docs_list_every_endpoint(api, server):
    import requests

    page = requests.get(server.url + "/docs", timeout=30)
    assert page.status_code == 200
    assert "://" not in page.text.replace(server.url, "")  # offline: no CDN links
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = requests.get(f"{server.url}/docs-assets/{asset}", timeout=30)
        assert response.status_code == 200 and len(response.content) > 10_000
    assert requests.get(f"{server.url}/docs-assets/..%2Fapp.py", timeout=30).status_code == 404
    paths = requests.get(server.url + "/openapi.json", timeout=30).json()["paths"]
    expected = {"txt2img", "img2img", "extra-single-image", "extra-batch-images", "png-info", "progress", "interrupt",
                "skip", "options", "sd-models", "sd-vae", "samplers", "schedulers", "upscalers", "loras",
                "refresh-loras", "refresh-checkpoints", "embeddings", "prompt-styles", "cmd-flags", "memory"}
    assert {f"/sdapi/v1/{name}" for name in expected} <= set(paths)
    assert paths["/sdapi/v1/txt2img"]["post"]["requestBody"]


def test_unload_and_reload_checkpoint(api):
    before = api.txt2img(prompt="a red circle", seed=1, **SMALL).image
    assert api.session.post(f"{api.baseurl}/unload-checkpoint").status_code == 200
    after_unload = api.txt2img(prompt="a red circle", seed=1, **SMALL).image  # loads the model again on demand
    assert api.session.post(f"{api.baseurl}/reload-checkpoint").status_code == 200
    after_reload = api.txt2img(prompt="a red circle", seed=1, **SMALL).image
    assert list(before.getdata()) == list(after_unload.getdata()) == list(after_reload.getdata())
