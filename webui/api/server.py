"""Assemble the /sdapi/v1 router and serve it: on Gradio's own server (--api) or alone with uvicorn (--nowebui)."""
from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from webui.api.auth import basic_auth_dependency
from webui.api.errors import A1111Route
from webui.api.extras_routes import add_extras_routes
from webui.api.generation import add_generation_routes, make_deps
from webui.api.img2img_routes import add_img2img_routes
from webui.api.interrogate_routes import add_interrogate_routes
from webui.api.routes_control import add_control_routes
from webui.api.routes_models import add_model_routes
from webui.api.train_routes import add_training_routes
from webui.processing.runtime import Runtime

API_PREFIX = "/sdapi/v1"
TITLE = "Stable Diffusion WebUI API (A1111-compatible)"
VERSION = "1.0"
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")  # served from the swagger-ui-py package: no CDN


def build_api_router(runtime: Runtime, flags: dict[str, Any] | None = None,
                     credentials: dict[str, str] | None = None) -> APIRouter:
    """Every route under /sdapi/v1; with credentials, every one of them requires HTTP Basic auth."""
    dependencies = [Depends(basic_auth_dependency(credentials))] if credentials else []
    router = APIRouter(prefix=API_PREFIX, route_class=A1111Route, dependencies=dependencies, tags=["sdapi"])
    deps = make_deps(runtime)
    add_generation_routes(router, deps)
    add_img2img_routes(router, deps)
    add_extras_routes(router, runtime)
    add_model_routes(router, runtime)
    add_control_routes(router, runtime, flags or {})
    add_interrogate_routes(router, runtime)
    add_training_routes(router, runtime)
    return router


def swagger_ui_static() -> Path:
    """Swagger UI 5 from swagger-ui-py: it renders the OpenAPI 3.1 FastAPI emits (swagger-ui-bundle's 3.x cannot)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed (pip install -r requirements.txt)")
    return Path(spec.origin).parent / "static"


def add_docs(app: FastAPI, router: APIRouter) -> None:
    """/docs and /openapi.json describing the API routes only (Gradio's own routes stay out of them)."""
    schema: dict[str, Any] = {}

    def openapi() -> JSONResponse:
        if not schema:
            schema.update(get_openapi(title=TITLE, version=VERSION, routes=router.routes))
        return JSONResponse(schema)

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=TITLE,
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="data:,")

    def docs_asset(name: str) -> Response:
        if name not in DOCS_ASSETS:  # a fixed list: nothing else on disk is reachable through this route
            return JSONResponse({"error": "NotFound", "detail": name}, status_code=404)
        return FileResponse(swagger_ui_static() / name)

    app.add_api_route("/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs-assets/{name}", docs_asset, methods=["GET"], include_in_schema=False)


def attach_api(app: FastAPI, router: APIRouter) -> None:
    """Add the API to an app that may already be serving (Gradio's): routes are looked up per request.

    Ours go first, so they win over same-path routes of the host app (Gradio serves its own /openapi.json).
    """
    existing = list(app.router.routes)
    app.include_router(router)
    add_docs(app, router)
    added = [route for route in app.router.routes if route not in existing]
    app.router.routes[:] = added + existing


def attach_at_startup(router: APIRouter) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A `lifespan` for the host app (Gradio's `app_kwargs`) that attaches the API as the server starts.

    uvicorn runs the lifespan start-up before it opens the port, so no request can find the page up and /sdapi/v1
    or /docs still missing (attached after launch() returned, they answered 404 for the seconds launch() spends
    checking its own page, longer on a busy machine).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        attach_api(app, router)
        yield

    return lifespan


def api_only_app(router: APIRouter) -> FastAPI:
    """The --nowebui app: just the API and its docs."""
    app = FastAPI(title=TITLE, version=VERSION, docs_url=None, redoc_url=None, openapi_url=None)
    attach_api(app, router)
    return app
