"""Ray Serve deployments: an ingress speaking /sdapi/v1 that routes by LoRA stack, and workers owning a Runtime."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from typing import Any

import ray
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from webui.api.errors import error_body
from webui.serve.replica_api import ForwardedRequest, ForwardedResponse, ReplicaApi, StackGate, end_to_end
from webui.serve.routing import GENERATION_PATHS, key_of_body

API_PREFIX = "/sdapi/v1"
# Requests whose effect every replica must see; interrupt and skip reach the replica running the job this way.
FAN_OUT = frozenset(f"{API_PREFIX}/{name}" for name in (
    "options", "refresh-checkpoints", "refresh-vae", "refresh-loras", "interrupt", "skip", "unload-checkpoint",
    "reload-checkpoint"))
MOMENTARY = frozenset({f"{API_PREFIX}/interrupt", f"{API_PREFIX}/skip"})
RETRY_AFTER_S = 5
# Detached (it outlives the replica that created it, so a killed replica never takes the shared state along).
STATE_NAMESPACE = "webui-serve"
POLL_S = 0.25
PROGRESS_FRESH_S = 2.0
PROGRESS_PATH = f"{API_PREFIX}/progress"
# Each replica has one set of weights; it keeps this many stacks registered with the router, so requests for
# them keep landing on it (its StackGate then runs them back to back).
STACKS_PER_REPLICA = 4


@ray.remote(num_cpus=0)
class ClusterState:
    """What every replica must agree on: the fanned-out requests in order, the options, and each replica's stats."""

    def __init__(self) -> None:
        self.events: list[ForwardedRequest] = []
        self.settings: dict[str, Any] = {}
        self.stats: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, tuple[float, bytes]] = {}

    def publish(self, event: ForwardedRequest) -> int:
        self.events.append(event)
        if event.path == f"{API_PREFIX}/options":
            try:
                self.settings.update(json.loads(event.body or b"{}"))
            except (ValueError, TypeError):
                pass
        return len(self.events)

    def since(self, seen: int) -> list[ForwardedRequest]:
        return self.events[seen:]

    def option(self, key: str) -> Any:
        return self.settings.get(key)

    def report(self, replica: str, stats: dict[str, Any]) -> None:
        self.stats[replica] = stats

    def report_progress(self, replica: str, body: bytes | None) -> None:
        if body is None:
            self.progress.pop(replica, None)
        else:
            self.progress[replica] = (time.monotonic(), body)

    def running_progress(self) -> bytes | None:
        """The freshest /progress of a replica that is generating now (None when none is)."""
        fresh = [entry for entry in self.progress.values() if time.monotonic() - entry[0] < PROGRESS_FRESH_S]
        return max(fresh)[1] if fresh else None

    def all_stats(self) -> dict[str, dict[str, Any]]:
        return dict(self.stats)


def cluster_state(name: str) -> Any:
    actor_class: Any = ClusterState  # ray's decorator hides .options from type checkers
    return actor_class.options(name=name, namespace=STATE_NAMESPACE, get_if_exists=True, lifetime="detached").remote()


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=8, health_check_period_s=2,
                  health_check_timeout_s=30, graceful_shutdown_timeout_s=2)
