"""/docs renders the API's OpenAPI 3.1 description offline: Swagger UI lists the routes."""
from __future__ import annotations

import threading
import time

import pytest
import uvicorn

from tests.ui.conftest import free_port, screenshot
from webui.api.server import api_only_app, build_api_router


@pytest.fixture()
def api_url(ui_runtime):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api_only_app(build_api_router(ui_runtime)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # uvicorn sets this once it listens
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_docs_page_lists_the_api_routes(browser, api_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(api_url + "/docs")
    assert page.request.get(api_url + "/openapi.json").json()["openapi"].startswith("3.1")
    page.locator(".opblock-summary-path", has_text="/sdapi/v1/txt2img").first.wait_for(timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/sdapi/v1/img2img" in [p.replace("\u200b", "") for p in paths]
    assert page.locator(".errors-wrapper").count() == 0
    assert all(url.startswith(api_url) or url.startswith("data:") for url in requested)  # nothing from a CDN
    screenshot(page, "api-docs")
    context.close()
