"""The sampler dropdown filters as you type, and a pasted A1111 legacy name picks sampler and schedule type."""
from __future__ import annotations

from tests.ui.test_browser import set_number, wait_for_infotext


def test_sampler_dropdown_filters_and_splits_legacy_names(page):
    field = page.locator("#txt2img_sampling input").first
    field.click()
    field.press("Control+a")
    field.press_sequentially("2S", delay=30)
    page.wait_for_function("() => { const o = [...document.querySelectorAll('[role=listbox] [role=option]')];"
                           " return o.length > 0 && o.every(e => e.getAttribute('aria-label').includes('2S')); }")
    field.press("Control+a")
    field.press_sequentially("DPM++ 2S a Karras", delay=10)  # as written in the tutorials
    field.press("Enter")
    page.locator("#txt2img_prompt textarea").click()
    page.wait_for_function("() => document.querySelector('#txt2img_scheduler input')?.value === 'Karras'")
    assert field.input_value() == "DPM++ 2S a"

    page.locator("#txt2img_prompt textarea").fill("a red circle")
    set_number(page, "txt2img_steps", 3)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    page.locator("#txt2img_generate").click()
    text = wait_for_infotext(page, "txt2img", "Seed:")
    assert "Sampler: DPM++ 2S a, Schedule type: Karras" in text
