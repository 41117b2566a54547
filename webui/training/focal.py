"""Where to crop a training image: a focal point from faces (haar cascades), entropy and edges, A1111-style."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# A1111's weights for the three kinds of points of interest.
FACE_WEIGHT = 0.9
ENTROPY_WEIGHT = 0.15
EDGES_WEIGHT = 0.5
# Tried in this order; the first cascade that finds something wins (as A1111's fallback chain does).
HAAR_CASCADES = ("haarcascade_eye.xml", "haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt.xml",
                 "haarcascade_profileface.xml", "haarcascade_upperbody.xml")
ENTROPY_STEP = 4  # px; the sliding window moves along the long axis in steps this big


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    weight: float


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def face_points(image: Image.Image) -> list[Point]:
    """Centres of faces (or eyes, or upper bodies) found by opencv's bundled haar cascades; [] when none."""
    grey = _grey(image)
    folder = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
    min_side = max(8, int(min(grey.shape) * 0.05))
    for name in HAAR_CASCADES:
        path = folder / name
        if not path.is_file():
            continue
        classifier = cv2.CascadeClassifier(str(path))
        found = classifier.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=7, minSize=(min_side, min_side))
        if len(found):
            # The point sits a third below the box centre, nearer the eyes-to-mouth middle of a face.
            return [Point(x + w / 2, y + h / 2 + 0.33 * h, FACE_WEIGHT) for (x, y, w, h) in found]
    return []


def edge_points(image: Image.Image) -> list[Point]:
    """Up to 100 strong corners; the bottom tenth is masked so watermarks and signatures don't pull the crop."""
    grey = _grey(image)
    height, width = grey.shape
    mask = np.zeros_like(grey)
    mask[: int(height * 0.9), :] = 255
    corners = cv2.goodFeaturesToTrack(grey, maxCorners=100, qualityLevel=0.04,
                                      minDistance=max(1.0, min(width, height) * 0.06), mask=mask)
    if corners is None:
        return []
    return [Point(float(c[0][0]), float(c[0][1]), EDGES_WEIGHT / len(corners)) for c in corners]


def _entropy(values: np.ndarray) -> float:
    histogram = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    probabilities = histogram[histogram > 0] / values.size
    return float(-(probabilities * np.log2(probabilities)).sum())


def entropy_point(image: Image.Image, width: int, height: int) -> Point | None:
    """Centre of the target-sized window, slid along the long axis, with the most greyscale entropy."""
    grey = _grey(image)
    rows, cols = grey.shape
    best: tuple[float, int] | None = None
    along_x = cols - width >= rows - height
    span = (cols - width) if along_x else (rows - height)
    if span <= 0:
        return None
    for offset in range(0, span + 1, ENTROPY_STEP):
        window = grey[:, offset:offset + width] if along_x else grey[offset:offset + height, :]
        score = _entropy(window)
        if best is None or score > best[0]:
            best = (score, offset)
    assert best is not None
    offset = best[1]
    if along_x:
        return Point(offset + width / 2, rows / 2, ENTROPY_WEIGHT)
    return Point(cols / 2, offset + height / 2, ENTROPY_WEIGHT)


def focal_point(image: Image.Image, width: int, height: int, *, faces: bool = True) -> tuple[float, float]:
    """Weighted centre of faces, entropy and edges in `image` (already scaled to cover width x height)."""
    points: list[Point] = face_points(image) if faces else []
    if points:
        # One weight for all faces together, so many faces don't drown the other signals (nor one face dominate less).
        points = [Point(p.x, p.y, FACE_WEIGHT / len(points)) for p in points]
    entropy = entropy_point(image, width, height)
    points += [entropy] if entropy else []
    points += edge_points(image)
    total = sum(p.weight for p in points)
    if not points or total <= 0:
        return image.width / 2, image.height / 2
    return (sum(p.x * p.weight for p in points) / total, sum(p.y * p.weight for p in points) / total)


def cover_scale(image: Image.Image, width: int, height: int) -> Image.Image:
    """Resize so the image just covers width x height (its short side, relative to the target, matches)."""
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def window_at(centre: tuple[float, float], image_size: tuple[int, int], width: int, height: int
              ) -> tuple[int, int, int, int]:
    """A width x height box centred on `centre`, clamped to the image."""
    left = int(round(centre[0] - width / 2))
    top = int(round(centre[1] - height / 2))
    left = min(max(0, left), image_size[0] - width)
    top = min(max(0, top), image_size[1] - height)
    return left, top, left + width, top + height


def focal_crop(image: Image.Image, width: int, height: int, *, faces: bool = True) -> Image.Image:
    """Scale to cover the target, then crop the target-sized window around the focal point."""
    scaled = cover_scale(image, width, height)
    if scaled.size == (width, height):
        return scaled
    return scaled.crop(window_at(focal_point(scaled, width, height, faces=faces), scaled.size, width, height))


def centre_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    scaled = cover_scale(image, width, height)
    return scaled.crop(window_at((scaled.width / 2, scaled.height / 2), scaled.size, width, height))
