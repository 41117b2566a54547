"""Training logs: a CSV with kohya's scalar names per step, and a loss/LR plot drawn with PIL."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from webui.files import atomic_target, atomic_write_bytes

COLUMNS = ("step", "epoch", "loss/current", "loss/average", "loss/epoch_average", "lr/unet", "lr/textencoder")


@dataclass
class LossHistory:
    """Per-step loss and learning rates; `average` is kohya's moving mean over the last epoch's worth of steps."""

    window: int = 100
    steps: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    averages: list[float] = field(default_factory=list)
    lrs: list[tuple[float, float]] = field(default_factory=list)

    def add(self, step: int, epoch: int, loss: float, lr_unet: float, lr_te: float) -> float:
        self.steps.append(step)
        self.epochs.append(epoch)
        self.losses.append(loss)
        recent = self.losses[-max(1, self.window):]
        self.averages.append(sum(recent) / len(recent))
        self.lrs.append((lr_unet, lr_te))
        return self.averages[-1]

    def epoch_average(self, epoch: int) -> float | None:
        values = [loss for loss, e in zip(self.losses, self.epochs, strict=True) if e == epoch]
        return sum(values) / len(values) if values else None

    def epoch_running_averages(self) -> list[float]:
        """kohya's `loss/epoch_average` at each step: the mean of the epoch's losses so far."""
        out: list[float] = []
        total, count, current = 0.0, 0, None
        for loss, epoch in zip(self.losses, self.epochs, strict=True):
            if epoch != current:
                total, count, current = 0.0, 0, epoch
            total, count = total + loss, count + 1
            out.append(total / count)
        return out

    def rows(self) -> list[tuple]:
        return [(s, e, f"{loss:.6f}", f"{a:.6f}", f"{ea:.6f}", f"{u:.3e}", f"{t:.3e}") for s, e, loss, a, ea, (u, t)
                in zip(self.steps, self.epochs, self.losses, self.averages, self.epoch_running_averages(), self.lrs,
                       strict=True)]

    def to_state(self) -> dict:
        return {"window": self.window, "steps": self.steps, "epochs": self.epochs, "losses": self.losses,
                "averages": self.averages, "lrs": [list(x) for x in self.lrs]}

    @classmethod
    def from_state(cls, data: dict) -> "LossHistory":
        return cls(int(data["window"]), list(data["steps"]), list(data["epochs"]), list(data["losses"]),
                   list(data["averages"]), [tuple(x) for x in data["lrs"]])  # type: ignore[misc]


def write_csv(history: LossHistory, path: Path) -> None:
    """The whole log rewritten at once (small), so it is never half a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(history.rows())
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _polyline(draw: ImageDraw.ImageDraw, values: list[float], box: tuple[int, int, int, int], colour: str,
              low: float, high: float) -> None:
    left, top, right, bottom = box
    if len(values) < 2 or high <= low:
        return
    points = [(left + (right - left) * i / (len(values) - 1), bottom - (bottom - top) * (v - low) / (high - low))
              for i, v in enumerate(values)]
    draw.line(points, fill=colour, width=2)


def plot(history: LossHistory, width: int = 640, height: int = 360) -> Image.Image:
    """Loss (grey: per step, blue: moving average, green: epoch average, epochs split by light lines) on top, the
    UNet learning rate below."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    loss_box = (50, 20, width - 10, int(height * 0.62))
    lr_box = (50, int(height * 0.72), width - 10, height - 20)
    for box in (loss_box, lr_box):
        draw.rectangle(box, outline="#999999")
    if history.losses:
        low, high = min(history.losses), max(history.losses)
        count = len(history.losses)
        for index in range(1, count):  # epoch boundaries
            if history.epochs[index] != history.epochs[index - 1]:
                x = loss_box[0] + (loss_box[2] - loss_box[0]) * index / max(1, count - 1)
                draw.line([(x, loss_box[1]), (x, loss_box[3])], fill="#e4e4e4")
        _polyline(draw, history.losses, loss_box, "#bbbbbb", low, high)
        _polyline(draw, history.epoch_running_averages(), loss_box, "#2a9d5c", low, high)
        _polyline(draw, history.averages, loss_box, "#1f5fd6", low, high)
        draw.text((5, loss_box[1]), f"{high:.3f}", fill="black")
        draw.text((5, loss_box[3] - 10), f"{low:.3f}", fill="black")
        lrs = [u for u, _ in history.lrs]
        _polyline(draw, lrs, lr_box, "#d6541f", min(lrs), max(lrs) if max(lrs) > min(lrs) else min(lrs) + 1e-12)
        draw.text((5, lr_box[1]), f"{max(lrs):.1e}", fill="black")
        draw.text((loss_box[0] + 4, 4), f"loss  step {history.steps[-1]}  avg {history.averages[-1]:.4f}",
                  fill="black")
    draw.text((lr_box[0] + 4, lr_box[1] - 12), "lr/unet", fill="black")
    return image


def write_plot(history: LossHistory, path: Path) -> None:
    with atomic_target(path) as partial:
        plot(history).save(partial, format="PNG")


class ScalarEvents:
    """kohya's TensorBoard scalars, one event file per run in `<logging_dir>/<output_name>/` (--logging_dir)."""

    def __init__(self, folder: Path, history: LossHistory, train_te: bool = True) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard, so only when a run asks for it

        # A resumed run drops what a stopped run logged after its saved step (purge_step) and goes on with the
        # running epoch average it had.
        first_step = history.steps[-1] if history.steps else 0
        self._writer = SummaryWriter(str(folder), purge_step=first_step + 1 if first_step else None)
        self._train_te = train_te
        self._epoch = history.epochs[-1] if history.epochs else -1
        current = [loss for loss, epoch in zip(history.losses, history.epochs, strict=True) if epoch == self._epoch]
        self._total, self._count = sum(current), len(current)

    def add(self, step: int, epoch: int, loss: float, average: float, lr_unet: float, lr_te: float) -> None:
        if epoch != self._epoch:
            self._epoch, self._total, self._count = epoch, 0.0, 0
        self._total, self._count = self._total + loss, self._count + 1
        values = {"loss/current": loss, "loss/average": average, "loss/epoch_average": self._total / self._count,
                  "lr/unet": lr_unet}
        if self._train_te:
            values["lr/textencoder"] = lr_te
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
