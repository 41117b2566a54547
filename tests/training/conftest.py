"""Shared fixtures for training tests: one thread (the demo model is tiny) and small generated datasets."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from tests.helpers.demo_fixtures import one_thread  # noqa: F401  (autouse: the demo model runs on one thread)


def star(size: int = 64, colour=(240, 220, 40), background=(25, 30, 100)) -> Image.Image:
    """A five-pointed star: a shape the demo model was never trained on."""
    image = Image.new("RGB", (size, size), background)
    points = []
    for k in range(10):
        radius = size * (0.42 if k % 2 == 0 else 0.17)
        angle = math.pi / 2 + k * math.pi / 5
        points.append((size / 2 + radius * math.cos(angle), size / 2 - radius * math.sin(angle)))
    ImageDraw.Draw(image).polygon(points, fill=colour)
    return image


def make_star_dataset(root: Path, count: int = 4, repeats: int = 2, extras: bool = False) -> Path:
    """`root/<repeats>_zkstar/` with captions; `extras` adds a corrupt image and a non-UTF-8 caption."""
    folder = root / f"{repeats}_zkstar"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        star().save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text("zkstar, a yellow star on a navy background", encoding="utf-8")
    if extras:
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        star().save(folder / "latin.png")
        (folder / "latin.txt").write_bytes("\xe9toile".encode("latin-1"))
    return root


@pytest.fixture(scope="module")
def demo_checkpoint() -> Path:
    assert DEFAULT_CHECKPOINT.is_file(), "the demo checkpoint must be committed under models/Stable-diffusion/"
    return DEFAULT_CHECKPOINT
