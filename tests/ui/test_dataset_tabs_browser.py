"""The Dataset/Tagging sub-tabs and the Interrogate button driven in chromium; screenshots in test-artifacts/ui/."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from scripts.preview_dataset_tabs import build_preview
from tests.helpers.tiny_taggers import write_tiny_tagger
from tests.ui.conftest import free_port, screenshot
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.runtime import build_runtime

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def preview(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset-ui")
    write_tiny_tagger(root / "tagger" / "tiny-wd14")
    photos = root / "photos"
    photos.mkdir()
    for index, colour in enumerate(["red", "blue", "red"]):
        Image.new("RGB", (160, 120), colour).save(photos / f"p{index}.png")
    folders = Folders(checkpoints=root / "ckpt", vae=root / "vae", lora=(root / "lora",), embeddings=root / "emb",
                      outputs=root / "out", data=root, taggers=root / "tagger", blip=root / "blip")
    demo = build_preview(build_runtime(folders, device_config(device="cpu"), hashing=False))
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    yield root, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture()
def page(browser, preview):
    """A fresh page on the preview app (the shared `page` fixture opens the full WebUI instead)."""
    opened = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
    opened.set_default_timeout(30_000)
    opened.goto(preview[1])
    opened.wait_for_selector("#train_dataset_create")
    yield opened
    opened.close()


def test_create_tag_and_batch_edit_in_the_browser(page, preview):
    root, _ = preview
    page.locator("#train_dataset_source textarea").fill(str(root / "photos"))
    page.locator("#train_dataset_trigger textarea").fill("sks")
    page.locator("#train_dataset_class textarea").fill("toy")
    page.locator("#train_dataset_caption_model input").click()
    page.get_by_role("option", name="tiny-wd14").click()
    page.locator("#train_dataset_create").click()
    page.locator("#train_dataset_counts").get_by_text("3 images, 30 per epoch").wait_for()
    assert page.locator("#train_dataset_gallery img").count() == 3
    subset = root / "training" / "img" / "10_sks toy"
    assert (subset / "0002.txt").read_text() == "sks, blue, simple background, ^_^, long hair\n"
    screenshot(page, "train_dataset_tab")

    page.get_by_role("tab", name="Tagging").click()
    page.locator("#train_tagging_load").click()
    page.locator("#train_tagging_info").get_by_text("3 of 3 image(s)").wait_for()
    assert "simple background" in page.locator("#train_tagging_frequency").inner_text()
    page.locator("#train_tagging_batch_tags textarea").fill("long hair")
    page.get_by_role("radio", name="remove", exact=True).check()
    page.locator("#train_tagging_apply").click()
    page.locator("#train_tagging_status").get_by_text("Saved 3 caption(s)").wait_for()
    assert (subset / "0002.txt").read_text() == "sks, blue, simple background, ^_^\n"
    assert (subset / "0002.txt.bak").read_text().endswith("long hair\n")
    screenshot(page, "train_tagging_tab")


def test_interrogate_button_fills_the_prompt(page):
    page.get_by_role("tab", name="Interrogate").click()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    page.locator("#img2img_image input[type=file]").set_input_files(
        files=[{"name": "red.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
    page.locator("#img2img_image img").first.wait_for()
    page.locator("#img2img_interrogate").click()
    prompt = page.locator("#img2img_prompt textarea")
    page.wait_for_function("() => document.querySelector('#img2img_prompt textarea').value.includes('red')")
    assert prompt.input_value().split(", ")[0] == "red"
    screenshot(page, "interrogate_button")
