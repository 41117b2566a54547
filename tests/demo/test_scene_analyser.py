"""The scene analyser reads drawn ground truth right (positions, pairs), and the held-out sets stay held out."""
import random

from PIL import Image

from scripts.demo_eval_sets import pair_prompts, position_prompts, single_triples
from scripts.demo_scenes import Position, Scene, SceneMix, Shape, make_scenes, random_scene, render_scene
from scripts.demo_selection import selection_pairs, selection_positions
from scripts.demo_shapes import BACKGROUND_COLOURS, eval_prompts
from tests.demo.scene_analyser import blobs, in_position, pair_matches


def test_drawn_positions_are_read_back():
    rng = random.Random(3)
    checked = 0
    while checked < 60:
        scene = random_scene(rng, 64, 64, SceneMix(pair_share=0.0))
        if scene.position is None:
            continue
        found = blobs(render_scene(scene, rng))
        assert found and found[0].colour == scene.shapes[0].colour, scene
        assert in_position(found[0], scene.position, 64, 64), (scene, found[0])
        checked += 1


def test_drawn_pairs_are_read_back_left_to_right():
    pixels, scenes = make_scenes(120, seed=9, width=128, height=128)
    pairs = [(p, s) for p, s in zip(pixels, scenes, strict=True) if len(s.shapes) == 2]
    assert len(pairs) > 10
    for picture, scene in pairs:
        left, right = scene.shapes
        colours_ok, all_ok = pair_matches(Image.fromarray(picture), (left.colour, left.shape),
                                          (right.colour, right.shape))
        assert colours_ok and all_ok, scene.caption


def test_a_wrong_place_or_a_missing_shape_is_reported():
    scene = Scene((Shape("circle", "red", 16, 12, 32),), "white", 64, 64, position=Position.LEFT)
    found = blobs(render_scene(scene))
    assert in_position(found[0], Position.LEFT, 64, 64) and not in_position(found[0], Position.RIGHT, 64, 64)
    empty = Image.new("RGB", (64, 64), BACKGROUND_COLOURS["gray"])
    assert blobs(empty) == [] and pair_matches(empty, ("red", "circle"), ("blue", "square")) == (False, False)
    swapped = Scene((Shape("square", "blue", 16, 14, 30), Shape("circle", "red", 16, 48, 30)), "white", 64, 64)
    assert pair_matches(render_scene(swapped), ("red", "circle"), ("blue", "square")) == (False, False)
    # Either order: both shapes are there, so the two-object prompt is met; a wrong shape still fails it.
    assert pair_matches(render_scene(swapped), ("red", "circle"), ("blue", "square"), ordered=False) == (True, True)
    assert pair_matches(render_scene(swapped), ("red", "square"), ("blue", "square"), ordered=False) == (True, False)
    assert pair_matches(render_scene(swapped), ("red", "circle"), ("green", "square"), ordered=False) == (False, False)


def test_captions_say_what_is_drawn():
    scene = Scene((Shape("triangle", "green", 14, 10, 30),), "navy", 64, 64, "small", Position.LEFT)
    assert scene.caption == "a small green triangle on the left on a navy background"
    pair = Scene((Shape("circle", "red", 16, 14, 30), Shape("square", "blue", 16, 48, 30)), "white", 64, 64)
    assert pair.caption == "a red circle and a blue square on a white background"


def test_held_out_prompts_never_overlap_the_selection_prompts():
    selection = set(eval_prompts())
    assert not selection & set(single_triples()) and len(set(single_triples())) == 24
    assert all(left[0] != right[0] for left, right, _ in pair_prompts())
    assert {p[3] for p in position_prompts()} == set(Position)
    chosen_by_training = (set(selection_positions()), set(selection_pairs()))
    assert len(chosen_by_training[0]) >= 12 and len(chosen_by_training[1]) >= 12
    assert not chosen_by_training[0] & set(position_prompts()) and not chosen_by_training[1] & set(pair_prompts())
    assert {p[3] for p in selection_positions()} == set(Position)
    assert all(left[0] != right[0] for left, right, _ in selection_pairs())


def test_a_colour_word_alone_captions_only_a_large_lone_shape():
    # A negative "red" must take red away: the word alone has to mean more red than a full caption asks for.
    large = Scene((Shape("circle", "red", 44, 32, 32),), "white", 64, 64, "large")
    medium = Scene((Shape("circle", "red", 28, 32, 32),), "white", 64, 64)
    pair = Scene((Shape("circle", "red", 16, 14, 30), Shape("square", "blue", 16, 48, 30)), "white", 64, 64)
    assert "red" in large.partial_captions
    assert "red" not in medium.partial_captions and "a circle" in medium.partial_captions
    assert "red" not in pair.partial_captions and "a circle and a square" in pair.partial_captions
    assert all(len(s.partial_captions) == 3 for s in (large, medium, pair))


def test_the_size_word_share_changes_captions_and_no_pixel():
    few, few_scenes = make_scenes(200, seed=4, width=64, height=64, mix=SceneMix(size_word_share=0.2))
    many, many_scenes = make_scenes(200, seed=4, width=64, height=64, mix=SceneMix(size_word_share=1.0))
    assert (few == many).all()
    worded = [sum(bool(s.size_word) for s in scenes) for scenes in (few_scenes, many_scenes)]
    assert worded[0] < worded[1] / 2
