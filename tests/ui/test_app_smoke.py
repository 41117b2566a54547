"""The launched app serves the UI, and a txt2img through Gradio gives the same pixels as calling Python."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.tiny_models import build_tiny_checkpoint
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    build_tiny_checkpoint("sd1", root / "ckpt" / "tiny.safetensors")
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(root / "app.log", "w")
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--ckpt-dir", str(root / "ckpt"),
                                "--data-dir", str(root), "--port", str(port), "--device", "cpu"],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/", process)
        yield root, port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_help_lists_the_flags():
    out = subprocess.run([sys.executable, str(REPO / "app.py"), "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0
    for flag in ("--ckpt-dir", "--no-half", "--medvram", "--lowvram", "--listen", "--port", "--share",
                 "--gradio-auth", "--vae-dir", "--lora-dir", "--embeddings-dir"):
        assert flag in out.stdout


def test_ui_txt2img_matches_python(served_app):
    from gradio_client import Client

    root, port = served_app
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    gallery, info = client.predict("tiny.safetensors", "None", 1, "a red circle", "blurry", "Euler a", "Automatic",
                                   3, 64, 64, 1, 1, 5.0, 1234, api_name="/txt2img")
    assert "Seed: 1234" in info and "Size: 64x64" in info
    ui_image = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))

    folders = Folders(checkpoints=root / "ckpt", vae=root / "VAE", lora=(root / "Lora",), embeddings=root / "emb",
                      outputs=root / "py-out", data=root / "py")
    runtime = build_runtime(folders, device_config(device="cpu"))
    request = make_request(Txt2ImgRequest, dict(prompt="a red circle", negative_prompt="blurry", steps=3,
                                                sampler_name="Euler a", width=64, height=64, seed=1234,
                                                cfg_scale=5.0, vae="None", save_images=False))
    python_image = np.asarray(txt2img(request, runtime).images[0])
    assert np.array_equal(ui_image, python_image)
    saved = list((root / "outputs" / "txt2img-images").rglob("*.png"))
    assert len(saved) == 1 and saved[0].name.endswith("-1234.png")
