"""A full-size SD1.5-layout checkpoint (random fp16 weights) is detected, loaded exactly, and denoises a step."""
import numpy as np
import pytest

from tests.helpers.full_size import write_full_size_checkpoint
from webui.models.architectures import detect_architecture
from webui.models.checkpoint_io import load_tensors, tensor_shapes
from webui.models.device import device_config
from webui.models.ldm_convert import ldm_to_diffusers
from webui.models.loader import load_components
from webui.paths import Folders
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img


@pytest.mark.slow
def test_full_size_sd15_loads_with_every_key_used_and_runs_a_step(tmp_path):
    ckpt_dir = tmp_path / "Stable-diffusion"
    path = write_full_size_checkpoint("sd1", ckpt_dir / "v1-5-random.safetensors")
    assert not path.with_suffix(".json").exists() and not path.with_suffix(".yaml").exists()

    arch = detect_architecture(tensor_shapes(path))
    assert arch.name == "sd1"
    converted = ldm_to_diffusers(load_tensors(path), arch)
    assert converted.unexpected == []
    assert set(converted.components) == {"unet", "vae", "text_encoder"}
    assert sum(len(c) for c in converted.components.values()) == 1130
    del converted

    components = load_components(path, device_config(device="cpu"))  # raises on any missing/unknown tensor
    assert sum(p.numel() for p in components.unet.parameters()) == 859_520_964
    del components

    folders = Folders(checkpoints=ckpt_dir, vae=tmp_path / "VAE", lora=(tmp_path / "Lora",),
                      embeddings=tmp_path / "emb", outputs=tmp_path / "out", data=tmp_path)
    runtime = build_runtime(folders, device_config(device="cpu"), hashing=False)
    request = make_request(Txt2ImgRequest, dict(prompt="a photo of a cat", steps=1, sampler_name="Euler",
                                                width=64, height=64, seed=1, save_images=False))
    image = txt2img(request, runtime).images[0]
    assert image.size == (64, 64)
    assert np.isfinite(np.asarray(image, dtype=float)).all()
