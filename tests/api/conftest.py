"""Session fixtures: one API-only server for most tests (with a LoRA and two checkpoints), and the client."""
from __future__ import annotations

import shutil

import pytest
import webuiapi

from tests.api.server import start_server, write_demo_lora


@pytest.fixture(scope="session")
def lora_source(tmp_path_factory):
    """A LoRA file kept outside the server's folder; tests copy it in."""
    return write_demo_lora(tmp_path_factory.mktemp("lora-src") / "shapes-lora.safetensors")


@pytest.fixture(scope="session")
def server(tmp_path_factory, lora_source):
    root = tmp_path_factory.mktemp("api-server")
    (root / "lora").mkdir()
    shutil.copy(lora_source, root / "lora" / "tinylora.safetensors")
    running = start_server(root, "--api", "--nowebui", "--tagger-dir", str(root / "tagger"),
                           "--blip-dir", str(root / "blip"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api(server) -> webuiapi.WebUIApi:
    return webuiapi.WebUIApi(host="127.0.0.1", port=server.port, sampler="Euler", steps=4)

