"""PNG Info → Send to txt2img/img2img restores every pasted field, so regenerating gives the same pixels."""
from __future__ import annotations

import numpy as np
from PIL import Image

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from tests.ui.conftest import screenshot
from tests.ui.test_browser import gallery_images, wait_for_infotext
from webui.processing.infotext import format_infotext
from webui.processing.png_info import pnginfo_for
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img


def _checked(page, elem_id: str) -> bool:
    return page.locator(f"#{elem_id} input[type=checkbox]").is_checked()


def _radio(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input[type=radio]:checked").evaluate("e => e.value")


def test_png_info_round_trip_regenerates_the_same_pixels(page, ui_runtime, tmp_path):
    fields = dict(prompt="a blue circle on a yellow background", negative_prompt="red", steps=4,
                  sampler_name="Euler", scheduler="Karras", cfg_scale=5.0, seed=11, width=64, height=64,
                  subseed=7, subseed_strength=0.3, clip_skip=2, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent",
                  hr_second_pass_steps=2, denoising_strength=0.6, hr_sampler_name="DPM++ 2M",
                  hr_prompt="a blue circle on a white background", checkpoint=DEFAULT_CHECKPOINT.name,
                  save_images=False)
    result = txt2img(make_request(Txt2ImgRequest, fields), ui_runtime)
    text = result.infotexts[0]
    for key in ("Hires upscale: 1.5", "Variation seed: 7", "Clip skip: 2", "Schedule type: Karras",
                "Denoising strength: 0.6", "Hires sampler: DPM++ 2M", "Hires prompt:"):
        assert key in text
    picture = tmp_path / "made.png"
    result.images[0].save(picture, pnginfo=pnginfo_for(text))

    page.locator("button[role=tab]:has-text('PNG Info')").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(picture))
    page.wait_for_function("() => document.querySelector('#pnginfo_generation_info textarea')?.value"
                           ".includes('Hires upscale')")
    screenshot(page, "pnginfo-round-trip")
    page.locator("#pnginfo_send_to_txt2img").click()
    page.wait_for_function("() => document.querySelector('#txt2img_prompt textarea')?.value.includes('blue circle')")
    assert _checked(page, "txt2img_enable_hr")
    assert page.locator("#txt2img_hr_scale input[type=number]").input_value() == "1.5"
    assert page.locator("#hr_sampler input").input_value() == "DPM++ 2M"
    assert page.locator("#txt2img_subseed input").input_value() == "7"
    page.locator("#txt2img_generate").click()
    shown_text = wait_for_infotext(page, "txt2img", "Seed: 11,")
    assert shown_text == text
    shown = gallery_images(page, "txt2img")
    assert shown[0].size == (96, 96)
    assert np.array_equal(np.asarray(shown[0]), np.asarray(result.images[0].convert("RGB")))

    # img2img: denoising and every mask setting come back too.
    inpaint_text = format_infotext("a red square", "", {
        "Steps": 6, "Sampler": "Euler", "Schedule type": "Automatic", "CFG scale": 7, "Seed": 3, "Size": "64x64",
        "Denoising strength": 0.45, "Mask blur": 9, "Masked content": "latent noise", "Inpaint area": "Only masked",
        "Masked area padding": 48, "Mask mode": "Inpaint not masked"})
    inpaint_picture = tmp_path / "inpaint.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(inpaint_picture, pnginfo=pnginfo_for(inpaint_text))
    page.locator("button[role=tab]:has-text('PNG Info')").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(inpaint_picture))
    page.wait_for_function("() => document.querySelector('#pnginfo_generation_info textarea')?.value"
                           ".includes('Mask blur: 9')")
    page.locator("#pnginfo_send_to_img2img").click()
    page.wait_for_function("() => document.querySelector('#img2img_prompt textarea')?.value === 'a red square'")
    assert page.locator("#img2img_denoising_strength input[type=number]").input_value() == "0.45"
    page.locator("button[role=tab]:text-is('Inpaint')").first.click()  # the mask settings show on inpaint
    page.locator("#img2img_inpaint_controls").wait_for(state="visible")
    assert page.locator("#img2img_mask_blur input[type=number]").input_value() == "9"
    assert _radio(page, "img2img_inpainting_fill") == "latent noise"
    assert _radio(page, "img2img_inpaint_full_res") == "Only masked"
    assert _radio(page, "img2img_mask_mode") == "Inpaint not masked"
    assert page.locator("#img2img_inpaint_full_res_padding input[type=number]").input_value() == "48"
