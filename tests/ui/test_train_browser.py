"""The Train tab in a real browser: count, start, see the loss plot and a sample, stop, resume, the card appears."""
from __future__ import annotations

import shutil

import pytest

from tests.training.conftest import make_star_dataset
from tests.ui.conftest import screenshot

pytestmark = pytest.mark.browser


def _fill(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(str(value))
    box.press("Tab")


def _status(page) -> str:
    return page.locator("#train_status").inner_text()


def test_train_tab_start_stop_resume_in_the_browser(page, ui_runtime, ui_root, tmp_path):
    data = make_star_dataset(tmp_path / "img", count=2, repeats=25)
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("tab", name="Parameters").click()
    for elem_id, value in (("train_train_data_dir", data), ("train_output_name", "browser star"),
                           ("train_resolution", "64"), ("train_network_dim", 2), ("train_learning_rate", "0.001"),
                           ("train_max_train_epochs", 2), ("train_save_every_n_epochs", 1),
                           ("train_sample_every_n_epochs", 1)):
        _fill(page, elem_id, value)
    _fill(page, "train_sample_prompts", "zkstar --w 64 --h 64 --d 2 --s 4")
    page.locator("#train_count").click()
    page.wait_for_function("() => (document.querySelector('#train_counts textarea')?.value || '')"
                           ".includes('50 batches of 1 per epoch, 100 steps for 2 epochs')", timeout=60_000)
    page.get_by_role("tab", name="Run").click()
    page.locator("#train_start").click()
    page.wait_for_function("() => document.querySelectorAll('#train_samples img').length > 0", timeout=180_000)
    page.wait_for_function("() => document.querySelector('#train_loss_plot img') !== null", timeout=30_000)
    screenshot(page, "train-running")
    page.locator("#train_stop").click()
    page.wait_for_function("() => document.querySelector('#train_status').innerText.includes('stopped')",
                           timeout=120_000)
    assert "browser star-000001" in {e.name for e in ui_runtime.loras.entries()}  # the card's file, no restart
    page.locator("#train_resume").click()
    page.wait_for_function("() => document.querySelector('#train_status').innerText.includes('done')",
                           timeout=300_000)
    assert "step 100/100" in _status(page)
    assert "browser star" in {e.name for e in ui_runtime.loras.entries()}
    screenshot(page, "train-done")
    # The UI session is shared with the other browser tests: leave the LoRA folder as they expect it.
    for path in (ui_root / "Lora").glob("browser star*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for folder in ("sample", "log"):
        shutil.rmtree(ui_root / "Lora" / folder, ignore_errors=True)
    ui_runtime.loras.scan()
