"""The WebUI in a real browser: generate, LoRA cards, inpaint, PNG Info, send-to, settings, languages, screenshots."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from tests.demo.analyser import analyse
from tests.ui.conftest import copy_lora, goto_ready, screenshot, wait_until_mounted
from webui.conditioning import count_tokens
from webui.processing.infotext import format_infotext
from webui.processing.png_info import pnginfo_for
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def set_number(page, elem_id: str, value) -> None:
    """Type into a slider's or number's box and commit it, as a user does."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def wait_for_infotext(page, prefix: str, needle: str, timeout: float = 120_000) -> str:
    """Wait until the tab's generation info contains `needle`; on timeout say what the page shows instead."""
    try:
        page.wait_for_function(f"() => (document.querySelector('#{prefix}_infotext textarea')?.value || '')"
                               f".includes({needle!r})", timeout=timeout)
    except Exception as error:
        shown = page.locator(f"#{prefix}_infotext textarea").input_value()
        progress = page.locator(f"#{prefix}_progress").inner_text()
        raise AssertionError(f"no {needle!r} in the infotext {shown!r}; progress {progress!r}") from error
    return page.locator(f"#{prefix}_infotext textarea").input_value()


def set_dropdown(page, elem_id: str, value: str) -> None:
    field = page.locator(f"#{elem_id} input").first
    field.click()
    field.fill(value)
    page.locator(f"[role=listbox] [role=option][aria-label='{value}']").first.click()


def upload_to_editor(page, elem_id: str, path) -> float:
    """Upload a picture into an ImageEditor and return its zoom once the 64 px picture is fitted (above 100 %).

    The editor sometimes drops an upload made while it is still mounting, so an upload that does not show is
    repeated."""
    label = page.locator(f"#{elem_id}").get_by_text("%").first
    for attempt in range(3):
        if attempt:
            page.locator(f"#{elem_id} button[aria-label='Clear canvas']").click()
        page.locator(f"#{elem_id} input[type=file]").first.set_input_files(str(path))
        previous = None
        for _ in range(20):
            page.wait_for_timeout(250)
            text = label.inner_text().strip().rstrip("%") if label.count() else ""
            if text.isdigit() and int(text) > 100 and text == previous:
                return int(text) / 100
            previous = text
    raise AssertionError(f"the image editor never showed the upload (zoom {previous}%)")


def gallery_images(page, prefix: str) -> list[Image.Image]:
    """Fetch the pictures the output gallery shows, byte for byte as the browser got them."""
    sources = page.locator(f"#{prefix}_gallery img").evaluate_all("imgs => imgs.map(i => i.src)")
    pictures = []
    for source in dict.fromkeys(sources):
        response = page.request.get(source)
        assert response.ok, source
        pictures.append(Image.open(io.BytesIO(response.body())).convert("RGB"))
    return pictures


def test_txt2img_in_the_browser_matches_python(page, ui_runtime, ui_root):
    page.locator("#txt2img_prompt textarea").fill("a red circle on a white background")
    set_dropdown(page, "txt2img_sampling", "Euler a")
    set_number(page, "txt2img_steps", 20)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    page.locator("#txt2img_seed input").fill("2")
    page.locator("#txt2img_prompt textarea").click()
    tokens, limit = count_tokens("a red circle on a white background")
    assert (tokens, limit) == (7, 75)  # the counter shows what the conditioning layer counts
    page.wait_for_function("() => document.querySelector('#txt2img_token_counter')?.innerText.trim() === '7/75'")
    page.locator("#txt2img_prompt textarea").press("Control+Enter")  # A1111's shortcut for Generate
    info = page.locator("#txt2img_infotext textarea")
    wait_for_infotext(page, "txt2img", "Seed: 2,")
    text = info.input_value()
    assert text.startswith("a red circle on a white background\nSteps: 20, Sampler: Euler a")
    assert "Steps: 20, Sampler: Euler a" in text and "Size: 64x64" in text
    screenshot(page, "txt2img")
    shown = gallery_images(page, "txt2img")
    assert len(shown) == 1 and shown[0].size == (64, 64)
    seen = analyse(shown[0])  # the picture shows what the prompt asks for
    assert (seen.foreground, seen.background) == ("red", "white")

    request = make_request(Txt2ImgRequest, dict(prompt="a red circle on a white background", sampler_name="Euler a",
                                                steps=20, width=64, height=64, seed=2,
                                                checkpoint=DEFAULT_CHECKPOINT.name, save_images=False))
    python_image = txt2img(request, ui_runtime).images[0]
    assert np.array_equal(np.asarray(shown[0]), np.asarray(python_image)), "the UI must be a thin adapter"

    page.locator("button[role=tab]:text-is('Lora')").first.click()  # a card takes the shown image as preview
    card = page.locator("#txt2img_lora_cards .sdw-card[data-name=redshape]")
    card.hover()
    card.locator(".sdw-set-preview").click()
    page.wait_for_function("() => (document.querySelector('#txt2img_lora_cards .sdw-card[data-name=redshape]')"
                           "?.getAttribute('style') || '').includes('data:image/jpeg')")
    saved_preview = ui_root / "Lora" / "styles" / "redshape.preview.png"
    assert np.array_equal(np.asarray(Image.open(saved_preview).convert("RGB")), np.asarray(shown[0]))
    page.locator("button[role=tab]:text-is('Generation')").first.click()

    page.locator("#txt2img_reuse_seed").click()  # ♻ takes the seed of the shown image
    page.wait_for_function("() => document.querySelector('#txt2img_seed input')?.value === '2'")
    page.locator("#txt2img_random_seed").click()
    page.wait_for_function("() => document.querySelector('#txt2img_seed input')?.value === '-1'")