class Worker:
    """One replica: one Runtime (model manager, LoRA patcher, queue) serving the unchanged route code."""

    def __init__(self, argv: list[str], state_name: str, torch_threads: int = 0, affinity: bool = True) -> None:
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        self.api = ReplicaApi(argv)
        self.state = cluster_state(state_name)
        self.gate = StackGate() if affinity else None
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.served = 0
        self.running = 0
        self._seen = 0
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._sync(momentary=False)
        threading.Thread(target=self._poll, name="fan-out", daemon=True).start()

    def _sync(self, momentary: bool = True) -> None:
        """Replay every fanned-out request this replica has not seen yet, in order, through its own routes.

        A new replica (a restart too) catches up with options and refreshes but not with past interrupts or skips.
        """
        with self._sync_lock:
            for event in ray.get(self.state.since.remote(self._seen)):
                if momentary or event.path not in MOMENTARY:
                    self.api.call_blocking(event)
                self._seen += 1

    def _poll(self) -> None:
        # A thread, so /interrupt reaches a replica whose event loop is waiting on a long generation.
        # It also publishes this replica's /progress while it generates, so the ingress can answer for the job.
        publishing = False
        while not self._stop.wait(POLL_S):
            try:
                self._sync()
                if self.running or publishing:
                    snapshot = self.api.progress_snapshot() if self.running else None
                    ray.get(self.state.report_progress.remote(self.replica, snapshot))
                    publishing = snapshot is not None
            except Exception:  # the state actor restarting must not end the thread
                continue

    @serve.multiplexed(max_num_models_per_replica=STACKS_PER_REPLICA)
    async def stack(self, key: str) -> str:
        """Registers the stack with the router; the weights themselves are merged lazily by the patcher."""
        return key

    async def handle(self, request: ForwardedRequest) -> ForwardedResponse:
        key = serve.get_multiplexed_model_id()
        if key:
            await self.stack(key)
        await asyncio.to_thread(self._sync)
        if request.path not in GENERATION_PATHS:
            return await self.api.call(request)
        gate = self.gate.turn(key or key_of_body(request.body)) if self.gate is not None else contextlib.nullcontext()
        async with gate:
            self.running += 1
            await self.state.report.remote(self.replica, self.stats())
            try:
                answer = await self.api.call(request)
            finally:
                self.running -= 1
                self.served += 1
        await self.state.report.remote(self.replica, self.stats())
        return answer

    def stats(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "served": self.served, "running": self.running,
                "lora_merges": self.api.lora_merges()}

    def __del__(self) -> None:
        self._stop.set()


def _idle(progress_body: bytes) -> bool:
    try:
        return not json.loads(progress_body).get("state", {}).get("job_count")
    except (ValueError, AttributeError):
        return False


def _unavailable(detail: str) -> Response:
    return JSONResponse(error_body("ServiceUnavailable", detail), status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1024)
class Ingress:
    """Speaks /sdapi/v1 over HTTP; generation goes to the replica holding its stack, shared changes go to all."""

    def __init__(self, worker: DeploymentHandle, state_name: str, multiplex: bool = True) -> None:
        self.worker = worker
        self.state = cluster_state(state_name)
        self.multiplex = multiplex

    async def _key(self, request: ForwardedRequest) -> str:
        if not self.multiplex or request.method != "POST" or request.path not in GENERATION_PATHS:
            return ""
        return key_of_body(request.body, await self.state.option.remote("sd_model_checkpoint") or "")

    async def __call__(self, http: Request) -> Response:
        if http.url.path == "/serve/stats":
            return JSONResponse(await self.state.all_stats.remote())
        if not http.url.path.startswith(API_PREFIX + "/"):
            return JSONResponse(error_body("NotFound", "Not Found"), status_code=404)
        request = ForwardedRequest(http.method, http.url.path, http.url.query, end_to_end(http.headers.items()),
                                   await http.body())
        key = await self._key(request)
        handle = self.worker.options(multiplexed_model_id=key) if key else self.worker
        try:
            answer: ForwardedResponse = await handle.handle.remote(request)
        except (RayActorError, ActorUnavailableError) as error:
            return _unavailable(f"The worker running this request stopped ({type(error).__name__}); retry")
        if request.method == "POST" and request.path in FAN_OUT and answer.status < 400:
            await self.state.publish.remote(request)
        body = answer.body
        if request.path == PROGRESS_PATH and answer.status == 200 and _idle(body):
            # The replica the router picked (it checked auth) is idle: report the one that runs a job, if any.
            body = await self.state.running_progress.remote() or body
        return Response(body, status_code=answer.status, headers=dict(answer.headers))
