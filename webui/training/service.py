"""One training run at a time inside the app, on the shared job queue, with live status for the UI and API."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.errors import UserInputError
from webui.paths import resolve_inside
from webui.processing.jobs import JobState
from webui.processing.runtime import Runtime
from webui.training.config import TrainingConfig, config_from_dict
from webui.training.samples import SampleRenderer, read_prompt_file
from webui.training.trainer import TrainingProgress, TrainingResult, train

log = logging.getLogger(__name__)


@dataclass
class TrainingStatus:
    """The service's side of a snapshot (queue, errors, files); `status()` adds the trainer's live progress."""

    running: bool = False
    queued: bool = False
    error: str | None = None
    state: str | None = None
    log_dir: str | None = None
    output_name: str | None = None


class TrainingService:
    """Starts runs on a worker thread through `runtime.queue`, so generation waits (with its queue position)
    instead of fighting the trainer for the device; Stop ends the run with a resumable state."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._job: JobState | None = None
        self._status = TrainingStatus()
        self._progress: TrainingProgress | None = None
        self.result: TrainingResult | None = None

    def prepare(self, options: dict[str, Any]) -> TrainingConfig:
        """Options (kohya names) -> a checked config; the base model must be one of the app's checkpoints."""
        values = dict(options)
        name = str(values.get("pretrained_model_name_or_path") or "")
        if not name:
            loaded = self.runtime.models.loaded
            info = loaded.checkpoint if loaded else self.runtime.registry.default_checkpoint()
            if info is None:
                raise UserInputError("no checkpoint to train on: put one into models/Stable-diffusion")
            name = info.name
        values["pretrained_model_name_or_path"] = str(self.runtime.registry.find(name).path)
        # Files the app writes stay inside its LoRA folders, whoever asks (UI, API).
        lora_root = self.runtime.folders.lora[0]
        values["output_dir"] = str(resolve_inside(lora_root, str(values.get("output_dir") or ".")))
        if values.get("logging_dir"):
            values["logging_dir"] = str(resolve_inside(Path(values["output_dir"]), str(values["logging_dir"])))
        return config_from_dict(values)

    def start(self, options: dict[str, Any]) -> dict[str, Any]:
        config = self.prepare(options)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise UserInputError("a training run is already going; stop it first")
            self._stop.clear()
            self._job = JobState()
            self._status = TrainingStatus(running=True, queued=True, output_name=config.output_name)
            self._progress = None
            self._thread = threading.Thread(target=self._work, args=(config, self._job), name="lora-training",
                                            daemon=True)
            self._thread.start()
        return self.status()

    @property
    def job(self) -> JobState | None:
        """The run's queue job (its position shows while it waits, /progress shows its steps)."""
        return self._job

    def history(self):
        """The live loss/LR log of the current or last run (None before the first step)."""
        return self._progress.history if self._progress is not None else None

    def stop(self) -> bool:
        """Ask the run to stop after the current step (a resumable state is saved)."""
        if self._thread is None or not self._thread.is_alive():
            return False
        self._stop.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def status(self) -> dict[str, Any]:
        """Service fields plus the trainer's progress (phase, step, epoch, losses, lr, it/s, ETA, files)."""
        progress = self._progress or TrainingProgress(phase="waiting for the queue" if self._status.queued else "idle")
        return {**dataclasses.asdict(self._status), "phase": progress.phase, "step": progress.step,
                "total_steps": progress.total_steps, "epoch": progress.epoch, "total_epochs": progress.total_epochs,
                "loss": progress.loss, "average_loss": progress.average_loss, "lr": progress.lr,
                "it_per_s": progress.it_per_s, "eta_seconds": progress.eta_seconds, "message": progress.message,
                "samples": [str(p) for p in progress.samples], "saved": [str(p) for p in progress.saved]}

    def _refresh_library(self, path: Path) -> None:
        self.runtime.loras.scan()  # the new file shows as a card without a restart

    def _sampler_factory(self, config: TrainingConfig):
        def build(run):
            renderer = SampleRenderer(self.runtime, run.checkpoint, config.sample_sampler, config.clip_skip)
            return renderer, read_prompt_file(Path(config.sample_prompts or ""))
        return build

    def _work(self, config: TrainingConfig, job: JobState) -> None:
        def on_progress(progress: TrainingProgress) -> None:
            self._progress = progress
            job.job_count, job.job_no = max(1, progress.total_steps), progress.step

        try:
            with self.runtime.queue.slot(job):
                self._status.queued = False
                job.started = time.monotonic()
                self.result = train(config, should_stop=lambda: self._stop.is_set() or job.interrupted,
                                    on_progress=on_progress, on_saved=self._refresh_library,
                                    sampler_factory=self._sampler_factory(config) if config.sample_prompts else None)
            self._status.state = str(self.result.state) if self.result.state else None
        except UserInputError as error:
            self._status.error = str(error)
        except Exception as error:  # noqa: BLE001 - the app keeps serving; the message goes to the tab/API
            log.error("training failed: %s", traceback.format_exc())
            self._status.error = f"{type(error).__name__}: {error}"
        finally:
            self._status.running = False
            self._status.queued = False
            self._status.log_dir = str(Path(config.logging_dir) if config.logging_dir else
                                       Path(config.output_dir) / "log" / config.output_name)
            if self._status.error:
                self._progress = self._progress or TrainingProgress()
                self._progress.phase = "failed"


def training_service(runtime: Runtime) -> TrainingService:
    """The app's one service, kept on its runtime (no module state), shared by the Train tab and the API."""
    return runtime.service("training", lambda: TrainingService(runtime))
