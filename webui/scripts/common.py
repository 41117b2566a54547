"""What every script shares: request copies with changed fields, the one generate call, per-cell progress, saving."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from webui.processing.img2img import img2img
from webui.processing.infotext import format_params_line
from webui.processing.jobs import JobState
from webui.processing.outputs import dated_folder, save_grid
from webui.processing.request import GenerationRequest, Img2ImgRequest, make_request
from webui.processing.results import GenerationResult
from webui.processing.runtime import Runtime
from webui.processing.styles import StyleStore
from webui.processing.txt2img import txt2img


@dataclass
class ScriptContext:
    """A script run's surroundings: the runtime, the tab ("txt2img"/"img2img") and the styles file in use."""

    runtime: Runtime
    mode: str
    styles: StyleStore | None = None


def mode_of(request: GenerationRequest) -> str:
    return "img2img" if isinstance(request, Img2ImgRequest) else "txt2img"


def request_fields(request: GenerationRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in type(request).model_fields}


def with_fields(request: GenerationRequest, fields: dict[str, Any]) -> Any:
    """A validated copy of `request` with `fields` (a bad value is a UserInputError naming the field)."""
    return make_request(type(request), fields)


def generate(request: GenerationRequest, runtime: Runtime, job: JobState) -> GenerationResult:
    """The same processing call the UI and API make for this request type: never a copy of the pipeline."""
    if isinstance(request, Img2ImgRequest):
        return img2img(request, runtime, job)
    return txt2img(request, runtime, job)  # type: ignore[arg-type]


class CellProgress:
    """Runs one generation after another under one parent job: the parent shows "cell k / n" and an ETA over
    all of them; Skip reaches the running cell, Interrupt is checked between cells (the plot stops there)."""

    def __init__(self, parent: JobState, total: int, noun: str = "cell") -> None:
        self.parent, self.total, self.noun = parent, max(1, total), noun
        self.per_cell = 1
        parent.job_count, parent.job_no = self.total, 0

    @property
    def stopped(self) -> bool:
        return self.parent.interrupted

    def job(self, index: int) -> JobState:
        parent = self.parent
        parent.text = f"{self.noun.capitalize()} {index + 1} / {self.total}"
        child = JobState(preview_every=parent.preview_every, make_preview=parent.make_preview)

        def forward(running: JobState) -> None:
            self.per_cell = max(1, running.job_count)
            parent.job_count = self.total * self.per_cell
            parent.sampling_step, parent.sampling_steps = running.sampling_step, running.sampling_steps
            parent.job_no = index * self.per_cell + running.job_no
            if running.preview is not None:
                parent.preview = running.preview
            if parent.skipped:
                parent.skipped, running.skipped = False, True
            if parent.on_step is not None:
                parent.on_step(parent)

        child.on_step = forward
        parent.job_no = index * self.per_cell
        parent.sampling_step = 0
        return child

    def done(self, index: int) -> None:
        self.parent.job_no = (index + 1) * self.per_cell
        self.parent.sampling_step = 0


def run_cells(requests: list[Any], order: list[int], ctx: ScriptContext, job: JobState,
              noun: str = "cell") -> tuple[dict[int, GenerationResult], bool]:
    """Generate requests[i] for i in `order` under one progress; ({index: result}, interrupted)."""
    progress = CellProgress(job, len(order), noun)
    done: dict[int, GenerationResult] = {}
    interrupted = False
    for step, index in enumerate(order):
        if progress.stopped:  # Interrupt: the cell that was running finished; keep what is done
            interrupted = True
            break
        done[index] = generate(requests[index], ctx.runtime, progress.job(step))
        progress.done(step)
    job.text = ""
    return done, interrupted


def merged_warnings(results: Any) -> list[str]:
    warnings: list[str] = []
    for result in results:
        warnings += [warning for warning in result.warnings if warning not in warnings]
    return warnings


def save_script_grid(grid: Image.Image, infotext: str, request: GenerationRequest, runtime: Runtime,
                     basename: str) -> str | None:
    """Under outputs/<mode>-grids/<date>/ as `<basename>-NNNN.png`, when the request saves grids at all."""
    if not (request.save_images and request.save_grid):
        return None
    folder = dated_folder(runtime.folders.outputs / f"{mode_of(request)}-grids")
    settings = runtime.settings.current
    return str(save_grid(grid, folder, infotext=infotext, basename=basename,
                         extension=getattr(settings, "grid_format", None) or "png"))


def append_params(infotext: str, params: dict[str, Any]) -> str:
    """An infotext with more `Key: value` pairs on its last line (A1111's `Script: …, X Type: …`)."""
    extra = format_params_line(params)
    if not extra:
        return infotext
    return f"{infotext}, {extra}" if infotext else extra
