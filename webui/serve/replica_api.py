"""One replica's A1111 API in-process: the unchanged /sdapi/v1 router on its own Runtime, called without a socket."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, cast

import httpx
from fastapi import APIRouter

# Headers that describe one HTTP hop; the in-process call sets its own.
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass
class ForwardedRequest:
    """An HTTP request as the ingress received it (plain data, so Ray can ship it to a replica)."""

    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class ForwardedResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def end_to_end(headers: Any) -> list[tuple[str, str]]:
    return [(key, value) for key, value in headers if key.lower() not in HOP_HEADERS]


class ReplicaApi:
    """The same app `--nowebui` serves (route code, auth, error bodies), built from the same command-line flags."""

    def __init__(self, argv: list[str]) -> None:
        import app as launcher  # the repository's entry point owns flag parsing and the runtime/router assembly
        from webui.api.server import api_only_app, build_api_router

        args = launcher.build_parser().parse_args(argv)
        self.runtime = launcher.runtime_from_args(args)
        self.app = api_only_app(cast(APIRouter, launcher._api_router(args, self.runtime)))
        # The same routes without credentials, never exposed: the replica's own /progress snapshots for the ingress.
        self._internal = api_only_app(build_api_router(self.runtime))

    def progress_snapshot(self) -> bytes:
        """This replica's GET /progress answer (JSON), through the route code."""
        async def fetch() -> bytes:
            transport = httpx.ASGITransport(app=self._internal)
            async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
                return (await client.get("/sdapi/v1/progress")).content
        return asyncio.run(fetch())

    async def call(self, request: ForwardedRequest) -> ForwardedResponse:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        url = request.path + (f"?{request.query}" if request.query else "")
        async with httpx.AsyncClient(transport=transport, base_url="http://replica", timeout=None) as client:
            answer = await client.request(request.method, url, headers=end_to_end(request.headers),
                                          content=request.body)
        return ForwardedResponse(answer.status_code, end_to_end(answer.headers.multi_items()), answer.content)

    def call_blocking(self, request: ForwardedRequest) -> ForwardedResponse:
        """For threads without an event loop (replaying fanned-out requests)."""
        return asyncio.run(self.call(request))

    def lora_merges(self) -> int:
        """Re-merges counted by the loaded model's patcher (since that checkpoint was loaded)."""
        loaded = self.runtime.models.loaded
        return 0 if loaded is None else loaded.lora_patcher().stack_changes


class StackGate:
    """Lets one generation in at a time, preferring waiters whose LoRA stack is the one merged now.

    Requests routed to this replica queue here; serving the same stack back to back saves re-merges.
    `max_streak` bounds how long other stacks wait (no starvation).
    """

    def __init__(self, max_streak: int = 8) -> None:
        self.max_streak = max_streak
        self.current: str | None = None
        self.streak = 0
        self._busy = False
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    @contextlib.asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        if self._busy:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((key, waiter))
            try:
                await waiter
            except BaseException:
                if (key, waiter) in self._waiters:
                    self._waiters.remove((key, waiter))
                elif waiter.done() and not waiter.cancelled():
                    self._release()  # our turn came as we were cancelled: hand it on
                raise
        self._busy = True
        self.streak = self.streak + 1 if key == self.current else 1
        self.current = key
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        if not self._waiters:
            self._busy = False
            return
        same = [i for i, (key, _) in enumerate(self._waiters) if key == self.current]
        index = same[0] if same and self.streak < self.max_streak else 0
        _, waiter = self._waiters.pop(index)
        waiter.set_result(None)
