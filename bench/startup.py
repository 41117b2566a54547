"""Start-up: seconds from launching app.py until the page is usable and the checkpoint is loaded, and the first
Generate against the second (ratio ~1 when the start-up load spared the first one)."""
from __future__ import annotations

import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.api.server import start_server

CHROMIUM = "/usr/bin/chromium"
PAYLOAD = {"prompt": "a red circle on a white background", "steps": 20, "width": 64, "height": 64, "seed": 1,
           "sampler_name": "Euler a", "save_images": False}


def _generate(url: str) -> float:
    request = urllib.request.Request(url + "/sdapi/v1/txt2img", data=json.dumps(PAYLOAD).encode(),
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=300) as answer:
        answer.read()
    return time.monotonic() - started


def one_start(browser) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        launched = time.monotonic()
        server = start_server(Path(scratch), "--api", probe="/")
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for_selector("#txt2img_prompt textarea", timeout=120_000)
            usable = time.monotonic() - launched
            page.close()
            while "webui.models.manager: Loaded " not in server.log.read_text(errors="replace"):
                time.sleep(0.1)
            loaded = time.monotonic() - launched
            first = _generate(server.url)
            second = _generate(server.url)
        finally:
            server.stop()
    return {"usable": usable, "loaded": loaded, "first": first, "second": second}


def main(runs: int = 3) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        rows = [one_start(browser) for _ in range(runs)]
        browser.close()
    for row in rows:
        print("  ".join(f"{key} {value:.2f} s" for key, value in row.items()))
    medians = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    print("median: " + "  ".join(f"{key} {value:.2f} s" for key, value in medians.items()))
    print(f"first / second Generate: {medians['first'] / medians['second']:.2f}")


if __name__ == "__main__":
    main()
