"""Reads stripes from pixels: how strongly an image's rows follow the demo LoRA's 8-px horizontal bands."""
from __future__ import annotations

import numpy as np
from PIL import Image

BAND = 8
STRIPED = 0.6  # a score this high is unmistakably banded; the base model's shapes score far lower


def stripe_score(image: Image.Image) -> float:
    """Best |correlation| of the row-mean luminance with a square wave of 8-px bands (either phase), times how
    little the columns vary (vertical structure, such as a shape, lowers it)."""
    pixels = np.asarray(image.convert("L"), dtype=float)
    rows = pixels.mean(axis=1)
    wave = np.array([1.0 if (y // BAND) % 2 == 0 else -1.0 for y in range(pixels.shape[0])])
    centred = rows - rows.mean()
    norm = np.linalg.norm(centred) * np.linalg.norm(wave)
    correlation = abs(float(centred @ wave / norm)) if norm > 1e-6 else 0.0
    row_spread = pixels.std(axis=1).mean()  # variation along each row: near 0 for pure horizontal bands
    total = pixels.std() + 1e-6
    return correlation * max(0.0, 1.0 - row_spread / total)


def is_striped(image: Image.Image) -> bool:
    return stripe_score(image) >= STRIPED
