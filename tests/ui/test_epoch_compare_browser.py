"""Train → Run's "Compare epochs (X/Y/Z)" in a real browser: txt2img opens with the X/Y/Z plot filled in."""
from __future__ import annotations

import pytest

from tests.ui.conftest import screenshot, write_lora
from webui.training.outputs import epoch_file_name

pytestmark = pytest.mark.browser

RUN = "cmp dog"


@pytest.fixture()
def epoch_files(ui_root, ui_runtime):
    paths = [write_lora(ui_root / "Lora" / "runs" / epoch_file_name(RUN, epoch), RUN) for epoch in (2, 1)]
    paths.append(write_lora(ui_root / "Lora" / "runs" / epoch_file_name(RUN), RUN))
    ui_runtime.loras.scan()
    yield paths
    for path in paths:  # the UI session is shared with the other browser tests
        path.unlink()
    ui_runtime.loras.scan()


def _value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first.input_value()


def test_compare_epochs_fills_the_xyz_plot_of_txt2img(page, epoch_files):
    page.locator("#txt2img_prompt textarea").fill("a photo of a dog")
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("tab", name="Parameters").click()
    for elem_id, value in (("train_output_name", RUN), ("train_trigger_word", "zkdog")):
        box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
        box.fill(value)
        box.press("Tab")
    page.get_by_role("tab", name="Run").click()
    page.locator("#train_compare_epochs").click()

    page.wait_for_function("() => (document.querySelector('#txt2img_prompt textarea')?.value || '')"
                           ".includes('<lora:cmp dog:1>')")
    assert _value(page, "txt2img_prompt") == "zkdog, a photo of a dog, <lora:cmp dog:1>"
    assert page.locator("#txt2img_prompt").is_visible()  # the txt2img tab is the one shown
    # The X type's own change event (which shows the fill button) must keep the picked epoch files.
    page.locator("#txt2img_xyz_X_fill").wait_for(state="visible")
    assert _value(page, "txt2img_script") == "X/Y/Z plot"
    assert _value(page, "txt2img_xyz_X_type") == "LoRA file"
    picked = page.locator("#txt2img_xyz_X_values_dropdown").inner_text()
    assert [name for name in ("cmp dog-000001", "cmp dog-000002") if name in picked] == ["cmp dog-000001",
                                                                                          "cmp dog-000002"]
    assert picked.index("cmp dog-000001") < picked.index("cmp dog-000002")
    assert _value(page, "txt2img_xyz_Y_type") == "LoRA weight"
    assert _value(page, "txt2img_xyz_Y_values") == "0.4, 0.6, 0.8, 1.0"
    screenshot(page, "compare_epochs")
