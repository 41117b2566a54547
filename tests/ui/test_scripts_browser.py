"""The X/Y/Z plot in a real browser: pick the script, fill the axes, generate, see the grid, send a cell back."""
from __future__ import annotations

import pytest

from tests.demo.analyser import analyse
from tests.ui.conftest import screenshot
from tests.ui.test_browser import gallery_images, set_dropdown, set_number, wait_for_infotext

pytestmark = pytest.mark.browser


def test_xyz_plot_from_the_page_shows_the_grid_and_sends_a_cell_to_txt2img(page):
    page.locator("#txt2img_prompt textarea").fill("a red circle on a white background")
    set_dropdown(page, "txt2img_sampling", "Euler")
    set_number(page, "txt2img_steps", 20)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_dropdown(page, "txt2img_script", "X/Y/Z plot")
    page.locator("#txt2img_xyz_X_type").wait_for()
    # A list-valued axis offers the fill button, which puts every choice into its multi-select.
    set_dropdown(page, "txt2img_xyz_X_type", "Sampler")
    page.locator("#txt2img_xyz_X_fill").click()
    page.wait_for_function("() => (document.querySelector('#txt2img_xyz_X_values_dropdown')?.innerText || '')"
                           ".includes('DPM++ 2M')")
    set_dropdown(page, "txt2img_xyz_X_type", "Prompt S/R")
    page.locator("#txt2img_xyz_X_values textarea, #txt2img_xyz_X_values input").first.fill("red, green")
    set_dropdown(page, "txt2img_xyz_Y_type", "Seed")
    page.locator("#txt2img_xyz_Y_values textarea, #txt2img_xyz_Y_values input").first.fill("1, 2")
    page.locator("#txt2img_generate").click()
    grid_info = wait_for_infotext(page, "txt2img", "Script: X/Y/Z plot")
    assert 'X Values: "red, green"' in grid_info and "Y Type: Seed" in grid_info
    pictures = gallery_images(page, "txt2img")
    grid, cells = pictures[0], pictures[1:]
    assert len(cells) == 4 and all(cell.size == (64, 64) for cell in cells)
    assert grid.width > 2 * 64 and grid.height > 2 * 64  # the cells plus the label bands
    assert [analyse(cell).foreground for cell in cells] == ["red", "green", "red", "green"]
    screenshot(page, "xyz_plot")

    page.locator("#txt2img_gallery button img, #txt2img_gallery .thumbnail-item img").nth(4).click()
    wait_for_infotext(page, "txt2img", "a green circle on a white background\n")
    page.locator("#txt2img_script_send_to_txt2img").click()
    page.wait_for_function("() => document.querySelector('#txt2img_prompt textarea')?.value === "
                           "'a green circle on a white background'")
    page.wait_for_function("() => document.querySelector('#txt2img_seed input')?.value === '2'")
