"""Reads scenes of the demo model v2: the separate shapes of a picture, each with colour, class and centre."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from scripts.demo_scenes import Position
from scripts.demo_shapes import FOREGROUND_COLOURS
from tests.demo.analyser import background_rgb, classify_shape, foreground_mask, nearest_colour

_MIN_AREA_SHARE = 0.004  # blobs smaller than this share of the picture are specks, not shapes


@dataclass(frozen=True)
class Blob:
    """One connected foreground region."""

    colour: str
    shape: str
    cx: float
    cy: float
    area: int


def _labels(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected component labels of a boolean mask (0 = background), by flood fill."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    count = 0
    height, width = mask.shape
    for y, x in zip(*np.nonzero(mask), strict=True):
        if labels[y, x]:
            continue
        count += 1
        stack = [(int(y), int(x))]
        labels[y, x] = count
        while stack:
            cy, cx = stack.pop()
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    stack.append((ny, nx))
    return labels, count


def blobs(image: Image.Image | np.ndarray) -> list[Blob]:
    """The picture's shapes, largest first."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=float)
    mask = foreground_mask(pixels, background_rgb(pixels))
    labels, count = _labels(mask)
    found = []
    for label in range(1, count + 1):
        region = labels == label
        area = int(region.sum())
        if area < _MIN_AREA_SHARE * mask.size:
            continue
        ys, xs = np.nonzero(region)
        colour = nearest_colour(np.median(pixels[region], axis=0), list(FOREGROUND_COLOURS))
        found.append(Blob(colour, classify_shape(region)[0], float(xs.mean()), float(ys.mean()), area))
    return sorted(found, key=lambda b: b.area, reverse=True)


def in_position(blob: Blob, position: Position, width: int, height: int) -> bool:
    """Whether a shape's centre lies in the asked part of the picture (the outer 40 % on that side)."""
    if position is Position.LEFT:
        return blob.cx < 0.4 * width
    if position is Position.RIGHT:
        return blob.cx > 0.6 * width
    if position is Position.TOP:
        return blob.cy < 0.4 * height
    return blob.cy > 0.6 * height


def pair_matches(image: Image.Image, left: tuple[str, str], right: tuple[str, str],
                 ordered: bool = True) -> tuple[bool, bool]:
    """(colours right, colours and shapes right) for "a {left} and a {right}": the two largest shapes must be the
    asked (colour, shape) pairs, left to right when `ordered`, in either order otherwise."""
    found = blobs(image)[:2]
    if len(found) < 2:
        return False, False
    drawn = [(blob.colour, blob.shape) for blob in sorted(found, key=lambda b: b.cx)]
    orders = [drawn] if ordered else [drawn, drawn[::-1]]
    colours = any((first[0], second[0]) == (left[0], right[0]) for first, second in orders)
    return colours, any((first, second) == (left, right) for first, second in orders)
