"""The analyser reads rendered ground-truth pictures right, and says so when a picture does not match."""
import random

import numpy as np
import pytest
from PIL import Image

from scripts.demo_shapes import (
    BACKGROUND_COLOURS,
    FOREGROUND_COLOURS,
    SHAPES,
    ShapeSpec,
    eval_prompts,
    make_dataset,
    random_spec,
    render,
)
from tests.demo.analyser import analyse, classify_shape, colour_fraction, matches, nearest_colour


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("colour", list(FOREGROUND_COLOURS))
def test_every_shape_and_colour_is_read_back(shape, colour):
    for index, background in enumerate(BACKGROUND_COLOURS):
        spec = ShapeSpec(shape, colour, background, size=20 + 5 * index, cx=30 + index, cy=34 - index)
        seen = analyse(render(spec, random.Random(index)))
        assert matches(seen, colour, shape, background) == (True, True, True), (spec, seen)


def test_random_dataset_pictures_are_read_back():
    rng = random.Random(123)
    specs = [random_spec(rng) for _ in range(150)]
    wrong = [(s, analyse(render(s, rng))) for s in specs]
    wrong = [(s, a) for s, a in wrong if matches(a, s.colour, s.shape, s.background) != (True, True, True)]
    assert wrong == []


def test_a_mismatch_is_reported():
    seen = analyse(render(ShapeSpec("circle", "red", "white", 40, 32, 32)))
    assert matches(seen, "blue", "square", "black") == (False, False, False)
    assert matches(seen, "red", "triangle", "white") == (True, True, False)


def test_flat_picture_has_no_shape():
    seen = analyse(Image.new("RGB", (64, 64), BACKGROUND_COLOURS["gray"]))
    assert (seen.background, seen.foreground, seen.shape) == ("gray", "none", "none")


def test_shape_classes_from_ideal_masks():
    yy, xx = np.mgrid[:64, :64]
    circle = (yy - 32) ** 2 + (xx - 32) ** 2 <= 20 ** 2
    square = (abs(yy - 32) <= 18) & (abs(xx - 32) <= 18)
    triangle = (yy >= 12) & (yy <= 52) & (abs(xx - 32) <= (yy - 12) / 2)
    assert [classify_shape(m)[0] for m in (circle, square, triangle)] == ["circle", "square", "triangle"]
    assert classify_shape(np.zeros((64, 64), bool))[0] == "none"


def test_colour_fraction_and_nearest_colour():
    picture = render(ShapeSpec("square", "red", "white", 32, 32, 32))
    assert colour_fraction(picture, "red") == pytest.approx(33 * 33 / 64 ** 2, abs=0.03)
    assert colour_fraction(picture, "blue") == 0.0
    assert nearest_colour((200, 20, 30)) == "red" and nearest_colour((20, 20, 20)) == "black"


def test_dataset_is_seeded_and_eval_prompts_are_fixed():
    first, specs = make_dataset(8, seed=5)
    second, _ = make_dataset(8, seed=5)
    assert np.array_equal(first, second) and not np.array_equal(first, make_dataset(8, seed=6)[0])
    assert specs[0].caption == f"a {specs[0].colour} {specs[0].shape} on a {specs[0].background} background"
    prompts = eval_prompts()
    assert len(prompts) == 48 == len(set(prompts))
    assert {p[0] for p in prompts} == set(FOREGROUND_COLOURS) and {p[2] for p in prompts} == set(BACKGROUND_COLOURS)
