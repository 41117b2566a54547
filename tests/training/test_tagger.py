"""WD14-style tagging with a tiny ONNX model: input layout, thresholds, exclusions, underscores, trigger first."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.helpers.tiny_taggers import write_tiny_tagger
from webui.errors import UserInputError
from webui.training.tagger import TagSettings, list_taggers, tagger_cache, tagger_hint


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagger")
    write_tiny_tagger(root / "tiny-wd14")
    (root / "incomplete").mkdir()  # no model files: not offered
    return root


def test_colour_tags_thresholds_and_ratings(tagger_dir):
    tagger = tagger_cache(tagger_dir).get("tiny-wd14")
    assert tagger.size == 32  # read from the model input, not assumed
    result = tagger.tag(Image.new("RGB", (50, 30), (255, 0, 0)), TagSettings())
    general = dict(result.general)
    assert "red" in general and "green" not in general and "blue" not in general
    assert result.rating["general"] > result.rating["sensitive"]
    assert result.character == []  # 0.73 is below the default character threshold 0.85
    strict = TagSettings(general_threshold=0.6, character_threshold=0.7)
    caption = tagger.tag(Image.new("RGB", (40, 40), (0, 0, 255)), strict).caption(strict)
    # Character tags first, then general ones by confidence; long_hair (0.5) is under 0.6; no rating tags.
    assert caption == "hatsune miku, blue, simple background, ^_^"  # 0.998, 0.95, 0.88


def test_input_is_bgr_on_white_padding(tagger_dir):
    tagger = tagger_cache(tagger_dir).get("tiny-wd14")
    rgba = Image.new("RGBA", (64, 16), (255, 0, 0, 255))
    array = tagger.input_array(rgba)
    assert array.shape == (1, 32, 32, 3) and array.dtype == np.float32
    assert tuple(array[0, 16, 16]) == (0.0, 0.0, 255.0)  # red in BGR order, 0..255
    assert tuple(array[0, 1, 16]) == (255.0, 255.0, 255.0)  # padded with white above and below


def test_trigger_first_exclusions_and_underscores(tagger_dir):
    tagger = tagger_cache(tagger_dir).get("tiny-wd14")
    settings = TagSettings(general_threshold=0.4, trigger="sks",
                           excluded=TagSettings.parse_excluded("simple_background, RED"))
    caption = tagger.tag(Image.new("RGB", (32, 32), (255, 0, 0)), settings).caption(settings)
    tags = caption.split(", ")
    assert tags[0] == "sks"
    assert "long hair" in tags and "long_hair" not in tags
    assert "^_^" in tags  # kaomoji keep their underscore
    assert "red" not in tags and "simple background" not in tags
    kept = TagSettings(general_threshold=0.4, replace_underscores=False)
    assert "long_hair" in tagger.tag(Image.new("RGB", (32, 32)), kept).tags(kept)


def test_missing_tagger_says_where_to_put_one(tmp_path, tagger_dir):
    assert list_taggers(tagger_dir) == ["tiny-wd14"]
    with pytest.raises(UserInputError, match="model.onnx"):
        tagger_cache(tmp_path).get("wd14")
    assert str(tmp_path) in tagger_hint(tmp_path)
    with pytest.raises(UserInputError):
        tagger_cache(tagger_dir).get("../tagger/tiny-wd14")


def test_brackets_escaped_for_prompts_only():
    from webui.training.tagger import TagResult

    result = TagResult(general=[("star_(symbol)", 0.9), ("solo", 0.8)])
    assert result.caption(TagSettings()) == "star (symbol), solo"
    assert result.caption(TagSettings(escape_brackets=True)) == "star \\(symbol\\), solo"
