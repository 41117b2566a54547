"""First start with no checkpoint of the user's own: the page says the demo model is in use, the form starts at its
native 64 px, and Generate with the defaults draws what the prompt asks for."""
from __future__ import annotations

import pytest

from tests.demo.analyser import analyse, matches
from tests.ui.conftest import screenshot
from tests.ui.test_browser import gallery_images, wait_for_infotext

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_default_generate_on_the_demo_model_draws_the_prompt_at_64_px(page):
    notice = page.locator("#demo_notice")
    assert notice.is_visible() and "Demo model" in notice.inner_text()
    for side in ("width", "height"):
        assert page.locator(f"#txt2img_{side} input[type=number]").first.input_value() == "64"
    page.locator("#txt2img_prompt textarea").fill("a red circle on a white background")
    # Every control keeps its default (DPM++ 2M, 20 steps, CFG 7) except the seed, fixed so the test is repeatable.
    page.locator("#txt2img_seed input").fill("7")
    page.locator("#txt2img_generate").click()
    text = wait_for_infotext(page, "txt2img", "Seed: 7,")
    assert "Size: 64x64" in text and "Sampler: DPM++ 2M" in text and "Steps: 20" in text
    shown = gallery_images(page, "txt2img")
    screenshot(page, "demo-first-start")
    assert len(shown) == 1 and shown[0].size == (64, 64)
    assert matches(analyse(shown[0]), "red", "circle", "white") == (True, True, True), analyse(shown[0])
