"""Reads stripes from pixels: how strongly an image's rows follow the demo LoRA's 8-px horizontal bands."""
from __future__ import annotations

import numpy as np
from PIL import Image

BAND = 8
STRIPED = 0.5  # the base model draws the trigger below 0.2 here; the demo LoRA at weight 1 above 0.85


def stripe_score(image: Image.Image) -> float:
    """Best |correlation| (over every phase) of the row-mean brightness with a square wave of 8-px bands: near 1
    for horizontal bands of that width, near 0 for a shape on a plain background."""
    pixels = np.asarray(image.convert("L"), dtype=float)
    rows = pixels.mean(axis=1)
    centred = rows - rows.mean()
    best = 0.0
    for shift in range(2 * BAND):
        wave = np.array([1.0 if ((y + shift) // BAND) % 2 == 0 else -1.0 for y in range(len(rows))])
        norm = np.linalg.norm(centred) * np.linalg.norm(wave)
        if norm > 1e-6:
            best = max(best, abs(float(centred @ wave / norm)))
    return best


def is_striped(image: Image.Image) -> bool:
    return stripe_score(image) >= STRIPED