def test_lora_card_click_inserts_tag_and_refresh_finds_new_files(page, ui_root):
    page.locator("#txt2img_lora_tab-button, button[role=tab]:has-text('Lora')").first.click()
    cards = page.locator("#txt2img_lora_cards .sdw-card")
    cards.first.wait_for()
    names = cards.locator(".name").all_inner_texts()
    assert names == ["redshape", "xl_only"]
    card = page.locator("#txt2img_lora_cards .sdw-card[data-name=redshape]")
    assert card.locator(".badge").inner_text() == "SD1"
    hover = card.get_attribute("title")
    assert "Trigger words: red, shape, circle" in hover and "dim 4 / alpha 2" in hover and "made for the demo" in hover
    xl = page.locator("#txt2img_lora_cards .sdw-card[data-name=xl_only]")
    assert "incompatible" in xl.get_attribute("class") and xl.locator(".badge").inner_text() == "SDXL"

    page.locator("#txt2img_prompt textarea").fill("a circle")
    card.click()
    prompt = page.locator("#txt2img_prompt textarea")
    page.wait_for_function("() => document.querySelector('#txt2img_prompt textarea')?.value.includes('<lora:')")
    assert prompt.input_value() == "a circle, <lora:red_shape:0.8>, bold red"
    page.locator("#txt2img_neg_prompt textarea").click()  # the focused prompt receives the next click
    card.click()
    page.wait_for_function("() => document.querySelector('#txt2img_neg_prompt textarea')?.value.includes('<lora:')")

    page.locator("#txt2img_lora_search input, #txt2img_lora_search textarea").first.fill("xl")
    page.wait_for_function("() => document.querySelectorAll('#txt2img_lora_cards .sdw-card').length === 1")

    copy_lora(ui_root / "Lora" / "xl_only.safetensors", ui_root / "Lora" / "dropped_in.safetensors")
    page.locator("#txt2img_lora_search input, #txt2img_lora_search textarea").first.fill("")
    page.locator("#txt2img_lora_refresh").click()
    page.wait_for_selector("#txt2img_lora_cards .sdw-card[data-name=dropped_in]")
    screenshot(page, "txt2img-lora-cards")


def test_png_info_send_to_txt2img_restores_fields(page, tmp_path):
    text = format_infotext("a green square, (bold:1.2)", "red, blurry",
                           {"Steps": 13, "Sampler": "DPM++ 2M", "Schedule type": "Karras", "CFG scale": 4.5,
                            "Seed": 987654, "Size": "96x128", "Clip skip": 2, "Version": "v1.10.1"})
    picture = tmp_path / "a1111.png"
    Image.new("RGB", (96, 128), (20, 160, 40)).save(picture, pnginfo=pnginfo_for(text))
    page.locator("button[role=tab]:has-text('PNG Info')").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(picture))
    page.wait_for_function(
        "() => document.querySelector('#pnginfo_generation_info textarea')?.value.includes('987654')")
    screenshot(page, "pnginfo")
    page.locator("#pnginfo_send_to_txt2img").click()
    page.wait_for_function(
        "() => document.querySelector('#txt2img_prompt textarea')?.value === 'a green square, (bold:1.2)'")
    assert page.locator("#txt2img_neg_prompt textarea").input_value() == "red, blurry"
    assert page.locator("#txt2img_steps input[type=number]").input_value() == "13"
    assert page.locator("#txt2img_cfg_scale input[type=number]").input_value() == "4.5"
    assert page.locator("#txt2img_seed input").input_value() == "987654"
    assert page.locator("#txt2img_width input[type=number]").input_value() == "96"
    assert page.locator("#txt2img_height input[type=number]").input_value() == "128"
    assert page.locator("#txt2img_sampling input").input_value() == "DPM++ 2M"
    assert page.locator("#txt2img_scheduler input").input_value() == "Karras"
    assert page.locator("#setting_CLIP_stop_at_last_layers input[type=number]").input_value() == "2"
    assert page.locator("#txt2img_prompt textarea").is_visible()  # switched back to the txt2img tab


