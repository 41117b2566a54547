"""What a training run reports while it goes and hands back when it ends."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from webui.training.dataset import DatasetPlan
from webui.training.logs import LossHistory


@dataclass
class TrainingProgress:
    """What the CLI, the Train tab and the API show while a run goes."""

    phase: str = "starting"
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    total_epochs: int = 0
    loss: float | None = None
    average_loss: float | None = None
    lr: float | None = None
    started: float = field(default_factory=time.monotonic)
    samples: list[Path] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)
    message: str = ""
    history: LossHistory | None = None  # the live loss/LR log, for plots

    @property
    def it_per_s(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.step / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.it_per_s
        return (self.total_steps - self.step) / rate if rate > 0 else None


@dataclass
class TrainingResult:
    final: Path | None
    saved: list[Path]
    stopped: bool
    state: Path | None
    history: LossHistory
    plan: DatasetPlan
