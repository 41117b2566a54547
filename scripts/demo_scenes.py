"""Scenes of the demo model v2: sizes, positions and pairs of shapes at several resolutions, with their captions."""
from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

import numpy as np
from PIL import Image, ImageDraw

from scripts.demo_shapes import BACKGROUND_COLOURS, FOREGROUND_COLOURS, SHAPES, draw_shape

_SUPERSAMPLE = 4
_JITTER = 10
# Extent of one shape as a share of the picture's shorter side.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.2, 0.32), "medium": (0.36, 0.55), "large": (0.6, 0.78)}
PAIR_RANGE = (0.25, 0.4)


@dataclass(frozen=True)
class SceneMix:
    """How often a scene is a pair, how often a lone small/medium shape gets a position word, and how often a lone
    small/large shape gets its size word (captions only: the share changes no pixel)."""

    pair_share: float = 0.25
    position_share: float = 0.5
    size_word_share: float = 0.8


# The VAE (stages 1 and 4) only needs the picture domain: it keeps the v2 mix, so its cached weights stay valid.
VAE_MIX = SceneMix()
# The UNet sees more pairs and positions, the prompts it found hardest, and more small/large shapes without a size
# word: those carry the colour-weight emphasis (see train_demo_model.build_buckets).
UNET_MIX = SceneMix(pair_share=0.4, position_share=0.8, size_word_share=0.6)


class Position(str, Enum):
    """Where a lone shape sits: the phrase the caption uses for it."""

    LEFT = "on the left"
    RIGHT = "on the right"
    TOP = "at the top"
    BOTTOM = "at the bottom"


@dataclass(frozen=True)
class Shape:
    """One drawn shape, in pixels of the final picture."""

    shape: str
    colour: str
    extent: float
    cx: float
    cy: float


@dataclass(frozen=True)
class Scene:
    """A picture: its shapes (left to right for pairs), background, size and the words that describe it."""

    shapes: tuple[Shape, ...]
    background: str
    width: int
    height: int
    size_word: str = ""
    position: Position | None = None

    @property
    def caption(self) -> str:
        if len(self.shapes) == 2:
            first, second = self.shapes
            return pair_caption(first.colour, first.shape, second.colour, second.shape, self.background)
        only = self.shapes[0]
        return single_caption(only.colour, only.shape, self.background, self.size_word, self.position)

    @property
    def partial_captions(self) -> list[str]:
        """Shorter captions of the same picture, so a prompt of a few words (or a negative "red") is familiar.

        A colour word alone describes only a large lone shape: "red" then means "much red", more than a full caption
        without a size word asks for, so a negative "red" takes red away (as users expect) instead of adding some.
        Other pictures get a colourless caption in its place.
        """
        if len(self.shapes) == 2:
            first, second = self.shapes
            return [f"a {first.colour} {first.shape} and a {second.colour} {second.shape}",
                    f"a {first.colour} {first.shape}", f"a {first.shape} and a {second.shape}"]
        only = self.shapes[0]
        alone = only.colour if only.extent >= SIZE_RANGES["large"][0] * min(self.width, self.height) \
            else f"a {only.shape}"
        return [f"a {only.colour} {only.shape}", f"a {only.shape} on a {self.background} background", alone]


def single_caption(colour: str, shape: str, background: str, size_word: str = "",
                   position: Position | None = None) -> str:
    """"a [small|large] red circle [on the left] on a white background"."""
    words = ["a", size_word, colour, shape, position.value if position else "", "on a", background, "background"]
    return " ".join(word for word in words if word)


def pair_caption(colour: str, shape: str, other_colour: str, other_shape: str, background: str) -> str:
    """"a red circle and a blue square on a white background": the first is drawn on the left."""
    return f"a {colour} {shape} and a {other_colour} {other_shape} on a {background} background"


def random_scene(rng: random.Random, width: int, height: int, mix: SceneMix = VAE_MIX) -> Scene:
    """A random scene at width x height: a lone shape (size word and position word sometimes) or a pair."""
    background = rng.choice(list(BACKGROUND_COLOURS))
    side = min(width, height)
    if rng.random() < mix.pair_share:
        first_colour, second_colour = rng.sample(list(FOREGROUND_COLOURS), 2)
        shapes = []
        for index, colour in enumerate((first_colour, second_colour)):
            extent = rng.uniform(*PAIR_RANGE) * side
            margin = 2 + extent / 2
            # Each shape wholly in its own half, so the two never touch.
            cx = rng.uniform(margin, width / 2 - extent / 2 - 2) if index == 0 else \
                rng.uniform(width / 2 + extent / 2 + 2, width - margin)
            cy = rng.uniform(margin, height - margin)
            shapes.append(Shape(rng.choice(SHAPES), colour, extent, cx, cy))
        return Scene(tuple(shapes), background, width, height)
    size_class = rng.choices(list(SIZE_RANGES), weights=(0.3, 0.4, 0.3))[0]
    extent = rng.uniform(*SIZE_RANGES[size_class]) * side
    margin = 2 + extent / 2
    size_word = size_class if size_class != "medium" and rng.random() < mix.size_word_share else ""
    position = rng.choice(list(Position)) if size_class != "large" and rng.random() < mix.position_share else None
    cx_range, cy_range = (margin, width - margin), (margin, height - margin)
    if position is Position.LEFT:
        cx_range = (margin, max(margin, width * 0.3))
    elif position is Position.RIGHT:
        cx_range = (min(width - margin, width * 0.7), width - margin)
    elif position is Position.TOP:
        cy_range = (margin, max(margin, height * 0.3))
    elif position is Position.BOTTOM:
        cy_range = (min(height - margin, height * 0.7), height - margin)
    shape = Shape(rng.choice(SHAPES), rng.choice(list(FOREGROUND_COLOURS)), extent, rng.uniform(*cx_range),
                  rng.uniform(*cy_range))
    return Scene((shape,), background, width, height, size_word, position)


def _jittered(rgb: tuple[int, int, int], rng: random.Random | None) -> tuple[int, int, int]:
    if rng is None:
        return rgb
    return tuple(min(255, max(0, v + rng.randint(-_JITTER, _JITTER))) for v in rgb)  # type: ignore[return-value]


def render_scene(scene: Scene, rng: random.Random | None = None) -> Image.Image:
    """Draw a scene anti-aliased (supersampled, box-filtered); `rng` adds colour jitter."""
    scale = _SUPERSAMPLE
    canvas = Image.new("RGB", (scene.width * scale, scene.height * scale),
                       _jittered(BACKGROUND_COLOURS[scene.background], rng))
    draw = ImageDraw.Draw(canvas)
    for item in scene.shapes:
        fill = _jittered(FOREGROUND_COLOURS[item.colour], rng)
        draw_shape(draw, item.shape, item.cx * scale, item.cy * scale, item.extent * scale / 2, fill)
    return canvas.resize((scene.width, scene.height), Image.Resampling.BOX)


def make_scenes(count: int, seed: int, width: int, height: int,
                mix: SceneMix = VAE_MIX) -> tuple[np.ndarray, list[Scene]]:
    """`count` seeded scenes as uint8 [N, H, W, 3] and their descriptions; same seed and mix, same bytes."""
    rng = random.Random(seed)
    pixels = np.empty((count, height, width, 3), dtype=np.uint8)
    scenes: list[Scene] = []
    for index in range(count):
        scene = random_scene(rng, width, height, mix)
        pixels[index] = np.asarray(render_scene(scene, rng))
        scenes.append(scene)
    return pixels, scenes
