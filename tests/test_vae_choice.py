"""VAE choice: Automatic (same-name file beside the checkpoint), None (the checkpoint's own), or a file."""
import numpy as np
import pytest
from safetensors.torch import save_file

from tests.helpers.tiny_models import build_tiny_checkpoint, tiny_architecture, tiny_components
from webui.errors import UserInputError
from webui.models.device import device_config
from webui.models.ldm_convert import diffusers_to_ldm
from webui.paths import Folders
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img

pytestmark = pytest.mark.e2e


def _write_vae(path, seed):
    arch = tiny_architecture("sd1")
    state = diffusers_to_ldm({"vae": tiny_components("sd1", seed=seed)["vae"]}, arch)
    save_file({k.removeprefix("first_stage_model."): v.contiguous().clone() for k, v in state.items()}, str(path))


@pytest.fixture()
def runtime(tmp_path):
    ckpt_dir = tmp_path / "Stable-diffusion"
    build_tiny_checkpoint("sd1", ckpt_dir / "tiny.safetensors")
    (tmp_path / "VAE").mkdir()
    _write_vae(tmp_path / "VAE" / "other.vae.safetensors", seed=7)
    folders = Folders(checkpoints=ckpt_dir, vae=tmp_path / "VAE", lora=(tmp_path / "Lora",),
                      embeddings=tmp_path / "emb", outputs=tmp_path / "out", data=tmp_path)
    return build_runtime(folders, device_config(device="cpu"))


def _image(runtime, vae):
    request = make_request(Txt2ImgRequest, dict(prompt="a cat", steps=2, sampler_name="Euler", width=64, height=64,
                                                seed=3, save_images=False, vae=vae))
    result = txt2img(request, runtime)
    return np.asarray(result.images[0]), result.infotexts[0]


def test_vae_file_changes_the_image_and_is_named_in_the_infotext(runtime):
    own, own_text = _image(runtime, "None")
    other, other_text = _image(runtime, "other.vae.safetensors")
    assert not np.array_equal(own, other)
    assert "VAE: other.vae.safetensors" in other_text and "VAE hash: " in other_text
    assert "VAE:" not in own_text
    automatic, _ = _image(runtime, "Automatic")  # nothing named like the checkpoint: its own VAE
    assert np.array_equal(own, automatic)


def test_automatic_picks_the_same_name_vae_beside_the_checkpoint(runtime):
    _write_vae(runtime.registry.checkpoint_dir / "tiny.vae.safetensors", seed=7)
    runtime.registry.refresh()
    automatic, text = _image(runtime, "Automatic")
    chosen, _ = _image(runtime, "other.vae.safetensors")
    assert np.array_equal(automatic, chosen)
    assert "VAE: tiny.vae.safetensors" in text


def test_unknown_vae_is_a_clear_error(runtime):
    with pytest.raises(UserInputError, match="VAE not found: 'nope'"):
        _image(runtime, "nope")
