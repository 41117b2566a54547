"""img2img through the real path on the bundled demo model: strength, steps run, resize modes, batches, infotext."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.demo.analyser import analyse
from tests.helpers.demo_fixtures import demo_runtime_fixture, one_thread  # noqa: F401 (autouse fixture)
from webui.errors import PathOutsideRootError, UserInputError
from webui.processing.images import to_tensor
from webui.processing.img2img import img2img
from webui.processing.img2img_batch import BatchFolders, img2img_batch
from webui.processing.infotext_request import img2img_request_from_infotext
from webui.processing.jobs import JobState
from webui.processing.model_calls import decode_latents, encode_images, to_pil
from webui.processing.png_info import read_png_parameters
from webui.processing.request import Img2ImgRequest, Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img

pytestmark = pytest.mark.e2e

RED = "a red circle on a white background"
BLUE = "a blue square on a black background"
GREEN = "a green triangle on a gray background"


runtime = demo_runtime_fixture("img2img")


@pytest.fixture(scope="module")
def pictures(runtime):
    def draw(prompt, seed):
        request = make_request(Txt2ImgRequest, dict(prompt=prompt, steps=20, sampler_name="Euler a", width=64,
                                                    height=64, seed=seed, save_images=False))
        return txt2img(request, runtime).images[0]
    return {"red": draw(RED, 1), "blue": draw(BLUE, 3)}


def run(runtime, init, prompt="", strength=0.75, **fields):
    base = dict(init_images=init if isinstance(init, list) else [init], prompt=prompt, steps=20,
                sampler_name="Euler a", cfg_scale=3.0, width=64, height=64, seed=11, denoising_strength=strength,
                save_images=False)
    base.update(fields)
    return img2img(make_request(Img2ImgRequest, base), runtime)


def psnr(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(10 * np.log10(255.0**2 / max(((a - b) ** 2).mean(), 1e-10)))


def vae_round_trip(runtime, image):
    components, device = runtime.models.loaded.components, runtime.models.device
    with torch.no_grad():
        return to_pil(decode_latents(components, encode_images(components, to_tensor([image]), device), device))[0]


def test_strength_zero_is_a_vae_round_trip_and_psnr_falls_with_strength(runtime, pictures):
    red = pictures["red"]
    round_trip = vae_round_trip(runtime, red)
    means = []
    for strength in (0.0, 0.3, 0.6, 1.0):
        result = run(runtime, red, strength=strength, batch_size=4)
        means.append(np.mean([psnr(image, round_trip) for image in result.images]))
    assert means[0] > 35, means  # one step at the smallest sigma leaves the encoded picture as it was
    assert all(a - b > 2.0 for a, b in zip(means, means[1:], strict=False)), means


def test_strength_one_ignores_the_input(runtime, pictures):
    from_red = run(runtime, pictures["red"], GREEN, 1.0).images[0]
    from_blue = run(runtime, pictures["blue"], GREEN, 1.0).images[0]
    assert psnr(from_red, from_blue) > psnr(pictures["red"], pictures["blue"]) + 15
    assert [analyse(i).foreground for i in (from_red, from_blue)] == ["green", "green"]


@pytest.mark.parametrize("strength, expected", [(0.75, 16), (0.5, 11), (0.0, 1)])
def test_steps_run_follow_a1111(runtime, pictures, strength, expected):
    seen = []
    job = JobState(on_step=lambda state: seen.append(state.sampling_steps))
    request = make_request(Img2ImgRequest, dict(init_images=[pictures["red"]], steps=20, sampler_name="Euler",
                                                width=64, height=64, seed=1, denoising_strength=strength,
                                                save_images=False))
    img2img(request, runtime, job)
    assert len(seen) == expected and set(seen) == {expected}  # int(strength · steps) + 1


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_resize_modes_reach_the_request_size(runtime, pictures, mode):
    wide = pictures["red"].resize((128, 64))
    result = run(runtime, wide, RED, 0.3, resize_mode=mode, width=64, height=64)
    assert result.images[0].size == (64, 64)
    assert analyse(result.images[0]).foreground == "red"


def test_several_init_images_form_the_batch(runtime, pictures):
    result = run(runtime, [pictures["red"], pictures["blue"]], "", 0.3, batch_size=2, seed=40)
    assert result.seeds == [40, 41] and len(result.images) == 2
    assert psnr(result.images[0], pictures["red"]) > psnr(result.images[0], pictures["blue"]) + 5
    assert psnr(result.images[1], pictures["blue"]) > psnr(result.images[1], pictures["red"]) + 5


def test_infotext_saved_and_round_trip_reproduces(runtime, pictures):
    result = run(runtime, pictures["blue"], BLUE, 0.6, save_images=True, initial_noise_multiplier=0.9)
    path = result.paths[0]
    assert "/img2img-images/" in path
    text, _ = read_png_parameters(Image.open(path))
    assert text == result.infotexts[0]
    assert "Denoising strength: 0.6" in text and "Noise multiplier: 0.9" in text and "Mask blur" not in text
    again = img2img(img2img_request_from_infotext(text, [pictures["blue"]], save_images=False), runtime)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[0]))


def test_odd_input_pictures_are_accepted(runtime, pictures):
    rgba = pictures["red"].convert("RGBA")
    rgba.putalpha(200)
    grey16 = Image.fromarray((np.asarray(pictures["red"].convert("L"), dtype=np.uint16) * 257))
    for image in (rgba, pictures["red"].convert("P"), grey16):
        result = run(runtime, image, RED, 0.3)
        assert result.images[0].mode == "RGB" and result.images[0].size == (64, 64)


def test_batch_folder_writes_each_picture_inside_the_data_folder_and_records_it(runtime, pictures, tmp_path):
    source, masks = tmp_path / "in", tmp_path / "masks"
    source.mkdir()
    masks.mkdir()
    pictures["red"].save(source / "first.png")
    pictures["blue"].save(source / "second.jpg")
    Image.new("L", (64, 64), 0).save(masks / "first.png")  # an all-black mask: nothing of `first` is repainted
    fields = dict(prompt=GREEN, steps=4, sampler_name="Euler a", width=64, height=64, seed=21,
                  denoising_strength=0.9, inpainting_fill=1)
    result = img2img_batch(fields, BatchFolders(str(source), "batch-out", str(masks)), runtime)
    written = runtime.folders.data / "batch-out"
    assert sorted(p.name for p in written.iterdir()) == ["first.png", "second.png"]
    assert result.paths == [str(written / "first.png"), str(written / "second.png")]
    assert [item.seed for item in result.items] == [21, 21] and result.seeds == [21, 21]
    assert read_png_parameters(Image.open(written / "second.png"))[0] == result.infotexts[1]
    assert result.items[1].parameters["Denoising strength"] == 0.9
    # The masked picture kept every pixel; the unmasked one was repainted.
    assert psnr(Image.open(written / "first.png").convert("RGB"), pictures["red"]) > 40
    assert psnr(Image.open(written / "second.png").convert("RGB"), pictures["blue"].convert("RGB")) < 30


def test_batch_folder_refuses_bad_folders_before_generating(runtime, pictures, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    pictures["red"].save(source / "only.png")
    fields = dict(prompt=GREEN, steps=2, sampler_name="Euler a", width=64, height=64)
    with pytest.raises(PathOutsideRootError):
        img2img_batch(fields, BatchFolders(str(source), str(tmp_path / "elsewhere")), runtime)
    with pytest.raises(UserInputError, match="does not exist"):
        img2img_batch(fields, BatchFolders(str(tmp_path / "missing")), runtime)
    with pytest.raises(UserInputError, match="no images"):
        img2img_batch(fields, BatchFolders(str(tmp_path)), runtime)
    assert not (tmp_path / "elsewhere").exists()
