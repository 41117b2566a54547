"""The Saving-images settings (pattern, format, folder, date subfolders) decide where and how images are written."""
import pytest
from PIL import Image

from tests.test_txt2img_e2e import _request, _runtime
from webui.errors import UserInputError
from webui.processing.txt2img import txt2img

pytestmark = pytest.mark.e2e


def test_filename_pattern_format_and_folder_settings_are_used(tmp_path):
    runtime = _runtime(tmp_path, "sd1")
    default = txt2img(_request(steps=2), runtime)
    assert default.paths[0].endswith("-1234.png") and "txt2img-images" in default.paths[0]

    runtime.settings.update({"samples_filename_pattern": "[seed]-[prompt_spaces]", "samples_format": "webp",
                             "outdir_samples": "my-images", "save_to_dirs": False})
    result = txt2img(_request(steps=2), runtime)
    path = tmp_path / "my-images" / "00000-1234-a red circle.webp"
    assert result.paths == [str(path)]
    with Image.open(path) as saved:
        assert saved.format == "WEBP" and saved.size == (64, 64)
    assert "Seed: 1234" in result.infotexts[0]


def test_output_folder_setting_cannot_leave_the_data_folder(tmp_path):
    runtime = _runtime(tmp_path / "data", "sd1")
    runtime.settings.update({"outdir_samples": str(tmp_path / "elsewhere")})
    with pytest.raises(UserInputError, match="outside"):
        txt2img(_request(steps=2), runtime)
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(UserInputError):
        runtime.settings.update({"samples_format": "gif"})


def test_comma_back_off_setting_reaches_the_prompt_encoder(tmp_path):
    import numpy as np

    runtime = _runtime(tmp_path, "sd1")
    # 74 tokens then a comma then more words: with back-off the chunk breaks at the comma, without it mid-phrase.
    prompt = ", ".join(["red"] * 37) + ", blue circle green square yellow star"
    on = np.asarray(txt2img(_request(prompt=prompt, steps=2, save_images=False), runtime).images[0]).astype(int)
    runtime.settings.update({"comma_padding_backtrack": 0})
    off = np.asarray(txt2img(_request(prompt=prompt, steps=2, save_images=False), runtime).images[0]).astype(int)
    runtime.settings.update({"comma_padding_backtrack": 20})
    again = np.asarray(txt2img(_request(prompt=prompt, steps=2, save_images=False), runtime).images[0]).astype(int)
    assert np.array_equal(on, again)
    assert np.abs(on - off).max() > 0
