"""app.py: its flags, and --gradio-auth making the page demand a login before showing anything."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from tests.ui.conftest import screenshot

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = DEFAULT_CHECKPOINT.parent


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
    """app.py itself (the launch path users run) with --gradio-auth, on the bundled demo model."""
    root = tmp_path_factory.mktemp("app")
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(root / "app.log", "w")
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--ckpt-dir", str(DEMO_DIR),
                                "--lora-dir", str(root / "Lora"), "--data-dir", str(root), "--port", str(port),
                                "--device", "cpu", "--no-hashing", "--gradio-auth", "alice:secret,bob:pw2"],
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
                 "--gradio-auth", "--vae-dir", "--lora-dir", "--embeddings-dir", "--theme", "--autolaunch"):
        assert flag in out.stdout


@pytest.mark.browser
@pytest.mark.e2e
def test_gradio_auth_demands_a_login(served_app, browser):
    _, port = served_app
    context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{port}/")
    page.get_by_role("button", name="Login").wait_for()
    assert page.locator("#txt2img_prompt").count() == 0  # nothing of the UI before logging in
    page.get_by_label("username").fill("alice")
    page.get_by_label("password").fill("wrong")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect Credentials").wait_for()
    screenshot(page, "login")
    page.get_by_label("username").fill("alice")  # the failed attempt reloaded the form
    page.get_by_label("password").fill("secret")
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#txt2img_prompt textarea")
    assert "dark" in page.evaluate("() => document.body.className")  # the default theme is dark
    context.close()
