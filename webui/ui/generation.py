"""Run one generation through the shared queue and stream its progress, ETA and live preview to the page."""
from __future__ import annotations

import html
import threading
from typing import Any, Callable, Iterator

import gradio as gr
import torch

from webui.processing.jobs import JobState
from webui.processing.runtime import Runtime
from webui.processing.txt2img import GenerationResult
from webui.ui.messages import catalogued, show_warning, shown_error, ui_message, ui_text
from webui.ui.result_files import saved_html

POLL_SECONDS = 0.4


class SessionJobs:
    """The job each browser session started last, so its Interrupt/Skip buttons act on its own job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobState] = {}

    def put(self, session: str, job: JobState) -> None:
        with self._lock:
            self._jobs[session] = job

    def get(self, session: str) -> JobState | None:
        with self._lock:
            return self._jobs.get(session)

    def drop(self, session: str, job: JobState) -> None:
        with self._lock:
            if self._jobs.get(session) is job:
                del self._jobs[session]


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = max(0, int(round(seconds)))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes:02d}:{seconds:02d}" if minutes < 60 else f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def progress_html(job: JobState, position: int | None, loading: str | None = None) -> str:
    """Waiting: the queue position. Running: a bar with step/total, the pass and image number, and ETA.

    `loading` names the checkpoint being read from disk; before the first step without one, the job is preparing.
    """
    if position is not None and position > 0:
        return f"<div class='sdw-progress'>{ui_text('Waiting in queue: position {position}', position=position)}</div>"
    percent = int(job.progress * 100)
    if loading:
        steps = ui_text("Loading model {name}…", name=html.escape(loading))
    else:
        steps = (ui_text("Step {step}/{steps}", step=job.sampling_step, steps=job.sampling_steps)
                 if job.sampling_steps else ui_text("Preparing…"))
    passes = max(1, len(job.pass_names))
    images = max(1, job.job_count // passes)
    current = min(job.job_no, job.job_count - 1) if job.job_count else 0
    batch = f" · {ui_message(job.pass_names[current % passes])}" if job.pass_names else ""
    if images > 1:
        batch += " · " + ui_text("Batch {number}/{count}", number=current // passes + 1, count=images)
    if job.text:  # a script's "Cell 3 / 12": the ETA then covers the whole plot
        batch = f" · {ui_message(job.text)}"
    eta = ui_text("ETA {eta}", eta=format_eta(job.eta_seconds))
    return (f"<div class='sdw-progress'><div class='bar'><div style='width:{percent}%'></div></div>"
            f"<span class='sdw-progress-text'>{percent}% · {steps}{batch} · {eta}</span></div>")


def readable_error(error: BaseException) -> str:
    """The message a user sees for a failed job; the page keeps working afterwards."""
    if isinstance(error, ValueError):  # UserInputError and every model/LoRA file error derive from it
        return str(error)
    if isinstance(error, torch.OutOfMemoryError):
        return catalogued("Out of memory: try a smaller size or batch size, or start with --medvram / --lowvram.")
    return f"{type(error).__name__}: {error}"


def stream_generation(runtime: Runtime, jobs: SessionJobs, session: str, job: JobState,
                      work: Callable[[JobState], GenerationResult], *, prefix: str = "",
                      local: bool = False) -> Iterator[tuple[Any, Any, Any, Any]]:
    """Yield (gallery, infotexts state, info text, progress html) while the job waits, runs and finishes.

    The last progress html lists the saved files (with 📂 for a `local` browser, else download links)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with runtime.queue.slot(job):
                outcome["result"] = work(job)
        except BaseException as error:  # reported to the page below; the worker thread must not die silently
            outcome["error"] = error

    jobs.put(session, job)
    worker = threading.Thread(target=run, name="generation", daemon=True)
    worker.start()
    shown_preview = None
    try:
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            preview = job.preview
            gallery = gr.skip()
            if preview is not None and preview is not shown_preview:
                shown_preview, gallery = preview, [preview]
            yield gallery, gr.skip(), gr.skip(), progress_html(job, runtime.queue.position(job), runtime.models.loading)
    finally:
        jobs.drop(session, job)
    if "error" in outcome:
        raise shown_error(ui_message(readable_error(outcome["error"])))
    result: GenerationResult = outcome["result"]
    for warning in result.warnings:
        show_warning(ui_message(warning))
    images = ([result.grid] if result.grid is not None else []) + result.images
    grid_text = result.grid_infotext or (result.infotexts[0] if result.infotexts else "")
    infotexts = ([grid_text] if result.grid is not None else []) + result.infotexts
    note = ui_text("Interrupted: showing the finished images.") if result.interrupted else ""
    saved = saved_html(([result.grid_path] if result.grid_path else []) + result.paths, prefix, local)
    yield images, infotexts, (infotexts[0] if infotexts else ""), f"<div class='sdw-progress'>{note}{saved}</div>"
