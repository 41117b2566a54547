"""LoRA tags in prompts through real generation: applied, weighted, switched, restored, and reported."""
import numpy as np
import pytest
from safetensors.torch import save_file

from tests.helpers.tiny_models import build_tiny_checkpoint
from tests.networks.tiny import kohya_lora, lora_targets, param_hash
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    build_tiny_checkpoint("sd1", root / "ckpt" / "tiny.safetensors")
    folders = Folders(checkpoints=root / "ckpt", vae=root / "VAE", lora=(root / "Lora",), embeddings=root / "emb",
                      outputs=root / "out", data=root)
    runtime = build_runtime(folders, device_config(device="cpu"))
    names = runtime.models.load().lora_names()
    (root / "Lora" / "styles").mkdir(parents=True)
    for seed, stem in ((1, "cute dog-000017"), (2, "styles/ink")):
        tensors = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=seed)
        save_file({k: v * 5 for k, v in tensors.items()}, str(root / "Lora" / f"{stem}.safetensors"))
    return runtime


def _generate(runtime, prompt):
    request = make_request(Txt2ImgRequest, dict(prompt=prompt, steps=3, sampler_name="Euler", width=64, height=64,
                                                seed=5, save_images=False))
    result = txt2img(request, runtime)
    return np.asarray(result.images[0]).astype(int), result


def _models(runtime):
    loaded = runtime.models.loaded
    return {"unet": loaded.components.unet, **{e.slot: e.model for e in loaded.components.text_encoders}}


def test_lora_changes_the_image_scales_with_weight_and_restores(runtime):
    plain, _ = _generate(runtime, "a red circle")
    pristine = param_hash(_models(runtime))
    weak, _ = _generate(runtime, "a red circle <lora:cute dog-000017:0.3>")
    strong, result = _generate(runtime, "a red circle <lora: cute dog-000017 : 1.5 >")
    assert result.warnings == []
    assert 'Lora hashes: "cute dog-000017: ' in result.infotexts[0]
    assert np.abs(weak - plain).mean() < np.abs(strong - plain).mean()
    assert param_hash(_models(runtime)) != pristine  # merged into the weights, not run beside them
    again, _ = _generate(runtime, "a red circle")
    assert np.array_equal(again, plain)
    assert param_hash(_models(runtime)) == pristine


def test_switching_stacks_matches_each_stack_alone(runtime):
    both, _ = _generate(runtime, "a red circle <lora:cute dog-000017:0.8> <lora:ink:0.4>")
    _generate(runtime, "a red circle <lora:ink:1>")
    both_again, _ = _generate(runtime, "a red circle <lora:cute dog-000017:0.8> <lora:ink:0.4>")
    assert np.array_equal(both, both_again)


def test_missing_lora_warns_and_generation_continues(runtime):
    plain, _ = _generate(runtime, "a red circle")
    image, result = _generate(runtime, "a red circle <lora:cute dgo:1> <lora:../../secret:1>")
    assert np.array_equal(image, plain)
    assert any("LoRA not found: cute dgo" in w and "cute dog-000017" in w for w in result.warnings)
    assert any("secret" in w for w in result.warnings)
