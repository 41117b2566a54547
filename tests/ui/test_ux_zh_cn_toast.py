"""A Chinese page gets the server's run-time text in Chinese: a missing-LoRA warning toast, the progress line, and
an error toast when Chinese was chosen in Settings on an English browser."""
from __future__ import annotations

from tests.ui.conftest import goto_ready, screenshot
from tests.ui.test_browser import set_number, wait_for_infotext

# Records every progress text the page shows while the job runs.
RECORDER = """() => {
  window.sdwProgress = [];
  new MutationObserver(() => {
    const text = document.querySelector('#txt2img_progress')?.innerText || '';
    if (text && window.sdwProgress.at(-1) !== text) { window.sdwProgress.push(text); }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def test_chinese_page_shows_a_translated_warning_toast(browser, ui_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    goto_ready(page, ui_url)
    # The page tells the server which language it shows (here: no Settings choice, so the browser's).
    page.wait_for_function("() => document.cookie.includes('sdwebui-localization=zh-CN')")

    page.locator("#txt2img_prompt textarea").fill("a red circle, <lora:no_such_lora:0.8>")
    set_number(page, "txt2img_steps", 4)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    page.evaluate(RECORDER)
    page.locator("#txt2img_generate").click()
    toast = page.get_by_text("找不到 LoRA：no_such_lora")
    toast.wait_for(timeout=120_000)
    wait_for_infotext(page, "txt2img", "Steps: 4")
    screenshot(page, "zh-CN-toast")
    assert page.get_by_text("LoRA not found").count() == 0
    assert page.get_by_text("警告", exact=True).count() >= 1  # the toast's title too
    assert page.get_by_text("Warning", exact=True).count() == 0
    progress = page.evaluate("window.sdwProgress")
    assert any("预计剩余" in text for text in progress), progress
    assert not any("ETA" in text or "Step " in text for text in progress), progress
    context.close()


def test_language_chosen_in_settings_words_the_toasts_of_an_english_browser(browser, ui_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    context.add_init_script("localStorage.setItem('sdwebui-localization', 'zh-CN')")  # saved in Settings earlier
    page = context.new_page()
    page.set_default_timeout(30_000)
    goto_ready(page, ui_url)
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    page.locator("#txt2img_toprow").get_by_text("编辑样式").click()
    page.locator("#txt2img_style_save").click()  # no name given: processing/styles.py refuses it
    page.get_by_text("样式需要一个名称").wait_for()
    assert page.get_by_text("错误", exact=True).count() >= 1
    assert page.get_by_text("A style needs a name").count() == 0
    context.close()