def test_styles_apply_the_shipped_negative_templates(page, ui_root):
    assert (ui_root / "styles.csv").is_file()
    page.locator("#txt2img_neg_prompt textarea").fill("cats")
    set_dropdown(page, "txt2img_styles", "Negative: landscape")
    page.locator("#txt2img_style_apply").click()
    page.wait_for_function(
        "() => document.querySelector('#txt2img_neg_prompt textarea')?.value.startsWith('cats, blurry')")
    assert "bad composition" in page.locator("#txt2img_neg_prompt textarea").input_value()


def test_settings_persist_and_every_tab_renders(page, ui_root, ui_url):
    for name in ("img2img", "Extras", "Settings"):
        page.locator(f"button[role=tab]:text-is('{name}')").first.click()
        page.wait_for_timeout(400)
        screenshot(page, name.lower())
    steps = page.locator("button[role=tab]:text-is('Defaults')")
    steps.click()
    box = page.locator("label:has-text('Default sampling steps')").locator(
        "xpath=ancestor::div[contains(@class,'block')][1]")
    number = box.locator("input[type=number]").first
    wait_until_mounted(page, number)  # typed sooner, Gradio's first fill of the new tab puts 20 back
    number.fill("17")
    number.press("Enter")
    page.locator("#settings_submit").click()
    page.wait_for_function("() => document.querySelector('#settings_result')?.innerText.includes('saved')")
    saved = json.loads((ui_root / "config.json").read_text())
    assert saved["default_steps"] == 17
    goto_ready(page, ui_url)
    page.wait_for_function("() => document.querySelector('#txt2img_steps input[type=number]')?.value === '17'")


