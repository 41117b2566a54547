"""LoRA tags in prompts through real generation: applied, weighted, switched, restored, and reported."""
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.helpers.tiny_models import build_tiny_checkpoint
from tests.networks.tiny import kohya_lora, lora_targets, param_hash
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img

pytestmark = pytest.mark.e2e


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
    # This LoRA (x5) repaints the random model's 3-step picture whole from about weight 0.1 on (mean change ~44 at any
    # weight above it, the order by thread count), so the weak one sits below that.
    weak, _ = _generate(runtime, "a red circle <lora:cute dog-000017:0.05>")
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


def test_two_stacks_in_sequence_give_the_images_of_each_stack_on_a_fresh_model(runtime):
    first, second = "a red circle <lora:cute dog-000017:0.8> <lora:ink:0.4>", "a red circle <lora:ink:-0.7>"
    after_plain, _ = _generate(runtime, first)
    after_first, _ = _generate(runtime, second)
    runtime.models.unload()  # the next call loads the checkpoint again: a model no LoRA has ever touched
    fresh_second, _ = _generate(runtime, second)
    runtime.models.unload()
    fresh_first, _ = _generate(runtime, first)
    plain, _ = _generate(runtime, "a red circle")
    assert not np.array_equal(after_first, plain) and not np.array_equal(after_first, after_plain)
    assert np.array_equal(after_first, fresh_second)
    assert np.array_equal(after_plain, fresh_first)


def test_bad_lora_files_are_reported_and_leave_the_model_untouched(runtime):
    folder = runtime.loras.roots[0] / "bad"
    folder.mkdir(exist_ok=True)
    names = runtime.models.load().lora_names()
    good = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=9)
    nan = dict(good)
    key = next(k for k in nan if k.endswith("lora_up.weight"))
    nan[key] = nan[key].clone()
    nan[key][0, 0] = float("nan")
    save_file(nan, str(folder / "nan.safetensors"))
    save_file(good, str(folder / "cut.safetensors"))
    data = (folder / "cut.safetensors").read_bytes()
    (folder / "cut.safetensors").write_bytes(data[: len(data) // 2])
    misfit = {
        k: (torch.zeros(v.shape[0] + 3, v.shape[1]) if k.endswith("lora_up.weight") else v) for k, v in good.items()
    }
    save_file(misfit, str(folder / "misfit.safetensors"))
    save_file({"model.some.weight": torch.zeros(3)}, str(folder / "junk.safetensors"))
    plain, _ = _generate(runtime, "a red circle")
    pristine = param_hash(_models(runtime))
    image, result = _generate(runtime, "a red circle <lora:nan:1> <lora:cut:1> <lora:misfit:1> <lora:junk:1>")
    assert np.array_equal(image, plain) and param_hash(_models(runtime)) == pristine
    text = "\n".join(result.warnings)
    assert "NaN or Inf" in text and "cut.safetensors" in text and "misfit" in text and "no key is in a known" in text
    assert "Lora hashes" not in result.infotexts[0]


def test_path_names_read_no_file_outside_the_lora_folders(runtime, monkeypatch):
    import webui.networks.library as library_module
    import webui.networks.lora_file as lora_file_module

    root = runtime.loras.roots[0]
    names = runtime.models.load().lora_names()
    secret = kohya_lora(names, lora_targets(names), rank=4, alpha=4.0, seed=21)
    for where in (root.parent / "secret.safetensors", root.parent.parent / "secret.safetensors"):
        save_file({k: v * 5 for k, v in secret.items()}, str(where))  # would change the image if it were read
    opened = []
    for module, function in ((library_module, "read_lora"), (library_module, "scan_header"),
                             (lora_file_module, "file_hash"), (lora_file_module, "_read_raw")):
        real = getattr(module, function)

        def recording(path, *args, _real=real, **kwargs):
            opened.append(Path(path).resolve())
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(module, function, recording)
    runtime.loras.scan()
    plain, _ = _generate(runtime, "a red circle")
    image, result = _generate(runtime, "a red circle <lora:../secret:1> <lora:../../secret:1> "
                                       f"<lora:{root.parent / 'secret'}:1>")
    assert np.array_equal(image, plain)
    assert sum("LoRA not found" in w for w in result.warnings) == 3
    assert opened  # the scan did read headers: the recorder is really in the path
    assert all(root.resolve() in path.parents for path in opened), [
        p for p in opened if root.resolve() not in p.parents
    ]
