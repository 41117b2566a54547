"""Prompt language through the real generation path: chunks, long negatives, editing, AND, emphasis, embeddings."""
import numpy as np
import pytest
import torch

from tests.helpers.tiny_models import build_tiny_checkpoint
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img

pytestmark = pytest.mark.e2e

WORDS = "red green blue circle square triangle sky grass stone water fire cloud tree road house light".split()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    root = tmp_path_factory.mktemp("prompts")
    build_tiny_checkpoint("sd1", root / "ckpt" / "tiny.safetensors")
    (root / "emb").mkdir()
    folders = Folders(checkpoints=root / "ckpt", vae=root / "VAE", lora=(root / "Lora",), embeddings=root / "emb",
                      outputs=root / "out", data=root)
    return build_runtime(folders, device_config(device="cpu"))


def _generate(runtime, prompt, negative="", **fields):
    request = make_request(Txt2ImgRequest, dict(prompt=prompt, negative_prompt=negative, steps=4,
                                                sampler_name="Euler", width=64, height=64, seed=11, cfg_scale=7.0,
                                                save_images=False, **fields))
    result = txt2img(request, runtime)
    return np.asarray(result.images[0]).astype(int), result


def _words(count, offset=0):
    return ", ".join(WORDS[(i + offset) % len(WORDS)] for i in range(count))


def test_second_chunk_changes_the_image(runtime):
    first_chunk = _words(37)  # 37 words + 36 commas = 73 tokens: the rest lands in chunk two
    base, _ = _generate(runtime, first_chunk + ", " + _words(20))
    same, _ = _generate(runtime, first_chunk + ", " + _words(20))
    other, _ = _generate(runtime, first_chunk + ", " + _words(20, offset=5))
    assert np.array_equal(base, same)
    assert not np.array_equal(base, other)


def test_long_negative_with_short_positive(runtime):
    negative = _words(150)  # ~300 tokens: four chunks against one
    image, result = _generate(runtime, "a red circle", negative)
    plain, _ = _generate(runtime, "a red circle")
    assert image.shape == (64, 64, 3) and not np.array_equal(image, plain)
    assert result.infotexts[0].splitlines()[1].startswith("Negative prompt: red, green")


def test_prompt_editing_switches_mid_way(runtime):
    edited, _ = _generate(runtime, "[a red circle:a blue square:2]")
    red, _ = _generate(runtime, "a red circle")
    blue, _ = _generate(runtime, "a blue square")
    never, _ = _generate(runtime, "[a red circle:a blue square:50]")
    assert not np.array_equal(edited, red) and not np.array_equal(edited, blue)
    assert np.array_equal(never, red)


def test_and_and_emphasis_change_the_image_and_weight_one_does_not(runtime):
    plain, _ = _generate(runtime, "a red circle")
    assert not np.array_equal(plain, _generate(runtime, "a red circle AND a blue square")[0])
    assert not np.array_equal(plain, _generate(runtime, "a (red:1.6) circle")[0])
    assert np.array_equal(plain, _generate(runtime, "a (red:1.0) circle")[0])


def test_extra_network_tags_are_removed_from_the_encoded_text(runtime):
    plain, _ = _generate(runtime, "a red circle")
    tagged, result = _generate(runtime, "a red circle<lora:cute dog-000017:0.7>")
    assert np.array_equal(plain, tagged)
    assert any("cute dog-000017" in w for w in result.warnings)
    assert "<lora:cute dog-000017:0.7>" in result.infotexts[0]


def test_textual_inversion_embedding_is_used_and_hashed(runtime):
    width = runtime.models.load().components.text_encoders[0].model.config.hidden_size
    torch.manual_seed(0)
    torch.save({"string_to_param": {"*": torch.randn(2, width)}, "name": "shinyemb"},
               runtime.folders.embeddings / "shinyemb.pt")
    torch.save({"string_to_param": {"*": torch.randn(1, width + 1)}}, runtime.folders.embeddings / "wrongwidth.pt")
    with_embedding, result = _generate(runtime, "a shinyemb circle")
    assert "TI hashes: \"shinyemb: " in result.infotexts[0]
    (runtime.folders.embeddings / "shinyemb.pt").unlink()
    without, result = _generate(runtime, "a shinyemb circle")
    assert not np.array_equal(with_embedding, without)
    assert "TI hashes" not in result.infotexts[0]
    database = runtime.embeddings.database_for(None, (width,))
    assert "wrongwidth" in database.skipped
