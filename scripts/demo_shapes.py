"""The procedural shapes dataset of the demo model: palette, captions, seeded rendering and the fixed eval prompts."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Foreground and background colours are disjoint sets, so a caption's two colour words never collide.
FOREGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "cyan": (40, 210, 220),
    "blue": (40, 80, 230),
    "purple": (140, 50, 190),
    "pink": (245, 130, 190),
}
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 15),
    "white": (240, 240, 240),
    "gray": (128, 128, 128),
    "brown": (115, 70, 35),
    "navy": (25, 30, 100),
}
PALETTE: dict[str, tuple[int, int, int]] = {**FOREGROUND_COLOURS, **BACKGROUND_COLOURS}
_SUPERSAMPLE = 4
_JITTER = 10  # per-channel colour jitter, so the model learns a colour word, not one exact RGB triple


@dataclass(frozen=True)
class ShapeSpec:
    """One picture: what it shows (the caption's three words) and where (pixels of the final image)."""

    shape: str
    colour: str
    background: str
    size: float
    cx: float
    cy: float

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape, self.background)


def caption(colour: str, shape: str, background: str) -> str:
    """The one caption template the model is trained on."""
    return f"a {colour} {shape} on a {background} background"


def partial_captions(colour: str, shape: str, background: str) -> list[str]:
    """Shorter captions of the same picture (background, colour or all but the colour left out), so that a
    prompt or negative prompt of a few words, such as "red", is something the model has seen."""
    return [f"a {colour} {shape}", f"a {shape} on a {background} background", colour]


def all_captions() -> list[str]:
    """Every caption of the dataset (3 shapes x 8 colours x 5 backgrounds = 120), in a fixed order."""
    return [caption(c, s, b) for s in SHAPES for c in FOREGROUND_COLOURS for b in BACKGROUND_COLOURS]


def random_spec(rng: random.Random, size: int = IMAGE_SIZE) -> ShapeSpec:
    """A random shape: uniform words, size 30-70 % of the image, fully inside with a small margin."""
    extent = rng.uniform(0.3, 0.7) * size
    margin = 2 + extent / 2
    return ShapeSpec(
        shape=rng.choice(SHAPES),
        colour=rng.choice(list(FOREGROUND_COLOURS)),
        background=rng.choice(list(BACKGROUND_COLOURS)),
        size=extent,
        cx=rng.uniform(margin, size - margin),
        cy=rng.uniform(margin, size - margin),
    )


def _jittered(rgb: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    return tuple(min(255, max(0, v + rng.randint(-_JITTER, _JITTER))) for v in rgb)  # type: ignore[return-value]


def render(spec: ShapeSpec, rng: random.Random | None = None, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw one spec, anti-aliased by supersampling; `rng` adds colour jitter (None: exact palette colours)."""
    fg, bg = FOREGROUND_COLOURS[spec.colour], BACKGROUND_COLOURS[spec.background]
    if rng is not None:
        fg, bg = _jittered(fg, rng), _jittered(bg, rng)
    scale = _SUPERSAMPLE
    canvas = Image.new("RGB", (size * scale, size * scale), bg)
    draw = ImageDraw.Draw(canvas)
    draw_shape(draw, spec.shape, spec.cx * scale, spec.cy * scale, spec.size * scale / 2, fg)
    return canvas.resize((size, size), Image.Resampling.BOX)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, half: float,
               fill: tuple[int, int, int]) -> None:
    """One shape centred at (cx, cy), `half` its half extent: the one drawing rule of both datasets."""
    if shape == "circle":
        draw.ellipse([cx - half, cy - half, cx + half, cy + half], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def make_dataset(count: int, seed: int, size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[ShapeSpec]]:
    """`count` seeded random pictures as uint8 [N, H, W, 3] and their specs; same seed, same bytes."""
    rng = random.Random(seed)
    pixels = np.empty((count, size, size, 3), dtype=np.uint8)
    specs: list[ShapeSpec] = []
    for index in range(count):
        spec = random_spec(rng, size)
        pixels[index] = np.asarray(render(spec, rng, size))
        specs.append(spec)
    return pixels, specs


def eval_prompts() -> list[tuple[str, str, str]]:
    """48 fixed (colour, shape, background) triples: every shape x colour, each with two backgrounds."""
    backgrounds = list(BACKGROUND_COLOURS)
    triples = []
    for i, shape in enumerate(SHAPES):
        for j, colour in enumerate(FOREGROUND_COLOURS):
            for k in (0, 2):
                triples.append((colour, shape, backgrounds[(i + j + k) % len(backgrounds)]))
    return triples
