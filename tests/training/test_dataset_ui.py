"""The Dataset and Tagging sub-tabs: built inside a Blocks, and their actions run on a real folder."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from tests.helpers.tiny_taggers import write_tiny_tagger
from webui.errors import UserInputError
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.runtime import build_runtime
from webui.training.interrogate import Interrogator
from webui.ui.train_dataset_tab import (
    NO_CAPTIONS,
    build_dataset_tabs,
    create_dataset,
    dataset_overview,
)
from webui.ui.train_tagging_tab import BatchOperation, Scope, apply_batch, editor_view, run_tagging, save_one


@pytest.fixture
def runtime(tmp_path):
    write_tiny_tagger(tmp_path / "tagger" / "tiny-wd14")
    folders = Folders(checkpoints=tmp_path / "ckpt", vae=tmp_path / "vae", lora=(tmp_path / "lora",),
                      embeddings=tmp_path / "emb", outputs=tmp_path / "out", data=tmp_path,
                      taggers=tmp_path / "tagger", blip=tmp_path / "blip")
    return build_runtime(folders, device_config(device="cpu"), hashing=False)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, colour in enumerate(["red", "red", "blue"]):
        Image.new("RGB", (120, 96), colour).save(folder / f"photo{index}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def test_tabs_build_inside_a_blocks(runtime):
    with gr.Blocks() as demo:
        with gr.Tabs():
            build_dataset_tabs(runtime)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"train_dataset_tab", "train_tagging_tab", "train_dataset_create", "train_tagging_apply"} <= ids


def test_create_tag_and_edit_a_dataset(runtime, photos, tmp_path):
    interrogator = Interrogator(runtime.folders.taggers, runtime.folders.blip)
    train_dir = tmp_path / "img"
    report = create_dataset(interrogator, [str(photos / "photo0.jpg")], str(photos), str(train_dir), 10, "sks", "toy",
                            64, 64, "centre", False, True, False, 64, "tiny-wd14", 0.6, 0.85, "simple background")
    assert "skipped broken.jpg" in report
    subset = train_dir / "10_sks toy"
    # photo0 uploaded and found in the folder: 4 sources, each with a flipped copy.
    assert sorted(p.name for p in subset.glob("*.png")) == [f"{n:04d}.png" for n in range(1, 9)]
    assert (subset / "0001.txt").read_text() == "sks, red, ^_^\n"
    assert (subset / "0008.txt").read_text() == "sks, blue, ^_^\n"  # the flipped copy of the blue photo
    assert np.asarray(Image.open(subset / "0001.png")).shape == (64, 64, 3)

    table, gallery = dataset_overview(str(train_dir), 2, 5)
    assert "8 images, 80 per epoch" in table and "40 steps per epoch" in table and "200 steps in 5" in table
    assert len(gallery) == 8 and gallery[0][1] == "sks, red, ^_^"
    with pytest.raises(UserInputError, match="choose its parent"):
        dataset_overview(str(subset), 1, 1)  # kohya's classic mistake gets kohya's hint

    summary = run_tagging(interrogator, str(train_dir), "tiny-wd14", 0.4, 0.7, "", "sks", "overwrite")
    assert summary.startswith("Captioned 8 image(s)")
    assert (subset / "0001.txt").read_text() == "sks, hatsune miku, red, simple background, ^_^, long hair\n"
    assert (subset / "0001.txt.bak").read_text() == "sks, red, ^_^\n"

    frequency, shown_gallery, shown, info = editor_view(str(train_dir), "blue", "all", "")
    assert ["red", 6] in frequency and ["blue", 2] in frequency and ["sks", 8] in frequency
    assert shown == [str(subset / "0007.png"), str(subset / "0008.png")]
    assert all("blue" in caption for _, caption in shown_gallery)
    assert "2 of 8" in info and "`sks` × 8" in info
    removed = apply_batch(str(train_dir), shown, Scope.SHOWN.value, BatchOperation.REMOVE.value, "long hair, ^_^",
                          "", "")
    assert removed.startswith("Saved 2 caption(s) of 2")
    assert (subset / "0007.txt").read_text() == "sks, hatsune miku, blue, simple background\n"
    assert "long hair" in (subset / "0001.txt").read_text()  # not among the images shown
    apply_batch(str(train_dir), shown, Scope.ALL.value, BatchOperation.REPLACE.value, "", "hatsune miku", "")
    assert "hatsune miku" not in (subset / "0001.txt").read_text()
    apply_batch(str(train_dir), [], Scope.ALL.value, BatchOperation.MOVE_FRONT.value, "red", "", "")
    assert (subset / "0001.txt").read_text().startswith("red, sks")
    assert save_one(str(train_dir), str(subset / "0002.png"), "sks, toy, red") == "Saved 0002.png"
    assert (subset / "0002.txt").read_text() == "sks, toy, red\n"


def test_step_estimate_and_missing_tagger_message(tmp_path):
    empty = Interrogator(tmp_path / "none", tmp_path / "none-blip")
    with pytest.raises(UserInputError, match="model.onnx"):
        run_tagging(empty, str(tmp_path), "", 0.35, 0.85, "", "", "overwrite")
    with pytest.raises(UserInputError, match="Upload images"):
        create_dataset(empty, [], "", str(tmp_path / "img"), 1, "a", "", 64, 64, "centre", False, False,
                       False, 8, NO_CAPTIONS, 0.35, 0.85, "")
    Image.new("RGB", (80, 80)).save(tmp_path / "a.png")
    with pytest.raises(UserInputError, match="No tagger or BLIP model"):
        create_dataset(empty, [], str(tmp_path), str(tmp_path / "img"), 1, "a", "", 64, 64, "centre", False, False,
                       False, 8, "wd14", 0.35, 0.85, "")
