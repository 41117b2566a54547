"""Progress, interrupt/skip, options, PNG info, command-line flags and memory."""
from __future__ import annotations

from typing import Any

import psutil
import torch
from fastapi import APIRouter, Body

from webui.api.images import decode_image, encode_png
from webui.api.mapping import settings_with
from webui.api.schemas import PngInfoBody, PngInfoResponse, ProgressResponse, ProgressState
from webui.processing.infotext import parse_infotext
from webui.processing.jobs import JobState
from webui.processing.png_info import read_png_parameters
from webui.processing.runtime import Runtime


def current_checkpoint_title(runtime: Runtime) -> str | None:
    """What A1111 reports as sd_model_checkpoint: the chosen one, else the loaded one, else the default."""
    registry = runtime.registry
    chosen = runtime.settings.current.sd_model_checkpoint
    loaded = runtime.models.loaded
    try:
        info = registry.find(chosen) if chosen else (loaded.checkpoint if loaded else registry.default_checkpoint())
    except ValueError:  # the stored name's file is gone
        info = loaded.checkpoint if loaded else registry.default_checkpoint()
    return registry.title(info) if info else None


def _plain_items(items: dict[str, Any]) -> dict[str, Any]:
    # PIL's info values can be bytes or tuples (dpi); JSON needs text and numbers.
    plain: dict[str, Any] = {}
    for key, value in items.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        elif not isinstance(value, (str, int, float, bool, type(None), list, dict)):
            value = str(value)
        plain[str(key)] = value
    return plain


def add_control_routes(router: APIRouter, runtime: Runtime, flags: dict[str, Any]) -> None:
    # The light routes are `async`: they must answer while every worker thread waits on the generation queue.

    @router.get("/progress", response_model=ProgressResponse, summary="The running job's progress and preview")
    async def progress(skip_current_image: bool = False) -> ProgressResponse:
        job = runtime.queue.current
        waiting = runtime.queue.pending()
        textinfo = f"{waiting} job(s) waiting" if waiting else None
        if job is None:
            return ProgressResponse(progress=0.0, eta_relative=0.0, state=ProgressState(), textinfo=textinfo)
        state = ProgressState(skipped=job.skipped, interrupted=job.interrupted, job=job.text,
                              job_count=job.job_count, job_no=job.job_no, sampling_step=job.sampling_step,
                              sampling_steps=job.sampling_steps)
        preview = job.preview
        image = encode_png(preview) if preview is not None and not skip_current_image else None
        return ProgressResponse(progress=job.progress, eta_relative=job.eta_seconds or 0.0, state=state,
                                current_image=image, textinfo=textinfo)

    @router.post("/interrupt", summary="Stop the running job; finished images are returned")
    async def interrupt() -> dict:
        runtime.queue.interrupt_current()
        return {}

    @router.post("/skip", summary="Skip the running job's current image")
    async def skip() -> dict:
        runtime.queue.skip_current()
        return {}

    @router.get("/options", summary="Settings (A1111 option names)")
    def get_options() -> dict[str, Any]:
        options = runtime.settings.current.model_dump()
        options["sd_model_checkpoint"] = current_checkpoint_title(runtime)
        loaded = runtime.models.loaded
        options["sd_checkpoint_hash"] = runtime.registry.sha256(loaded.checkpoint) if loaded else None
        return options

    @router.post("/options", summary="Change settings; a new sd_model_checkpoint is loaded now")
    def set_options(changes: dict[str, Any] = Body(...)) -> None:
        settings, known = settings_with(runtime, changes, "options")
        if known.get("sd_model_checkpoint"):
            # Load in the queue so a running generation finishes on the model it started with.
            runtime.queue.run(JobState(), lambda: runtime.models.load(settings.sd_model_checkpoint, settings.sd_vae))
        if known:
            runtime.settings.update(known)

    @router.post("/unload-checkpoint", summary="Free the loaded model's memory (the next job loads it again)")
    def unload_checkpoint() -> None:
        runtime.queue.run(JobState(), runtime.models.unload)

    @router.post("/reload-checkpoint", summary="Load the chosen checkpoint now")
    def reload_checkpoint() -> None:
        settings = runtime.settings.current
        runtime.queue.run(JobState(), lambda: runtime.models.load(settings.sd_model_checkpoint, settings.sd_vae))

    @router.post("/png-info", response_model=PngInfoResponse, summary="Read the infotext stored in an image")
    def png_info(body: PngInfoBody) -> PngInfoResponse:
        image = decode_image(body.image)
        infotext, items = read_png_parameters(image)
        infotext = infotext or ""
        parameters = parse_infotext(infotext) if infotext else {}
        return PngInfoResponse(info=infotext, items=_plain_items(items), parameters=parameters)

    @router.get("/cmd-flags", summary="The command-line flags the server runs with")
    async def cmd_flags() -> dict[str, Any]:
        return flags

    @router.get("/memory", summary="RAM and CUDA memory")
    async def memory() -> dict[str, Any]:
        ram = psutil.virtual_memory()
        result: dict[str, Any] = {"ram": {"free": ram.available, "used": ram.total - ram.available,
                                          "total": ram.total}}
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            stats = torch.cuda.memory_stats()
            result["cuda"] = {
                "system": {"free": free, "used": total - free, "total": total},
                "active": {"current": stats.get("active_bytes.all.current", 0),
                           "peak": stats.get("active_bytes.all.peak", 0)},
                "allocated": {"current": stats.get("allocated_bytes.all.current", 0),
                              "peak": stats.get("allocated_bytes.all.peak", 0)},
                "reserved": {"current": stats.get("reserved_bytes.all.current", 0),
                             "peak": stats.get("reserved_bytes.all.peak", 0)},
                "inactive": {"current": stats.get("inactive_split_bytes.all.current", 0),
                             "peak": stats.get("inactive_split_bytes.all.peak", 0)},
                "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
            }
        else:
            result["cuda"] = {"error": "CUDA is not available"}
        return result
