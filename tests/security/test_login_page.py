"""With --gradio-auth, nothing served before login names a model, a file or a path."""
from __future__ import annotations

import requests

from tests.security.conftest import PASSWORD, USER

# Strings that only an authenticated user may see: model names, sampler names and our folders.
PRIVATE = ("demo-shapes", "good-lora", "中文名字", "DPM++", "Euler a", "Stable-diffusion")
ROUTES = ("/", "/config", "/gradio_api/info", "/gradio_api/runs", "/info", "/gradio_api/config", "/gradio_api/api",
          "/gradio_api/queue/status", "/gradio_api/startup-events", "/theme.css", "/gradio_api/app_id")


def test_nothing_before_login_names_a_model_file_or_path(hostile_server):
    for route in ROUTES:
        response = requests.get(hostile_server.url + route, timeout=60, allow_redirects=True)
        body = response.text
        leaked = [word for word in PRIVATE + (str(hostile_server.root),) if word in body]
        assert not leaked, f"GET {route} ({response.status_code}) names {leaked}"


def test_after_login_the_page_lists_the_models(hostile_server):
    with requests.Session() as session:
        login = session.post(hostile_server.url + "/login", data={"username": USER, "password": PASSWORD},
                             timeout=60)
        assert login.status_code == 200
        for route in ("/config", "/"):
            page = session.get(hostile_server.url + route, timeout=60)
            assert page.status_code == 200 and "demo-shapes" in page.text, route
