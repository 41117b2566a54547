"""The result panel: live previews mid-run, whole portrait images, named hires passes, where the file went."""
from __future__ import annotations

import re
from pathlib import Path

from tests.ui.conftest import screenshot
from tests.ui.test_browser import set_number, wait_for_infotext
from webui.processing.outputs import apply_pattern
from webui.ui import result_files

# Records, while a job runs, every picture the gallery shows and every progress text, so the test asserts on what
# the user saw between the start and the end of the job.
RECORDER = """() => {
  window.sdwSeen = { previews: [], progress: [] };
  const note = () => {
    const text = document.querySelector('#txt2img_progress')?.innerText || '';
    if (text && window.sdwSeen.progress.at(-1) !== text) { window.sdwSeen.progress.push(text); }
    if (/Step \\d+/.test(text)) {
      for (const img of document.querySelectorAll('#txt2img_gallery img')) {
        if (!window.sdwSeen.previews.includes(img.src)) { window.sdwSeen.previews.push(img.src); }
      }
    }
  };
  new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true,
                                                     characterData: true });
}"""


def _object_fit(page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all("els => els.map(e => getComputedStyle(e).objectFit)")


def test_preview_portrait_progress_and_saved_path(page, ui_url, ui_root, monkeypatch):
    page.locator("button[role=tab]:text-is('Settings')").first.click()
    placeholder = page.locator("#setting_samples_filename_pattern textarea").get_attribute("placeholder")
    page.locator("button[role=tab]:text-is('txt2img')").first.click()

    page.locator("#txt2img_prompt textarea").fill("a red circle on a white background")
    set_number(page, "txt2img_steps", 20)
    set_number(page, "txt2img_width", 224)
    set_number(page, "txt2img_height", 320)
    page.locator("#txt2img_seed input").fill("4")
    page.evaluate(RECORDER)
    page.locator("#txt2img_generate").click()
    # A live preview shows while the job still runs (the default period gives several in 20 steps).
    page.wait_for_function("() => window.sdwSeen.previews.length >= 1", timeout=60_000)
    screenshot(page, "txt2img-live-preview")
    wait_for_infotext(page, "txt2img", "Seed: 4,")
    seen = page.evaluate("window.sdwSeen")
    assert len(seen["previews"]) >= 3, seen["progress"]
    assert not any("Loading model" in text for text in seen["progress"])  # the model was loaded already

    # Portrait results are shown whole, in the gallery and in the opened (lightbox) view.
    assert set(_object_fit(page, "#txt2img_gallery img")) == {"contain"}
    page.locator("#txt2img_gallery img").first.click()
    page.wait_for_timeout(300)  # the preview view mounts its large image
    assert set(_object_fit(page, "#txt2img_gallery img")) == {"contain"}
    screenshot(page, "txt2img-portrait")

    # Where did it go: the saved path, named as the Settings placeholder says, and 📂 for this local browser.
    shown = page.locator("#txt2img_progress .sdw-saved code").inner_text()
    saved = Path(shown)
    assert saved.is_file() and saved.is_relative_to(ui_root)
    assert re.fullmatch(r"\d{5}-" + re.escape(apply_pattern(placeholder, seed=4, tags={})) + r"\.png", saved.name)
    opened = []
    monkeypatch.setattr(result_files, "launch_file_manager", opened.append)
    page.locator("#txt2img_progress .sdw-open-folder").click()
    for _ in range(50):
        if opened:
            break
        page.wait_for_timeout(100)
    assert opened == [saved.parent.resolve()]
    # A remote browser gets a download link instead; it serves the saved file byte for byte.
    remote = result_files.saved_html([str(saved)], "txt2img", local=False)
    assert "sdw-open-folder" not in remote
    link = re.search(r"href='([^']+)'", remote).group(1)
    assert page.request.get(ui_url.rstrip("/") + link).body() == saved.read_bytes()

    # Hires fix: the progress names the passes instead of counting them as a batch of two.
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 12)
    page.locator("#txt2img_hr").get_by_text("Hires. fix").first.click()
    page.locator("#txt2img_enable_hr input[type=checkbox]").check()
    set_number(page, "txt2img_hires_steps", 12)
    page.evaluate("window.sdwSeen.progress = []")
    page.locator("#txt2img_generate").click()
    wait_for_infotext(page, "txt2img", "Hires upscale")
    texts = page.evaluate("window.sdwSeen.progress")
    assert any("Hires pass" in text for text in texts), texts
    assert not any("Batch" in text for text in texts), texts
