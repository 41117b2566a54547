"""img2img: 📐 takes the uploaded picture's size (rounded to 8); "Resize by" scales it instead of fixed sizes."""
from __future__ import annotations

from PIL import Image

from tests.ui.test_browser import gallery_images, set_number, wait_for_infotext


def test_size_from_image_and_resize_by(page, tmp_path):
    picture = tmp_path / "odd.png"
    Image.new("RGB", (203, 301), (30, 60, 200)).save(picture)
    page.locator("button[role=tab]:text-is('img2img')").first.click()
    page.locator("#img2img_image input[type=file]").set_input_files(str(picture))
    page.locator("#img2img_image img").first.wait_for()
    page.locator("#img2img_size_from_image").click()
    page.wait_for_function("() => document.querySelector('#img2img_width input[type=number]')?.value === '200'")
    assert page.locator("#img2img_height input[type=number]").input_value() == "304"

    page.locator("#img2img_prompt textarea").fill("a blue square")
    set_number(page, "img2img_steps", 2)
    page.locator("#img2img_size_kind").get_by_text("Resize by").click()
    set_number(page, "img2img_scale", 0.5)
    page.locator("#img2img_generate").click()
    text = wait_for_infotext(page, "img2img", "Size: 104x152")  # 101.5 x 150.5, each rounded to 8
    assert "Denoising strength" in text
    assert gallery_images(page, "img2img")[0].size == (104, 152)
