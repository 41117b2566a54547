"""The bundled demo checkpoint through the real txt2img path: the pictures show what the prompt asks for."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.demo_shapes import IMAGE_SIZE, caption
from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from tests.demo.analyser import analyse, colour_fraction, matches
from tests.helpers.demo_fixtures import demo_runtime_fixture, one_thread  # noqa: F401 (autouse fixture)
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import Runtime
from webui.processing.txt2img import GenerationResult, txt2img

pytestmark = pytest.mark.e2e

# Varied on purpose: every shape, six colours, every background.
PROMPTS = [("red", "circle", "white"), ("blue", "square", "black"), ("yellow", "triangle", "navy"),
           ("green", "circle", "gray"), ("purple", "square", "brown"), ("cyan", "triangle", "black"),
           ("orange", "square", "navy"), ("pink", "circle", "gray")]


runtime = demo_runtime_fixture("demo")


def generate(runtime: Runtime, prompt: str, seed: int = 1, negative: str = "", batch_size: int = 1) -> GenerationResult:
    request = make_request(Txt2ImgRequest, {
        "prompt": prompt, "negative_prompt": negative, "steps": 20, "sampler_name": "Euler a", "cfg_scale": 7.0,
        "width": IMAGE_SIZE, "height": IMAGE_SIZE, "seed": seed, "batch_size": batch_size,
        "checkpoint": DEFAULT_CHECKPOINT.stem, "save_images": False, "save_grid": False})
    return txt2img(request, runtime)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_demo_checkpoint_is_small_and_described_by_its_sidecar():
    assert DEFAULT_CHECKPOINT.stat().st_size <= 40_000_000  # fp16, as the demo-model issue allows
    sidecar = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["base"] == "sd1" and sidecar["name"] == "demo-shapes"


def test_loading_has_no_special_case_for_the_demo(runtime, tmp_path):
    # Loading, conversion and generation treat the demo like any other file: a renamed copy gives the same pixels.
    folder = tmp_path / "Stable-diffusion"
    folder.mkdir()
    for name in ("demo-shapes", "my-model"):
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(DEFAULT_CHECKPOINT.with_suffix(suffix), folder / f"{name}{suffix}")
    copy_runtime = demo_runtime(folder / "my-model.safetensors", tmp_path / "data")
    # The registry alone knows the demo: the user's own checkpoint is the default, the demo only when alone.
    default = copy_runtime.registry.default_checkpoint()
    assert default is not None and default.stem == "my-model"
    (folder / "my-model.safetensors").rename(tmp_path / "away.safetensors")
    copy_runtime.registry.refresh()
    default = copy_runtime.registry.default_checkpoint()
    assert default is not None and default.stem == "demo-shapes"
    (tmp_path / "away.safetensors").rename(folder / "my-model.safetensors")
    copy_runtime.registry.refresh()

    def first_image(target: Runtime, checkpoint: str) -> np.ndarray:
        request = make_request(Txt2ImgRequest, {
            "prompt": caption("blue", "square", "white"), "steps": 4, "sampler_name": "Euler a", "seed": 5,
            "width": IMAGE_SIZE, "height": IMAGE_SIZE, "checkpoint": checkpoint, "save_images": False,
            "save_grid": False})
        return pixels(txt2img(request, target).images[0])

    np.testing.assert_array_equal(first_image(copy_runtime, "my-model"), first_image(runtime, DEFAULT_CHECKPOINT.stem))


def test_loads_through_the_user_checkpoint_path(runtime):
    generate(runtime, caption("red", "circle", "white"))
    loaded = runtime.models.loaded
    assert Path(loaded.checkpoint.path).resolve() == DEFAULT_CHECKPOINT.resolve()
    assert (loaded.architecture.name, loaded.architecture.family) == ("demo-shapes", "sd1")
    assert loaded.architecture.prediction_type == "epsilon"


def test_colour_shape_and_background_follow_the_prompt(runtime):
    seen = {}
    for colour, shape, background in PROMPTS:
        for seed in (1, 2):
            seen[(colour, shape, background, seed)] = analyse(generate(runtime, caption(colour, shape, background),
                                                                       seed).images[0])
    hits = np.array([matches(a, c, s, b) for (c, s, b, _), a in seen.items()])
    report = {k: (a.foreground, a.shape, a.background) for k, a in seen.items()}
    total = len(seen)
    assert hits[:, 0].sum() >= total - 2, f"foreground colours: {report}"
    assert hits[:, 1].sum() >= total - 2, f"backgrounds: {report}"
    assert hits[:, 2].sum() >= total - 4, f"shapes: {report}"


def test_a_different_colour_word_changes_the_colour(runtime):
    red = analyse(generate(runtime, caption("red", "square", "white"), seed=3).images[0])
    blue = analyse(generate(runtime, caption("blue", "square", "white"), seed=3).images[0])
    assert (red.foreground, blue.foreground) == ("red", "blue")


@pytest.mark.slow
def test_weight_on_a_colour_word_moves_its_proportion_monotonically(runtime):
    prompts = [("red", "circle", "white"), ("blue", "square", "gray"), ("green", "triangle", "black")]
    shares = {}  # (colour, weight) -> mean share of the picture in that colour over six seeds
    for colour, shape, background in prompts:
        for weight in (0.6, 1.0, 1.4):
            prompt = f"a ({colour}:{weight}) {shape} on a {background} background"
            shares[colour, weight] = float(np.mean([colour_fraction(generate(runtime, prompt, seed).images[0], colour)
                                                    for seed in range(1, 7)]))
    totals = [sum(shares[c, w] for c, _, _ in prompts) for w in (0.6, 1.0, 1.4)]
    assert totals[0] < totals[1] < totals[2], shares
    assert all(shares[c, 0.6] < shares[c, 1.4] for c, _, _ in prompts), shares
    assert totals[2] - totals[0] > 0.05, shares


def test_negative_prompt_pushes_its_colour_away(runtime):
    prompt = caption("red", "circle", "white")
    plain = [colour_fraction(generate(runtime, prompt, seed).images[0], "red") for seed in range(1, 7)]
    pushed = [colour_fraction(generate(runtime, prompt, seed, negative="red").images[0], "red")
              for seed in range(1, 7)]
    assert np.mean(pushed) < 0.8 * np.mean(plain), (plain, pushed)


def test_same_seed_reproduces_and_different_seeds_differ(runtime):
    prompt = caption("green", "triangle", "black")
    first, again, other = (pixels(generate(runtime, prompt, seed).images[0]) for seed in (5, 5, 6))
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 2.0


def test_batch_of_four_gives_four_distinct_matching_images(runtime):
    result = generate(runtime, caption("orange", "circle", "navy"), seed=10, batch_size=4)
    assert result.seeds == [10, 11, 12, 13] and len(result.images) == 4
    arrays = [pixels(image) for image in result.images]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(arrays[i] - arrays[j]).mean() > 2.0, (i, j)
    seen = [analyse(image) for image in result.images]
    assert sum(a.foreground == "orange" for a in seen) >= 3 and all(a.background == "navy" for a in seen), seen
