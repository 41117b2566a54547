"""Latent upscale modes and image upscalers (None, Lanczos, Nearest, spandrel models) by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.upscaler_models import compact_model, save_model
from webui.errors import UserInputError
from webui.models.upscalers import UpscalerLibrary
from webui.processing.upscale import (
    LATENT_UPSCALE_MODES,
    canonical_upscaler_name,
    upscale_by,
    upscale_image,
    upscale_latents,
    upscaler_list,
    upscaler_names,
)


def _latents(height: int = 8, width: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 4, height, width, generator=torch.Generator().manual_seed(seed))


def _picture(width: int = 40, height: int = 30, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture()
def library(tmp_path):
    folder = tmp_path / "models" / "ESRGAN"
    save_model(compact_model(scale=2, identity=True), folder / "ident2x.pth")
    save_model(compact_model(scale=4, seed=7), folder / "rand4x.safetensors")
    save_model(compact_model(scale=1, seed=8), folder / "restore1x.pth")
    return UpscalerLibrary([folder, tmp_path / "models" / "RealESRGAN"])


def test_latent_modes_are_a1111s():
    assert LATENT_UPSCALE_MODES == {
        "Latent": ("bilinear", False),
        "Latent (antialiased)": ("bilinear", True),
        "Latent (bicubic)": ("bicubic", False),
        "Latent (bicubic antialiased)": ("bicubic", True),
        "Latent (nearest)": ("nearest", False),
        "Latent (nearest-exact)": ("nearest-exact", False),
    }


@pytest.mark.parametrize("mode", list(LATENT_UPSCALE_MODES))
def test_every_latent_mode_gives_the_target_shape_and_dtype(mode):
    latents = _latents()
    out = upscale_latents(latents, mode, 13, 9)
    assert out.shape == (2, 4, 13, 9) and out.dtype == latents.dtype
    half = upscale_latents(latents.half(), mode, 16, 12)
    assert half.dtype == torch.float16 and half.shape == (2, 4, 16, 12)


@pytest.mark.parametrize("mode", ["Latent (nearest)", "Latent (nearest-exact)"])
def test_nearest_modes_repeat_values_at_integer_scale(mode):
    latents = _latents()
    out = upscale_latents(latents, mode, 16, 12)
    expected = latents.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.equal(out, expected)


def test_nearest_and_nearest_exact_pick_different_source_pixels():
    latents = torch.arange(4, dtype=torch.float32).reshape(1, 1, 1, 4).repeat(1, 1, 4, 1)
    nearest = upscale_latents(latents, "Latent (nearest)", 4, 3)[0, 0, 0]
    exact = upscale_latents(latents, "Latent (nearest-exact)", 4, 3)[0, 0, 0]
    assert nearest.tolist() == [0.0, 1.0, 2.0]  # floor(i * 4/3)
    assert exact.tolist() == [0.0, 2.0, 3.0]  # floor((i + 0.5) * 4/3)


def test_bilinear_interpolates_between_neighbours():
    latents = torch.tensor([[[[0.0, 1.0]]]])
    out = upscale_latents(latents, "Latent", 1, 4)[0, 0, 0]
    assert torch.allclose(out, torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_bicubic_overshoots_a_step_and_bilinear_does_not():
    step = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0]).reshape(1, 1, 1, 6).repeat(1, 1, 6, 1)
    bilinear = upscale_latents(step, "Latent", 12, 12)
    bicubic = upscale_latents(step, "Latent (bicubic)", 12, 12)
    assert float(bilinear.min()) >= 0.0 and float(bilinear.max()) <= 1.0
    assert float(bicubic.min()) < -0.01 and float(bicubic.max()) > 1.01


@pytest.mark.parametrize("plain, antialiased", [("Latent", "Latent (antialiased)"),
                                                ("Latent (bicubic)", "Latent (bicubic antialiased)")])
def test_antialias_smooths_when_shrinking(plain, antialiased):
    latents = _latents(16, 16)
    if plain == "Latent":
        # Bilinear antialiasing only widens the kernel when shrinking: enlarging gives the same values.
        assert torch.allclose(upscale_latents(latents, plain, 32, 32),
                              upscale_latents(latents, antialiased, 32, 32), atol=1e-5)
    small_plain = upscale_latents(latents, plain, 5, 5)
    small_aa = upscale_latents(latents, antialiased, 5, 5)
    assert float((small_plain - small_aa).abs().max()) > 0.05
    # Antialiasing averages over the shrunk area: the result is smoother (lower spread) than point sampling.
    assert float(small_aa.std()) < float(small_plain.std())


def test_unknown_latent_mode_is_a_user_error():
    with pytest.raises(UserInputError, match="Latent \\(bicubic\\)"):
        upscale_latents(_latents(), "Latent (cubic)", 16, 12)


def test_names_in_a1111_order(library):
    assert upscaler_names(library) == ["None", "Lanczos", "Nearest", "ident2x", "rand4x", "restore1x"]
    assert upscaler_names(None) == ["None", "Lanczos", "Nearest"]
    rows = upscaler_list(library)
    assert [row["name"] for row in rows] == upscaler_names(library)
    assert rows[3]["model_name"] == "ESRGAN" and rows[3]["model_path"].endswith("ident2x.pth")
    assert set(rows[0]) == {"name", "model_name", "model_path", "model_url", "scale"}


@pytest.mark.parametrize("name", ["None", "Lanczos", "Nearest", "ident2x", "rand4x", "restore1x"])
@pytest.mark.parametrize("size", [(97, 61), (160, 120), (20, 15)])
def test_every_upscaler_reaches_the_exact_target_size(library, name, size):
    out = upscale_image(_picture(), name, size[0], size[1], library)
    assert out.size == size and out.mode == "RGB"


def test_lanczos_and_none_keep_a_flat_colour_and_match_each_other(library):
    flat = Image.new("RGB", (30, 20), (200, 40, 90))
    for name in ("None", "Lanczos"):
        out = np.asarray(upscale_image(flat, name, 75, 50, library))
        assert np.abs(out.astype(int) - [200, 40, 90]).max() <= 1
    picture = _picture()
    assert np.array_equal(np.asarray(upscale_image(picture, "None", 100, 80, library)),
                          np.asarray(upscale_image(picture, "Lanczos", 100, 80, library)))


def test_nearest_copies_pixels_in_blocks(library):
    picture = _picture(10, 8)
    out = np.asarray(upscale_image(picture, "Nearest", 30, 24, library))
    expected = np.asarray(picture).repeat(3, axis=0).repeat(3, axis=1)
    assert np.array_equal(out, expected)


def test_model_upscaler_runs_twice_to_reach_4x(library):
    # The identity 2x model is a nearest upscale: two passes give exactly nearest 4x; one pass plus
    # Lanczos would blur it, so this fails if the model is not repeated.
    picture = _picture(16, 12)
    out = np.asarray(upscale_image(picture, "ident2x", 64, 48, library))
    expected = np.asarray(picture).repeat(4, axis=0).repeat(4, axis=1)
    assert np.array_equal(out, expected)


def test_model_upscaler_downscale_is_plain_lanczos(library):
    picture = _picture(40, 30)
    assert np.array_equal(np.asarray(upscale_image(picture, "rand4x", 20, 15, library)),
                          np.asarray(picture.resize((20, 15), Image.Resampling.LANCZOS)))


def test_random_model_keeps_the_picture(library):
    picture = _picture(24, 24, seed=3).resize((24, 24))
    out = np.asarray(upscale_image(picture, "rand4x", 96, 96, library), dtype=np.float64)
    base = np.asarray(picture.resize((96, 96), Image.Resampling.NEAREST), dtype=np.float64)
    assert np.corrcoef(out.ravel(), base.ravel())[0, 1] > 0.5


def test_unknown_upscaler_lists_all_names(library):
    with pytest.raises(UserInputError) as info:
        upscale_image(_picture(), "R-ESRGAN 4x+", 80, 60, library)
    message = str(info.value)
    for name in ("None", "Lanczos", "Nearest", "ident2x", "rand4x"):
        assert name in message


def test_latent_mode_is_not_an_image_upscaler(library):
    with pytest.raises(UserInputError, match="latents"):
        upscale_image(_picture(), "Latent", 80, 60, library)


def test_escaping_name_is_unknown(library, tmp_path):
    save_model(compact_model(), tmp_path / "outside.pth")
    with pytest.raises(UserInputError, match="Unknown upscaler"):
        upscale_image(_picture(), "../../outside", 80, 60, library)


def test_upscale_by_rounds_down_to_multiples_of_8(library):
    out = upscale_by(_picture(50, 30), "Lanczos", 2.5, library)
    assert out.size == (120, 72)  # 125 → 120, 75 → 72, as A1111's Upscaler.upscale


def test_upscale_by_one_still_runs_a_restoration_model(library):
    picture = _picture(32, 24)
    out = upscale_by(picture, "restore1x", 1.0, library)
    assert out.size == (32, 24)
    assert not np.array_equal(np.asarray(out), np.asarray(picture))
    assert np.array_equal(np.asarray(upscale_by(picture, "Lanczos", 1.0, library)), np.asarray(picture))


def test_canonical_names(library):
    assert canonical_upscaler_name("Latent (bicubic)", library) == "Latent (bicubic)"
    assert canonical_upscaler_name("Lanczos", library) == "Lanczos"
    assert canonical_upscaler_name("IDENT2X", library) == "ident2x"
    with pytest.raises(UserInputError, match="Latent, Latent \\(antialiased\\).*None, Lanczos, Nearest, ident2x"):
        canonical_upscaler_name("ESRGAN_4x", library)
    with pytest.raises(UserInputError) as info:
        canonical_upscaler_name("Latent", library, latent=False)
    assert "Latent" not in str(info.value).split("known upscalers:")[1]
