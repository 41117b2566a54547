"""Start app.py as a real server process for the API tests, and build their model and LoRA folders."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "models" / "Stable-diffusion" / "demo-shapes"
START_TIMEOUT = 180  # seconds; importing torch and diffusers on a busy 2-core machine is slow
SMALL = dict(width=64, height=64, steps=4, sampler_name="Euler")  # ~0.1 s a picture with the demo model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running app.py; `log` holds its output for the failure message. `first_status` is the HTTP status of the
    first answer the probe got: a route that is not there yet then answers 404 instead of its real status."""

    process: subprocess.Popen
    port: int
    root: Path
    log: Path
    first_status: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def model_folder(root: Path) -> Path:
    """Two checkpoints (the demo under its own name and as `other`), hard-linked, with their JSON sidecars."""
    folder = root / "ckpt"
    folder.mkdir(parents=True, exist_ok=True)
    for stem in ("demo-shapes", "other"):
        for suffix in (".safetensors", ".json"):
            target = folder / f"{stem}{suffix}"
            if not target.exists():
                place_file(DEMO.with_suffix(suffix), target)
    return folder


def place_file(source: Path, target: Path) -> None:
    """A hard link (a real file of the folder: model folders refuse symlinks that lead out), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def start_server(root: Path, *extra: str, probe: str = "/sdapi/v1/sd-models",
                 auth_header: str | None = None, hashing: bool = False) -> Server:
    """app.py with tmp folders; waits until `probe` answers (any HTTP status counts as up).

    `hashing` lets the app compute checkpoint hashes (and so rewrite cache.json); tests usually skip it for speed.
    """
    port = free_port()
    for name in ("lora", "data", "emb", "vae"):
        (root / name).mkdir(parents=True, exist_ok=True)
    log = root / "server.log"
    command = [sys.executable, str(REPO / "app.py"), "--port", str(port), "--ckpt-dir", str(model_folder(root)),
               "--lora-dir", str(root / "lora"), "--data-dir", str(root / "data"), "--vae-dir", str(root / "vae"),
               "--embeddings-dir", str(root / "emb"), "--device", "cpu", *([] if hashing else ["--no-hashing"]), *extra]
    # One compute thread: on a shared, busy CPU OpenMP's spinning threads slow every step down many times over.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    server = Server(process, port, root, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.tail()}")
        request = urllib.request.Request(server.url + probe)
        if auth_header:
            request.add_header("Authorization", auth_header)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                server.first_status = response.status
                return server
        except urllib.error.HTTPError as error:
            server.first_status = error.code
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"server did not answer within {START_TIMEOUT}s:\n{server.tail()}")


def write_demo_lora(path: Path, seed: int = 1, strength: float = 5.0) -> Path:
    """A kohya LoRA for the demo model, strong enough to change its pictures visibly."""
    from safetensors.torch import save_file

    from tests.networks.tiny import kohya_lora, lora_targets
    from webui.models.device import device_config
    from webui.paths import Folders
    from webui.processing.runtime import build_runtime

    scratch = path.parent / f".scratch-{path.stem}"
    folders = Folders(checkpoints=DEMO.parent, vae=scratch / "vae", lora=(scratch / "lora",),
                      embeddings=scratch / "emb", outputs=scratch / "out", data=scratch)
    runtime = build_runtime(folders, device_config(device="cpu"), hashing=False)
    names = runtime.models.load("demo-shapes.safetensors").lora_names()
    tensors = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value * strength for key, value in tensors.items()}, str(path),
              metadata={"ss_output_name": path.stem, "ss_network_dim": "4"})
    return path
