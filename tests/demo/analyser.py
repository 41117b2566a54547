"""Reads a generated shapes picture: dominant background and foreground colours, and the shape's class."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from scripts.demo_shapes import PALETTE

_BORDER = 3  # pixels of the outer ring that sample the background
_FOREGROUND_DISTANCE = 60.0  # RGB distance from the background colour that marks a pixel as foreground
_MIN_FOREGROUND = 12  # fewer foreground pixels than this: nothing was drawn


@dataclass(frozen=True)
class Analysis:
    """What an image shows; `shape` is "none" when no foreground was found."""

    background: str
    foreground: str
    shape: str
    fill_ratio: float
    corners: int
    foreground_fraction: float
    background_rgb: tuple[float, float, float]
    foreground_rgb: tuple[float, float, float]


def nearest_colour(rgb: np.ndarray | tuple[float, float, float], names: list[str] | None = None) -> str:
    """The palette name (of `names`, default all 13) nearest to an RGB triple."""
    candidates = names or list(PALETTE)
    point = np.asarray(rgb, dtype=float)
    distances = [float(np.linalg.norm(point - np.asarray(PALETTE[name], dtype=float))) for name in candidates]
    return candidates[int(np.argmin(distances))]


def _pixels(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=float)
    return np.asarray(image, dtype=float)


def background_rgb(pixels: np.ndarray) -> np.ndarray:
    """Median colour of the outer ring (shapes keep a margin, so the ring is mostly background)."""
    ring = np.concatenate([
        pixels[:_BORDER].reshape(-1, 3), pixels[-_BORDER:].reshape(-1, 3),
        pixels[:, :_BORDER].reshape(-1, 3), pixels[:, -_BORDER:].reshape(-1, 3),
    ])
    return np.median(ring, axis=0)


def foreground_mask(pixels: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Boolean [H, W]: pixels clearly away from the background colour."""
    background = background_rgb(pixels) if background is None else background
    return np.linalg.norm(pixels - background, axis=-1) > _FOREGROUND_DISTANCE


def colour_fraction(image: Image.Image | np.ndarray, name: str) -> float:
    """Share of the pixels whose nearest palette colour is `name` (e.g. how much of the picture is red)."""
    pixels = _pixels(image).reshape(-1, 3)
    names = list(PALETTE)
    table = np.asarray([PALETTE[n] for n in names], dtype=float)
    nearest = np.argmin(np.linalg.norm(pixels[:, None, :] - table[None], axis=-1), axis=1)
    return float(np.mean(nearest == names.index(name)))


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Rows/columns holding at least two mask pixels, so stray speckles do not stretch the box."""
    rows = np.flatnonzero(mask.sum(axis=1) >= 2)
    cols = np.flatnonzero(mask.sum(axis=0) >= 2)
    if rows.size == 0 or cols.size == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _corners_filled(box: np.ndarray) -> list[bool]:
    """Top-left, top-right, bottom-left, bottom-right: is the corner patch (1/6 of the box) mostly foreground?"""
    h, w = box.shape
    ph, pw = max(1, h // 6), max(1, w // 6)
    patches = [box[:ph, :pw], box[:ph, -pw:], box[-ph:, :pw], box[-ph:, -pw:]]
    return [bool(p.mean() > 0.5) for p in patches]


def classify_shape(mask: np.ndarray) -> tuple[str, float, int]:
    """(shape, fill ratio of the bounding box, filled corners) of a foreground mask.

    Ideal fill ratios: square 1.0, circle pi/4 = 0.785, upright triangle 0.5; corners break near-ties
    (a square fills all four, a triangle only the bottom two, a circle none).
    """
    top, bottom, left, right = _bounding_box(mask)
    if bottom - top < 3 or right - left < 3:
        return "none", 0.0, 0
    box = mask[top:bottom, left:right]
    fill = float(box.mean())
    corners = _corners_filled(box)
    count = sum(corners)
    if fill >= 0.9 or (fill >= 0.84 and count >= 3):
        return "square", fill, count
    if fill < 0.62 or (fill < 0.7 and corners[2] and corners[3] and not (corners[0] or corners[1])):
        return "triangle", fill, count
    return "circle", fill, count


def analyse(image: Image.Image | np.ndarray) -> Analysis:
    """Background = ring median; foreground = median of the pixels far from it; shape from the mask."""
    pixels = _pixels(image)
    bg = background_rgb(pixels)
    mask = foreground_mask(pixels, bg)
    fraction = float(mask.mean())
    if mask.sum() < _MIN_FOREGROUND:
        return Analysis(nearest_colour(bg), "none", "none", 0.0, 0, fraction, tuple(bg), (0.0, 0.0, 0.0))
    fg = np.median(pixels[mask], axis=0)
    shape, fill, corners = classify_shape(mask)
    return Analysis(nearest_colour(bg), nearest_colour(fg), shape, fill, corners, fraction, tuple(bg), tuple(fg))


def matches(analysis: Analysis, colour: str, shape: str, background: str) -> tuple[bool, bool, bool]:
    """(foreground right, background right, shape right) against the prompt's words."""
    return analysis.foreground == colour, analysis.background == background, analysis.shape == shape

