"""Browser-test fixtures: the real WebUI on a free port with the bundled demo model, and Debian's headless chromium."""
from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from tests.helpers.tiny_taggers import write_tiny_tagger
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.runtime import Runtime, build_runtime

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "ui"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lora(path: Path, alias: str, *, base: str = "sd_v1", tags: dict[str, int] | None = None) -> Path:
    """A small kohya-style LoRA file: cards only read its header, so one up/down pair is enough."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 4)}
    metadata = {"ss_output_name": alias, "ss_network_dim": "4", "ss_network_alpha": "2",
                "ss_base_model_version": base, "ss_tag_frequency": json.dumps({"1_data": tags or {"shape": 3}})}
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not CHROMIUM.is_file():
        # A missing browser must not turn the browser tests green: fail, unless the person running asked to skip.
        message = "Debian chromium is not installed (run_tests.sh installs it: apt-get install -y chromium)"
        if os.environ.get("WEBUI_SKIP_BROWSER_TESTS") == "1":
            pytest.skip(message)
        pytest.fail(message + "; set WEBUI_SKIP_BROWSER_TESTS=1 to skip the browser tests knowingly")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def ui_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("webui")
    lora = write_lora(root / "Lora" / "styles" / "redshape.safetensors", "red_shape",
                      tags={"red": 12, "shape": 7, "circle": 2})
    lora.with_suffix(".json").write_text(json.dumps({"activation text": "bold red", "preferred weight": 0.8,
                                                     "notes": "made for the demo"}), encoding="utf-8")
    write_lora(root / "Lora" / "xl_only.safetensors", "xl_only", base="sdxl_base_v1-0")
    write_tiny_tagger(root / "tagger" / "tiny-wd14")  # the app's tagger folder (--tagger-dir) for the Train tab
    return root


@pytest.fixture(scope="session")
def ui_runtime(ui_root) -> Runtime:
    torch.set_num_threads(1)  # the demo model is tiny; one thread is fastest on a shared CPU
    folders = Folders(checkpoints=DEFAULT_CHECKPOINT.parent, vae=ui_root / "VAE", lora=(ui_root / "Lora",),
                      embeddings=ui_root / "embeddings", outputs=ui_root / "outputs", data=ui_root,
                      taggers=ui_root / "tagger", blip=ui_root / "BLIP")
    runtime = build_runtime(folders, device_config(device="cpu"), hashing=False)
    runtime.models.load(DEFAULT_CHECKPOINT.name)
    return runtime


@pytest.fixture(scope="session")
def ui_url(ui_runtime) -> str:
    from webui.ui.app import build_ui, launch_options

    demo = build_ui(ui_runtime)
    port = free_port()
    demo.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                                   show_error=True, **launch_options("dark"))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture()
def page(browser, ui_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    goto_ready(opened, ui_url)
    yield opened
    context.close()


def goto_ready(page, url: str) -> None:
    """Open the UI and wait until its load events (Settings defaults, cards) are done, so typing is not undone."""
    page.goto(url)
    page.wait_for_selector("#txt2img_prompt textarea")
    # The Settings-defaults load event must land before anything is typed (it would overwrite it); the page marks
    # <body> once it has.
    page.wait_for_function("() => document.body.dataset.defaultsLoaded === '1'")


def wait_until_mounted(page, field) -> None:
    """Wait until `field`, in a tab just selected, is shown and Gradio has filled it in, so what is typed stays.

    Gradio 6 mounts a tab's components only when the tab is first selected, and one animation frame after they
    mount it pushes the values the page was built with into them (`render_previously_invisible_children` in its
    frontend). Anything typed before that frame is replaced by the old value: typed at once, Settings saved 20
    instead of 17. That push runs at the latest in the frame after `field` shows, so two frames later it is done.
    """
    field.wait_for(state="visible")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def copy_lora(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
