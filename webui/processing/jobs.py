"""Per-job progress, interruption and skipping, shared by the sampling loop and whoever shows progress."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from webui.processing.prompt_budget import PromptBudget

if TYPE_CHECKING:
    import torch
    from PIL import Image


class JobInterrupted(Exception):
    """Raised inside the sampling loop when the user pressed Interrupt; finished images are kept."""


class ImageSkipped(Exception):
    """Raised inside the sampling loop when the user pressed Skip; the batch moves on."""


@dataclass
class JobState:
    """One generation job's live state; the UI/API read it from another thread, processing writes it."""

    job_count: int = 0
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0
    started: float = field(default_factory=time.monotonic)
    interrupted: bool = False
    skipped: bool = False
    preview: Image.Image | None = None  # latest preview image, if previews are on
    preview_every: int = 0  # make a live preview every N sampler steps; 0 = never
    make_preview: Callable[[torch.Tensor], Image.Image | None] | None = None  # denoised latents -> preview
    on_step: Callable[["JobState"], None] | None = None
    text: str = ""  # what the job is doing, e.g. a script's "Cell 3 / 12" (A1111's state.job)
    pass_names: tuple[str, ...] = ()  # the passes each image goes through (hires fix: two), named for progress
    prompt_budget: PromptBudget = field(default_factory=PromptBudget)  # time left for parsing and encoding prompts
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, job_no: int) -> None:
        """Start job `job_no` (one batch or one hires pass); its step count starts from zero, not the last job's."""
        with self._lock:
            self.job_no, self.sampling_step = job_no, 0

    def interrupt(self) -> None:
        self.interrupted = True

    def skip(self) -> None:
        self.skipped = True

    def check(self) -> None:
        """Raise JobInterrupted when the user asked to stop; long loops call this between pieces of work."""
        if self.interrupted:
            raise JobInterrupted()

    def check_prompt_work(self) -> None:
        """Between pieces of prompt parsing and encoding: stop on Interrupt, or once the prompt budget is spent."""
        self.check()
        self.prompt_budget.check()

    @property
    def progress(self) -> float:
        """A1111's formula: job fraction plus this job's step fraction, never above 1."""
        if self.job_count == 0:
            return 0.0
        inner = self.sampling_step / self.sampling_steps if self.sampling_steps else 0.0
        return min(1.0, (self.job_no + inner) / self.job_count)

    @property
    def eta_seconds(self) -> float | None:
        done = self.progress
        if done <= 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / done - elapsed

    def step(self, index: int, total: int, denoised: torch.Tensor | None = None) -> None:
        """Record a finished sampler step (and a live preview when due); stop the loop if the user asked to."""
        with self._lock:
            self.sampling_step, self.sampling_steps = index + 1, total
        if (denoised is not None and self.make_preview is not None and self.preview_every > 0
                and (index + 1) % self.preview_every == 0):
            self.preview = self.make_preview(denoised)
        if self.on_step is not None:
            self.on_step(self)
        if self.interrupted:
            raise JobInterrupted()
        if self.skipped:
            self.skipped = False
            raise ImageSkipped()
