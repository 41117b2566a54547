"""Upscaler library: scanning, spandrel detection of real architectures, safe loading, caching and tiling."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers.upscaler_models import compact_model, esrgan_model, save_model
from webui.errors import ModelFileError, UserInputError
from webui.models.spandrel_import import import_spandrel
from webui.models.upscalers import UpscalerLibrary, run_tiled


class NotATensor:
    """A class a weights-only unpickler must refuse to rebuild."""

    def __init__(self) -> None:
        self.payload = 1


@pytest.fixture()
def folders(tmp_path):
    return [tmp_path / "models" / kind for kind in ("ESRGAN", "RealESRGAN", "SwinIR", "DAT")]


def _image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=generator)


def test_spandrel_imports_without_leaving_a_fake_torchvision():
    spandrel = import_spandrel()
    assert hasattr(spandrel, "ModelLoader")
    fake = sys.modules.get("torchvision")
    # Either a real torchvision or none at all: other libraries probe for it and must not get our stand-in.
    assert fake is None or hasattr(fake, "__file__")


def test_scan_is_recursive_sorted_and_ignores_other_files(folders):
    save_model(compact_model(), folders[0] / "zeta.pth")
    save_model(compact_model(), folders[0] / "nested" / "Alpha.safetensors")
    save_model(esrgan_model(), folders[1] / "middle.pt")
    (folders[3]).mkdir(parents=True)
    (folders[3] / "notes.txt").write_text("not a model")
    library = UpscalerLibrary(folders)
    assert library.names() == ["Alpha", "middle", "zeta"]
    assert {entry.kind for entry in library.entries()} == {"ESRGAN", "RealESRGAN"}
    save_model(compact_model(), folders[2] / "added.pth")
    assert "added" not in library.names()  # cached until refresh, as A1111's list
    assert "added" in [entry.name for entry in library.refresh()]


@pytest.mark.parametrize("filename, wrap", [("c.pth", None), ("c.safetensors", None), ("c.pth", "params_ema"),
                                            ("c.pt", "params")])
def test_compact_model_is_detected_in_every_file_form(folders, filename, wrap):
    save_model(compact_model(scale=4), folders[0] / filename, wrap=wrap)
    loaded = UpscalerLibrary(folders).load("c")
    assert loaded.scale == 4
    assert loaded.architecture == "RealESRGAN Compact"
    assert loaded.dtype == torch.float32  # CPU


def test_esrgan_rrdbnet_is_detected_with_its_scale(folders):
    save_model(esrgan_model(scale=2), folders[0] / "rrdb.pth")
    loaded = UpscalerLibrary(folders).load("rrdb")
    assert (loaded.architecture, loaded.scale) == ("ESRGAN", 2)
    out = loaded.upscale_tensor(_image(12, 10))
    assert out.shape == (1, 3, 24, 20)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_identity_compact_is_exact_nearest_upscale(folders):
    save_model(compact_model(scale=2, identity=True), folders[0] / "ident.safetensors")
    loaded = UpscalerLibrary(folders).load("ident")
    image = _image(20, 30)
    out = loaded.upscale_tensor(image, tile=0)
    assert torch.allclose(out, F.interpolate(image, scale_factor=2, mode="nearest"), atol=1e-6)


def test_tiled_matches_untiled(folders):
    # num_conv=2 gives four 3x3 convs: a 4-pixel reach, within a quarter of a 16-pixel overlap → exact.
    save_model(compact_model(scale=2, num_conv=2, seed=3), folders[0] / "rand.pth")
    loaded = UpscalerLibrary(folders).load("rand")
    image = _image(70, 90, seed=1)
    whole = loaded.upscale_tensor(image, tile=0)
    exact = loaded.upscale_tensor(image, tile=32, overlap=16)
    assert exact.shape == whole.shape == (1, 3, 140, 180)
    assert float((exact - whole).abs().max()) < 1e-4
    # A1111's default 8-pixel overlap is only approximately seamless for this model, but close.
    default = loaded.upscale_tensor(image, tile=32, overlap=8)
    assert float((default - whole).abs().mean()) < 2e-3
    # Without blending the tile edges (zero padding) would show: the check above can fail.
    no_overlap = loaded.upscale_tensor(image, tile=32, overlap=0)
    assert float((no_overlap - whole).abs().mean()) > float((default - whole).abs().mean())


def test_run_tiled_weights_sum_to_one_everywhere():
    image = _image(53, 77, seed=2)

    def nearest(part):
        return F.interpolate(part, scale_factor=3, mode="nearest")

    for tile, overlap in [(16, 4), (20, 1), (32, 8), (10, 10)]:
        out = run_tiled(nearest, image, 3, tile, overlap)
        assert torch.allclose(out, nearest(image), atol=1e-6), (tile, overlap)


def test_model_is_cached_and_replaced(folders):
    save_model(compact_model(seed=1), folders[0] / "one.pth")
    save_model(compact_model(seed=2), folders[0] / "two.pth")
    library = UpscalerLibrary(folders)
    first = library.load("one")
    assert library.load("one") is first
    second = library.load("two")
    assert second is not first and library.load("two") is second
    assert library.load("one") is not first  # only one model stays loaded
    path = folders[0] / "one.pth"
    save_model(compact_model(seed=5), path)
    os.utime(path, ns=(1, 10**18))  # a replaced file (new mtime) is read again
    reloaded = library.load("one")
    assert not torch.equal(next(reloaded.descriptor.model.parameters()), next(first.descriptor.model.parameters()))


def test_garbage_file_is_a_model_file_error_naming_it(folders):
    folders[0].mkdir(parents=True)
    (folders[0] / "broken.pth").write_bytes(b"this is not a zip or a pickle" * 10)
    with pytest.raises(ModelFileError, match="broken.pth"):
        UpscalerLibrary(folders).load("broken")


def test_truncated_safetensors_is_a_model_file_error(folders):
    path = save_model(compact_model(), folders[0] / "cut.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="cut.safetensors"):
        UpscalerLibrary(folders).load("cut")


def test_unknown_architecture_is_a_model_file_error(folders):
    folders[0].mkdir(parents=True)
    torch.save({"encoder.weight": torch.zeros(4, 4)}, folders[0] / "mystery.pth")
    with pytest.raises(ModelFileError, match="mystery.pth.*not an upscaler model spandrel recognises"):
        UpscalerLibrary(folders).load("mystery")


def test_pickle_with_objects_is_refused(folders):
    folders[0].mkdir(parents=True)
    torch.save({"body.0.weight": torch.zeros(1), "evil": NotATensor()}, folders[0] / "evil.pth")
    with pytest.raises(ModelFileError, match="evil.pth was refused"):
        UpscalerLibrary(folders).load("evil")


def test_unknown_name_lists_known_ones(folders):
    save_model(compact_model(), folders[0] / "4x-UltraSharp.pth")
    save_model(compact_model(), folders[1] / "ESRGAN_4x.pth")
    with pytest.raises(UserInputError) as info:
        UpscalerLibrary(folders).load("4x-UltraSharpish")
    assert "4x-UltraSharp, ESRGAN_4x" in str(info.value)
    assert "Did you mean 4x-UltraSharp" in str(info.value)
    assert not isinstance(info.value, ModelFileError)


def test_known_realesrgan_files_carry_a1111_names(folders):
    save_model(compact_model(scale=4), folders[1] / "RealESRGAN_x4plus.pth")
    save_model(compact_model(scale=4, num_conv=1), folders[1] / "realesr-general-x4v3.pth")
    save_model(compact_model(scale=2), folders[3] / "DAT_x2.safetensors")
    library = UpscalerLibrary(folders)
    assert library.names() == ["DAT x2", "R-ESRGAN 4x+", "R-ESRGAN General 4xV3"]
    # Infotexts say "R-ESRGAN 4x+"; the stem works as well and finds the same file.
    assert library.resolve("RealESRGAN_x4plus") == library.resolve("R-ESRGAN 4x+")
    assert library.load("r-esrgan 4x+").path.name == "RealESRGAN_x4plus.pth"


def test_names_cannot_escape_the_folders(folders, tmp_path):
    save_model(compact_model(), tmp_path / "outside.pth")
    save_model(compact_model(), folders[0] / "inside.pth")
    library = UpscalerLibrary(folders)
    for name in ("../../outside", "../outside.pth", str(tmp_path / "outside"), "/etc/passwd"):
        with pytest.raises(UserInputError, match="Unknown upscaler"):
            library.load(name)
    (folders[0] / "link.pth").symlink_to(tmp_path / "outside.pth")
    assert library.refresh() and "link" not in library.names()


def test_case_insensitive_lookup(folders):
    save_model(compact_model(), folders[0] / "MyModel.pth")
    assert UpscalerLibrary(folders).load("mymodel").name == "MyModel"


def test_output_values_follow_the_input(folders):
    # A random Compact model adds the nearest-upsampled input to its output: the picture must survive.
    save_model(compact_model(scale=2, seed=4), folders[0] / "rand.pth")
    loaded = UpscalerLibrary(folders).load("rand")
    image = _image(16, 16, seed=5)
    out = loaded.upscale_tensor(image).numpy()
    base = F.interpolate(image, scale_factor=2, mode="nearest").numpy()
    assert np.corrcoef(out.ravel(), base.ravel())[0, 1] > 0.5


def test_grayscale_model_is_refused_clearly(folders):
    save_model(compact_model(scale=2, in_channels=1), folders[0] / "gray.pth")
    with pytest.raises(ModelFileError, match="gray.pth works on 1-channel images"):
        UpscalerLibrary(folders).load("gray")
