"""The Train tab in a real browser: a dataset made from a folder and tagged with a tiny tagger, training with a live
sample and loss plot, stop, resume, and the new LoRA card on the txt2img page."""
from __future__ import annotations

import shutil

import pytest

from tests.training.conftest import star
from tests.ui.conftest import screenshot

pytestmark = pytest.mark.browser

NAME = "browser star"


def _fill(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(str(value))
    box.press("Tab")


def _status(page) -> str:
    return page.locator("#train_status").inner_text()


def _create_tagged_dataset(page, photos) -> None:
    page.get_by_role("tab", name="Dataset").click()
    _fill(page, "train_dataset_source", photos)
    _fill(page, "train_dataset_repeats", 25)
    _fill(page, "train_dataset_trigger", "zkstar")
    for label in ("Width", "Height"):  # the sliders' number boxes
        box = page.locator(f"#train_dataset_tab input[type=number][aria-label='number input for {label}']").first
        box.fill("64")
        box.press("Tab")
    page.locator("#train_dataset_caption_model input").click()
    page.get_by_role("option", name="tiny-wd14").click()
    page.locator("#train_dataset_create").click()
    page.locator("#train_dataset_counts").get_by_text("2 images, 50 per epoch").wait_for(timeout=60_000)
    assert page.locator("#train_dataset_gallery img").count() == 2
    screenshot(page, "train-dataset")


def test_train_tab_dataset_tag_start_stop_resume_in_the_browser(page, ui_runtime, ui_root, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        star(96 + 16 * index).save(photos / f"star{index}.png")
    page.get_by_role("tab", name="Train").click()
    _create_tagged_dataset(page, photos)
    subset = ui_root / "training" / "img" / "25_zkstar"
    captions = sorted(path.read_text(encoding="utf-8") for path in subset.glob("*.txt"))
    assert len(captions) == 2 and all(c.startswith("zkstar, ") and "simple background" in c for c in captions)

    page.get_by_role("tab", name="Parameters").click()
    for elem_id, value in (("train_train_data_dir", subset.parent), ("train_output_name", NAME),
                           ("train_resolution", "64"), ("train_network_dim", 2), ("train_learning_rate", "0.001"),
                           ("train_max_train_epochs", 2), ("train_save_every_n_epochs", 1),
                           ("train_sample_every_n_epochs", 0), ("train_sample_every_n_steps", 20)):
        _fill(page, elem_id, value)
    _fill(page, "train_sample_prompts", "zkstar --w 64 --h 64 --d 2 --s 4")
    page.locator("#train_count").click()
    page.wait_for_function("() => (document.querySelector('#train_counts textarea')?.value || '')"
                           ".includes('50 batches of 1 per epoch, 100 steps for 2 epochs')", timeout=60_000)
    page.get_by_role("tab", name="Run").click()
    page.locator("#train_start").click()
    plot = "document.querySelector('#train_loss_plot img')"
    page.wait_for_function(f"() => {plot} !== null", timeout=120_000)
    first_plot = page.locator("#train_loss_plot img").get_attribute("src")
    page.wait_for_function(f"(first) => {plot} && {plot}.src !== first", arg=first_plot, timeout=60_000)
    # a sample every 20 steps: the first one comes well before the end, so Stop lands mid-run
    page.wait_for_function("() => document.querySelectorAll('#train_samples img').length > 0", timeout=180_000)
    screenshot(page, "train-running")
    page.locator("#train_stop").click()
    page.wait_for_function("() => document.querySelector('#train_status').innerText.includes('stopped')",
                           timeout=120_000)
    screenshot(page, "train-stopped")
    page.locator("#train_resume").click()
    page.wait_for_function("() => document.querySelector('#train_status').innerText.includes('done')",
                           timeout=300_000)
    assert "step 100/100" in _status(page)
    screenshot(page, "train-done")

    # The new LoRA is a card on the txt2img page after Refresh (no restart), with the last sample as its preview.
    page.get_by_role("tab", name="txt2img").first.click()
    page.locator("button[role=tab]:text-is('Lora')").first.click()
    page.locator("#txt2img_lora_refresh").click()
    card = page.locator(f'#txt2img_lora_cards .sdw-card[data-name="{NAME}"]')
    card.wait_for()
    assert card.locator(".placeholder").count() == 0
    assert page.locator(f'#txt2img_lora_cards .sdw-card[data-name="{NAME}-000001"]').count() == 1
    screenshot(page, "train-lora-card")
    # The UI session is shared with the other browser tests: leave the LoRA folder as they expect it.
    for path in (ui_root / "Lora").glob(f"{NAME}*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for folder in ("sample", "log"):
        shutil.rmtree(ui_root / "Lora" / folder, ignore_errors=True)
    shutil.rmtree(ui_root / "training", ignore_errors=True)
    ui_runtime.loras.scan()
