"""txt2img end to end on tiny checkpoints in each family's real single-file layout."""
import gc
import pickle
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.tiny_models import build_tiny_checkpoint
from tests.network_guard import no_network
from webui.errors import ModelFileError, UserInputError
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.infotext_request import request_from_infotext
from webui.processing.png_info import read_png_parameters
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img

pytestmark = pytest.mark.e2e

FAMILIES = ["sd1", "sd2", "sd2-v", "sdxl", "sdxl-refiner", "sd1-inpaint"]


def _runtime(tmp_path, *arches):
    ckpt_dir = tmp_path / "models" / "Stable-diffusion"
    for arch in arches:
        build_tiny_checkpoint(arch, ckpt_dir / f"tiny-{arch}.safetensors")
    folders = Folders(checkpoints=ckpt_dir, vae=tmp_path / "models" / "VAE", lora=(tmp_path / "models" / "Lora",),
                      embeddings=tmp_path / "embeddings", outputs=tmp_path / "outputs", data=tmp_path)
    return build_runtime(folders, device_config(device="cpu"))


def _request(**fields):
    base = dict(prompt="a red circle", negative_prompt="blurry", steps=3, sampler_name="Euler a", width=64,
                height=64, seed=1234, cfg_scale=5.0)
    base.update(fields)
    return make_request(Txt2ImgRequest, base)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def sd1_runtime(tmp_path_factory):
    return _runtime(tmp_path_factory.mktemp("sd1"), "sd1")


@pytest.mark.parametrize("arch", FAMILIES)
def test_each_family_generates_an_image(tmp_path, arch):
    runtime = _runtime(tmp_path, arch)
    result = txt2img(_request(checkpoint=f"tiny-{arch}", save_images=False), runtime)
    loaded = runtime.models.loaded.architecture
    assert (loaded.family, loaded.inpainting) == (arch.removesuffix("-inpaint").removesuffix("-v"), "inpaint" in arch)
    assert loaded.prediction_type == ("v_prediction" if arch == "sd2-v" else "epsilon")
    image = result.images[0]
    assert image.size == (64, 64)
    pixels = _pixels(image).astype(float)
    assert pixels.std() > 0.5, "the decoded image is flat: nothing was drawn"


def test_same_request_twice_gives_identical_pixels_and_png(sd1_runtime):
    first = txt2img(_request(), sd1_runtime)
    second = txt2img(_request(), sd1_runtime)
    assert np.array_equal(_pixels(first.images[0]), _pixels(second.images[0]))
    saved = [Image.open(p) for p in first.paths + second.paths]
    assert np.array_equal(_pixels(saved[0]), _pixels(saved[1]))
    assert first.paths[0] != second.paths[0]  # the counter never overwrites


def test_different_seeds_differ_and_batch_uses_seed_plus_i(sd1_runtime):
    batch = txt2img(_request(batch_size=2, save_images=False), sd1_runtime)
    assert batch.seeds == [1234, 1235]
    assert not np.array_equal(_pixels(batch.images[0]), _pixels(batch.images[1]))
    alone = txt2img(_request(seed=1235, save_images=False), sd1_runtime)
    assert np.array_equal(_pixels(batch.images[1]), _pixels(alone.images[0]))


def test_infotext_round_trip_reproduces_the_image(sd1_runtime):
    request = _request(prompt="a (red:1.3) circle\nsecond line", sampler_name="DPM++ 2M", scheduler="Karras",
                       subseed=99, subseed_strength=0.3, clip_skip=2)
    first = txt2img(request, sd1_runtime)
    text, _ = read_png_parameters(Image.open(first.paths[0]))
    assert text == first.infotexts[0]
    assert "Schedule type: Karras" in text and "Seed: 1234" in text and "Size: 64x64" in text
    again = txt2img(request_from_infotext(text), sd1_runtime)
    assert np.array_equal(_pixels(first.images[0]), _pixels(again.images[0]))


def test_output_files_follow_a1111_naming(sd1_runtime):
    result = txt2img(_request(seed=77, batch_size=2), sd1_runtime)
    names = [p.rsplit("/", 2)[-1] for p in result.paths]
    assert names[0].endswith("-77.png") and names[1].endswith("-78.png")
    counters = [int(n.split("-")[0]) for n in names]
    assert counters[1] == counters[0] + 1 and len(names[0].split("-")[0]) == 5
    assert result.grid is not None and result.grid.size == (128, 64)


def test_no_network_access_while_loading_and_generating(tmp_path):
    with no_network() as attempts:
        runtime = _runtime(tmp_path, "sd1", "sdxl")
        txt2img(_request(checkpoint="tiny-sd1", save_images=False), runtime)
        txt2img(_request(checkpoint="tiny-sdxl", save_images=False), runtime)
    assert attempts == []


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_bad_requests_leave_the_app_working(tmp_path):
    runtime = _runtime(tmp_path, "sd1")
    ckpt_dir = runtime.registry.checkpoint_dir
    good = txt2img(_request(save_images=False), runtime)
    (ckpt_dir / "broken.safetensors").write_bytes((ckpt_dir / "tiny-sd1.safetensors").read_bytes()[:5000])
    (ckpt_dir.parent / "secret.safetensors").write_bytes(b"x")
    runtime.registry.refresh()
    with pytest.raises(ModelFileError, match="truncated"):
        txt2img(_request(checkpoint="broken", save_images=False), runtime)
    with pytest.raises(UserInputError, match="not found"):
        txt2img(_request(checkpoint="../secret.safetensors", save_images=False), runtime)
    evil = ckpt_dir / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": _RunsCode(tmp_path / "pwned")}))
    runtime.registry.refresh()
    with pytest.raises(ModelFileError, match="refused"):
        txt2img(_request(checkpoint="evil", save_images=False), runtime)
    assert not (tmp_path / "pwned").exists()
    for bad in ({"width": 513}, {"steps": 0}, {"sampler_name": "Nope"}):
        with pytest.raises(UserInputError):
            _request(**bad)
    assert runtime.models.loaded is not None and runtime.models.loaded.checkpoint.stem == "tiny-sd1"
    after = txt2img(_request(save_images=False), runtime)
    assert np.array_equal(_pixels(good.images[0]), _pixels(after.images[0]))


def test_switching_checkpoints_frees_the_old_one(tmp_path):
    runtime = _runtime(tmp_path, "sd1", "sd2")
    first = weakref.ref(runtime.models.load("tiny-sd1").components.unet)
    runtime.models.load("tiny-sd2")
    gc.collect()
    assert first() is None, "the previous checkpoint's UNet is still referenced"
