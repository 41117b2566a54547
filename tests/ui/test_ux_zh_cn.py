"""A Chinese browser sees placeholders and dropdown/radio values in Chinese too."""
from __future__ import annotations

from tests.ui.conftest import goto_ready, screenshot


def test_chinese_placeholders_and_choices(browser, ui_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    goto_ready(page, ui_url)
    page.wait_for_function("() => document.querySelector('#txt2img_prompt textarea')?.placeholder"
                           " === '正向提示词 (按 Ctrl+Enter 生成)'")
    assert page.locator("#txt2img_scheduler input").input_value() == "自动"
    assert page.locator("#setting_sd_vae input").input_value() == "自动"
    screenshot(page, "txt2img-zh-CN-complete")
    page.locator("#tab_img2img-button, button[role=tab]:text-is('图生图')").first.click()
    page.locator("#img2img_resize_mode").get_by_text("仅调整大小", exact=True).wait_for()
    page.locator("#img2img_size_kind").get_by_text("按比例缩放").wait_for()
    context.close()