def test_chinese_browser_gets_the_chinese_ui(browser, ui_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    goto_ready(page, ui_url)
    page.get_by_text("正向提示词").first.wait_for()
    assert page.locator("#txt2img_generate").inner_text().strip() == "生成"
    screenshot(page, "txt2img-zh-CN")
    context.close()


def test_inpaint_changes_only_the_painted_region(page, tmp_path):
    init = Image.new("RGB", (64, 64), (238, 238, 238))
    for x in range(24, 40):
        for y in range(24, 40):
            init.putpixel((x, y), (220, 30, 30))
    source = tmp_path / "init.png"
    init.save(source)
    page.locator("button[role=tab]:text-is('img2img')").first.click()
    page.locator("button[role=tab]:text-is('Inpaint')").first.click()
    zoom = upload_to_editor(page, "img2img_inpaint", source)
    canvas = page.locator("#img2img_inpaint canvas").first
    box = canvas.bounding_box()
    left = box["x"] + box["width"] / 2 - 32 * zoom
    top = box["y"] + box["height"] / 2 - 32 * zoom

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * zoom, top + y * zoom

    page.locator("#img2img_inpaint button[aria-label=Brush]").click()
    for y in range(10, 19, 4):  # strokes over image pixels 10..18; the brush (radius 8) covers about 2..26
        page.mouse.move(*at(10, y))
        page.mouse.down()
        page.mouse.move(*at(18, y), steps=8)
        page.mouse.up()
    page.locator("#img2img_prompt textarea").fill("a blue square on a black background")
    set_number(page, "img2img_steps", 12)
    set_number(page, "img2img_width", 64)
    set_number(page, "img2img_height", 64)
    set_number(page, "img2img_mask_blur", 0)
    set_number(page, "img2img_denoising_strength", 1)
    page.locator("#img2img_seed input").fill("5")
    page.locator("#img2img_generate").click()
    page.wait_for_function(
        "() => document.querySelector('#img2img_infotext textarea')?.value.includes('Seed: 5,')", timeout=60_000)
    screenshot(page, "img2img-inpaint")
    result = np.asarray(gallery_images(page, "img2img")[0], dtype=np.int16)
    original = np.asarray(init, dtype=np.int16)
    changed = np.abs(result - original).sum(-1) > 30
    assert changed[8:20, 8:20].mean() > 0.5, "the painted block must be repainted"
    untouched = np.ones((64, 64), bool)
    untouched[:29, :29] = False  # the painted block plus the brush's reach
    differs = np.argwhere((np.abs(result - original).sum(-1) > 0) & untouched)
    assert np.array_equal(result[untouched], original[untouched]), f"changed outside the mask: {differs[:10]}"


def test_progress_shows_eta_and_interrupt_keeps_finished_images(page):
    page.locator("#txt2img_prompt textarea").fill("a yellow triangle on a navy background")
    set_number(page, "txt2img_steps", 20)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_batch_count", 40)
    page.locator("#txt2img_generate").click()
    page.wait_for_function("() => /Step \\d+\\/20 · Batch \\d+\\/40 · ETA \\d\\d:\\d\\d/"
                           ".test(document.querySelector('#txt2img_progress')?.innerText || '')", timeout=60_000)
    page.wait_for_function("() => /Batch ([3-9]|\\d\\d)\\/40/"
                           ".test(document.querySelector('#txt2img_progress')?.innerText || '')", timeout=60_000)
    screenshot(page, "txt2img-progress")
    other = page.context.new_page()  # a second browser tab is a second session: it waits its turn
    goto_ready(other, page.url)
    set_number(other, "txt2img_width", 64)
    set_number(other, "txt2img_height", 64)
    other.locator("#txt2img_generate").click()
    other.wait_for_function("() => (document.querySelector('#txt2img_progress')?.innerText || '')"
                            ".includes('Waiting in queue: position 1')", timeout=30_000)
    page.locator("#txt2img_interrupt").click()
    page.wait_for_function("() => (document.querySelector('#txt2img_progress')?.innerText || '')"
                           ".includes('Interrupted')", timeout=60_000)
    count = len(gallery_images(page, "txt2img"))
    assert 3 <= count < 41  # a grid plus the finished images, never all 40
    # Interrupt acted on this session's job only; the waiting one then runs to the end.
    wait_for_infotext(other, "txt2img", "Size: 64x64")


def test_send_to_extras_and_inpaint_and_readable_warnings(page):
    page.locator("#txt2img_prompt textarea").fill("a green square on a gray background <lora:not_there:1>")
    set_number(page, "txt2img_steps", 8)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    page.locator("#txt2img_generate").click()
    page.get_by_text("not_there").first.wait_for()  # a missing LoRA is a readable warning, not a crash
    wait_for_infotext(page, "txt2img", "Steps: 8, Sampler: DPM++ 2M")
    generated = gallery_images(page, "txt2img")[0]

    page.locator("#txt2img_send_to_extras").click()
    page.locator("#extras_generate").wait_for(state="visible")
    set_number(page, "extras_upscaling_resize", 2)
    page.locator("#extras_generate").click()
    page.wait_for_function("() => !!document.querySelector('#extras_result img')", timeout=60_000)
    source = page.locator("#extras_result img").first.get_attribute("src")
    upscaled = Image.open(io.BytesIO(page.request.get(source).body())).convert("RGB")
    assert upscaled.size == (128, 128)
    screenshot(page, "extras")
    back = np.asarray(upscaled.resize((64, 64), Image.Resampling.BOX), dtype=np.int16)
    assert np.abs(back - np.asarray(generated, dtype=np.int16)).mean() < 6  # the same picture, twice the size

    page.locator("button[role=tab]:text-is('txt2img')").first.click()
    page.locator("#txt2img_send_to_inpaint").click()
    page.wait_for_function("() => document.querySelector('#img2img_prompt textarea')?.value.includes('green square')")
    screenshot(page, "img2img-sent-to-inpaint")
    page.locator("#img2img_inpaint canvas").first.wait_for(state="visible")
    assert page.locator("#img2img_steps input[type=number]").input_value() == "8"
    page.locator("#img2img_inpaint_controls").wait_for(state="visible")  # mask settings show on the inpaint tab


def test_language_switch_in_settings(page):
    page.locator("button[role=tab]:text-is('Settings')").first.click()
    page.locator("button[role=tab]:text-is('User interface')").click()
    set_dropdown(page, "settings_localization", "zh-CN")
    page.locator("#settings_submit").click()
    page.wait_for_function("() => (document.querySelector('#txt2img_generate')?.innerText || '').includes('生成')",
                           timeout=30_000)  # saved, reloaded, and shown in Chinese in an English browser
    assert page.get_by_text("正向提示词").first.is_visible()
    # Gradio re-labels only the shown tabs on a runtime language switch, so either label may be on these.
    page.locator("button[role=tab]:text-is('设置'), button[role=tab]:text-is('Settings')").first.click()
    page.locator("button[role=tab]:text-is('用户界面'), button[role=tab]:text-is('User interface')").first.click()
    set_dropdown(page, "settings_localization", "Auto")
    page.locator("#settings_submit").click()
    page.wait_for_function("() => (document.querySelector('#txt2img_generate')?.innerText || '').trim() === 'Generate'",
                           timeout=30_000)
