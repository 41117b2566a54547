"""HTTP errors in A1111's JSON shape, raised and rendered inside each API route (no app-level handlers needed)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Coroutine

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from webui.errors import UserInputError
from webui.models.architectures import UnsupportedModelError
from webui.processing.prompt_budget import PromptBudgetExceeded
from webui.processing.request import describe_validation_errors
from webui.sampling.names import UnknownSamplerError

log = logging.getLogger(__name__)

# Bodies above this are refused before they are read; a 4096x4096 PNG in base64 stays well under it.
MAX_BODY_BYTES = 128 * 1024 * 1024


class ApiError(Exception):
    """A user mistake with its HTTP status; `kind` becomes the `error` field of the JSON body."""

    def __init__(self, status: int, detail: str, kind: str = "ApiError") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind


def error_body(kind: str, detail: Any, errors: Any = "") -> dict[str, Any]:
    """A1111's error body: {error, detail, body, errors}."""
    return {"error": kind, "detail": detail, "body": "", "errors": errors if errors != "" else str(detail)}


def _plain(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # pydantic puts exception objects into `ctx`; they are not JSON, so keep only the readable parts.
    return [{"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))}
            for item in errors]


def response_for(error: Exception) -> JSONResponse:
    """Map an exception to its status: user mistakes are 4xx, anything else is a 500 that is logged."""
    if isinstance(error, ApiError):
        return JSONResponse(error_body(error.kind, error.detail), status_code=error.status)
    if isinstance(error, RequestValidationError):
        errors = _plain(list(error.errors()))
        detail = describe_validation_errors(errors, "body")
        return JSONResponse(error_body("RequestValidationError", detail, errors), status_code=422)
    if isinstance(error, StarletteHTTPException) and isinstance(error.__cause__, RecursionError):
        error = RecursionError()  # FastAPI's "error parsing the body" for JSON nested deeper than the decoder goes
    if isinstance(error, RecursionError):  # JSON nested deeper than the decoder's stack: the client's doing
        return JSONResponse(error_body("RequestValidationError", "The request body is nested too deeply"),
                            status_code=422)
    if isinstance(error, StarletteHTTPException):
        return JSONResponse(error_body("HTTPException", error.detail), status_code=error.status_code,
                            headers=getattr(error, "headers", None))
    if isinstance(error, UnknownSamplerError):
        return JSONResponse(error_body("UnknownSamplerError", str(error)), status_code=400)
    if isinstance(error, PromptBudgetExceeded):  # as a prompt over MAX_PROMPT_CHARS: the request cannot be done
        return JSONResponse(error_body(type(error).__name__, str(error)), status_code=422)
    if isinstance(error, (UserInputError, UnsupportedModelError)):
        return JSONResponse(error_body(type(error).__name__, str(error)), status_code=400)
    log.exception("API request failed", exc_info=error)
    return JSONResponse(error_body(type(error).__name__, str(error)), status_code=500)


class A1111Route(APIRoute):
    """Every /sdapi/v1 route answers errors as JSON, refuses oversized bodies, and reports its duration.

    Doing this per route (not with app exception handlers or middleware) lets the same router be added to
    Gradio's already-running app, whose middleware stack is fixed once it has served its first request.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            started = time.perf_counter()
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
                response: Response = response_for(ApiError(
                    413, f"Request body of {int(length)} bytes is over the {MAX_BODY_BYTES} byte limit",
                    "PayloadTooLarge"))
            else:
                try:
                    response = await handler(request)
                except Exception as error:  # noqa: BLE001 - every failure becomes a JSON answer
                    response = response_for(error)
            response.headers["X-Process-Time"] = f"{time.perf_counter() - started:.4f}"
            return response

        return guarded
