"""Resumable training state (`<name>-state/`): network, optimizer, LR schedule, step position and RNG."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from webui.errors import UserInputError
from webui.files import atomic_target, atomic_write_text

STATE_FILE = "train_state.bin"
INFO_FILE = "train_state.json"


@dataclass
class Position:
    """Where training stands: optimizer steps done, the epoch being trained and the next batch in it."""

    global_step: int = 0
    epoch: int = 0
    next_batch: int = 0


def state_dir(output_dir: Path, output_name: str, epoch: int | None = None) -> Path:
    """kohya's names: `<name>-state/` (stop / end) or `<name>-000001-state/` (with --save_state per epoch)."""
    return Path(output_dir) / (f"{output_name}-{epoch:06d}-state" if epoch is not None else f"{output_name}-state")


def save_state(folder: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
               generator: torch.Generator, position: Position, history: dict, config: dict) -> Path:
    """Both files are written whole; the JSON (written last) marks the state as complete."""
    payload = {"network": network.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
               "cpu_rng": torch.get_rng_state()}
    with atomic_target(folder / STATE_FILE) as partial:
        torch.save(payload, partial)
    info = {"position": position.__dict__, "history": history, "config": config}
    atomic_write_text(folder / INFO_FILE, json.dumps(info))
    return folder


def load_state(folder: Path) -> tuple[dict, Position, dict, dict]:
    """(tensors, position, loss history, saved config); weights_only, so a state file cannot run code."""
    folder = Path(folder)
    if not (folder / INFO_FILE).is_file() or not (folder / STATE_FILE).is_file():
        raise UserInputError(f"resume: {folder} is not a complete training state (no {INFO_FILE}/{STATE_FILE})")
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        payload = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise UserInputError(f"resume: cannot read the training state in {folder}: {error}") from error
    return payload, Position(**info["position"]), info.get("history", {}), info.get("config", {})
