"""Before login, Gradio's page must not name models or files: strip the API listing it embeds for anonymous visitors."""
from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Gradio renders its index page (also at /gradio_api/runs) with `window.gradio_api_info = {...}`: every endpoint
# with its choices (checkpoint names, samplers …), even for a visitor who has not logged in yet.
PAGE_PATHS = frozenset({"/", "/gradio_api/runs", "/gradio_api/runs/"})
_API_INFO = re.compile(rb"(window\.gradio_api_info = ).*?(;</script>)", re.DOTALL)
_EMPTY_INFO = b'{"named_endpoints": {}, "unnamed_endpoints": {}}'


def _logged_in(scope: Scope) -> bool:
    app = scope.get("app")
    auth = getattr(app, "auth", None)
    if not auth and getattr(app, "auth_dependency", None) is None:
        return True  # no login configured: the page is public anyway
    cookie_id = getattr(app, "cookie_id", "")
    tokens = getattr(app, "tokens", {}) or {}
    cookies = {}
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, item = part.strip().partition("=")
                cookies[key] = item
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return bool(token) and token in tokens


class LoginPageGuard:
    """ASGI middleware for Gradio's app: anonymous GETs of the page get it without the embedded API listing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope.get("type") != "http" or scope.get("method") != "GET" or scope.get("path") not in PAGE_PATHS
                or _logged_in(scope)):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        body = bytearray()

        async def collect(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    cleaned = _API_INFO.sub(lambda m: m.group(1) + _EMPTY_INFO + m.group(2), bytes(body))
                    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    headers.append((b"content-length", str(len(cleaned)).encode()))
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": cleaned})
            else:
                await send(message)

        await self.app(scope, receive, collect)


def guarded_app_kwargs() -> dict[str, Any]:
    """`app_kwargs` for Gradio's launch(): installs the guard as the app's first middleware."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(LoginPageGuard)]}  # type: ignore[arg-type]
