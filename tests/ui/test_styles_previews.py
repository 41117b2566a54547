"""styles.csv store (A1111 rules) and the fitted latent→RGB live preview on the bundled demo model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.previews import LatentPreviewer
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.styles import PromptStyle, StyleStore, merge_style, parse_styles_csv
from webui.processing.txt2img import txt2img


def test_merge_style_placeholder_and_append():
    assert merge_style("a cat", "{prompt}, masterpiece") == "a cat, masterpiece"
    assert merge_style(" a cat ", " oil painting ") == "a cat, oil painting"
    assert merge_style("", "oil painting") == "oil painting"
    assert merge_style("a cat", "") == "a cat"


def test_parse_reads_bom_old_two_column_files_and_skips_comments():
    text = "\ufeffname,text\n#hidden,x\nold, warm light\n"
    assert parse_styles_csv(text) == [PromptStyle("old", "warm light", "")]


def test_store_copies_defaults_applies_saves_and_deletes(tmp_path):
    store = StyleStore(tmp_path / "styles.csv")
    names = store.names()
    assert names == ["Negative: general", "Negative: anime", "Negative: portrait", "Negative: landscape"]
    assert (tmp_path / "styles.csv").is_file()
    prompt, negative = store.apply(["Negative: landscape"], "a lake", "people")
    assert prompt == "a lake" and negative.startswith("people, blurry, lowres, overexposed")
    store.save(PromptStyle("frame", "{prompt}, in a golden frame", ""))
    assert StyleStore(tmp_path / "styles.csv").apply(["frame"], "a lake", "")[0] == "a lake, in a golden frame"
    assert (tmp_path / "styles.csv.bak").is_file()
    store.delete("frame")
    assert "frame" not in store.names()
    with pytest.raises(UserInputError):
        store.apply(["nope"], "", "")
    with pytest.raises(UserInputError):
        store.save(PromptStyle("  "))


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    torch.set_num_threads(1)
    return demo_runtime(DEFAULT_CHECKPOINT, tmp_path_factory.mktemp("previews"))


@pytest.mark.e2e
def test_live_preview_looks_like_the_final_image(runtime):
    previewer = LatentPreviewer()
    job = JobState(preview_every=4)
    job.make_preview = lambda latents: previewer.render(runtime.models.loaded, runtime.models.device, latents)
    request = make_request(Txt2ImgRequest, dict(prompt="a red circle on a white background", steps=20, width=64,
                                                height=64, seed=3, sampler_name="Euler", save_images=False,
                                                checkpoint=DEFAULT_CHECKPOINT.stem))
    final = np.asarray(txt2img(request, runtime, job).images[0], dtype=np.float32)
    preview = np.asarray(job.preview, dtype=np.float32)
    assert preview.shape == final.shape
    # The cheap map is blurry (one colour per 8×8 latent cell) and its colours are only approximate for the
    # demo's small VAE, but the shape must stand out from the background where the final image has it.
    shape = (final[..., 0] - final[..., 1]) > 80  # the red circle
    assert 0.05 < shape.mean() < 0.6
    background = preview[:8, :8].reshape(-1, 3).mean(0)
    distance = np.abs(preview - background).sum(-1)
    assert distance[shape].mean() > distance[~shape].mean() + 60
    model = runtime.models.loaded
    assert previewer.map_for(model, runtime.models.device) is previewer.map_for(model, runtime.models.device)
