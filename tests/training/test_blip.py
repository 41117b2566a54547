"""BLIP captioning through the app's loader, with a tiny BLIP-shaped model built here and loaded offline."""
from __future__ import annotations

import os

import pytest
from PIL import Image

from tests.helpers.tiny_taggers import TINY_WORDS, write_tiny_blip
from webui.errors import UserInputError
from webui.training.blip import CaptionSettings, blip_cache, list_blip_models


def test_tiny_blip_captions_offline(tmp_path):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # any attempt to fetch a file would raise
    write_tiny_blip(tmp_path / "tiny-blip")
    (tmp_path / "not-a-model").mkdir()
    assert list_blip_models(tmp_path) == ["tiny-blip"]
    captioner = blip_cache(tmp_path).get("tiny-blip")
    settings = CaptionSettings(min_length=3, max_length=8)
    red = captioner.caption(Image.new("RGB", (50, 40), "red"), settings)
    words = red.split()
    assert 2 <= len(words) <= 8
    assert set(words) <= set(TINY_WORDS)  # decoded from the folder's own vocab
    assert captioner.caption(Image.new("RGB", (50, 40), "red"), settings) == red  # greedy: deterministic


def test_missing_blip_model_says_where_to_put_one(tmp_path):
    with pytest.raises(UserInputError, match="BLIP"):
        blip_cache(tmp_path).get("blip-large")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "blip"}')
    with pytest.raises(UserInputError, match="could not be loaded"):
        blip_cache(tmp_path).get("broken")
