"""One real WebUI (Gradio login + API) whose every scanned folder holds the malformed-file corpus."""
from __future__ import annotations

import base64
import shutil
import time

import pytest
import requests

from tests.api.server import start_server, write_demo_lora
from tests.security.corpus import write_corpus

USER, PASSWORD = "guard", "pa55word"
# Every folder the app scans, with the suffix its files use (checkpoints also as .ckpt).
SCANNED = {"ckpt": (".safetensors", ".ckpt"), "vae": (".safetensors", ".pt"), "lora": (".safetensors",),
           "emb": (".safetensors", ".pt"), "esrgan": (".pth", ".safetensors")}


@pytest.fixture(scope="session")
def hostile_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    outside = tmp_path_factory.mktemp("outside")
    for folder, suffixes in SCANNED.items():
        for suffix in suffixes:
            write_corpus(root / folder, suffix, outside)
    good = write_demo_lora(tmp_path_factory.mktemp("lora-src") / "good-lora.safetensors")
    shutil.copy(good, root / "lora" / "good-lora.safetensors")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    running = start_server(root, "--api", "--gradio-auth", f"{USER}:{PASSWORD}", "--esrgan-models-path",
                           str(root / "esrgan"), probe="/sdapi/v1/sd-models", auth_header=f"Basic {token}")
    try:
        running.outside = outside  # type: ignore[attr-defined]
        deadline = time.monotonic() + 120
        while requests.get(running.url + "/sdapi/v1/sd-models", timeout=30).status_code == 404:
            assert time.monotonic() < deadline, "the API never joined the Gradio server"  # attached just after launch
            time.sleep(0.2)
        # The first checkpoint by name is a corrupt corpus file: pick the demo model, as a user would.
        chosen = requests.post(running.url + "/sdapi/v1/options",
                               json={"sd_model_checkpoint": "demo-shapes.safetensors"}, timeout=120)
        assert chosen.status_code == 200, chosen.text
        yield running
    finally:
        running.stop()  # also when a check above fails
