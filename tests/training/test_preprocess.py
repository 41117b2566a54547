"""Preprocessing: focal crop, flips, splitting, skipped files and kohya's folder layout."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from webui.errors import UserInputError
from webui.training.focal import focal_crop
from webui.training.preprocess import CropMode, PreprocessOptions, image_files, preprocess_images, subset_folder_name


def _busy_patch_image(width: int, height: int, patch_x: int) -> Image.Image:
    """A flat grey picture with a 48x48 patch of noise (high entropy, many corners) at patch_x."""
    rng = np.random.default_rng(0)
    pixels = np.full((height, width, 3), 128, np.uint8)
    pixels[8:56, patch_x:patch_x + 48] = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _noise_share(image: Image.Image) -> float:
    grey = np.asarray(image.convert("L")).astype(int)
    return float((grey != 128).mean())


@pytest.mark.parametrize("patch_x", [8, 200])
def test_focal_crop_keeps_the_busy_region_in_frame(patch_x):
    source = _busy_patch_image(256, 64, patch_x)
    crop = focal_crop(source, 64, 64)
    assert crop.size == (64, 64)
    # The whole 48x48 patch is 56 % of a 64x64 crop; a centre crop would show none of it.
    assert _noise_share(crop) > 0.45
    assert _noise_share(source.crop((96, 0, 160, 64))) == 0


def test_flip_copies_and_layout(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    pixels = np.zeros((80, 80, 3), np.uint8)
    pixels[:, :40] = (255, 0, 0)  # left half red, right half black
    Image.fromarray(pixels).save(source / "a.png")
    out = tmp_path / "img"
    subset = subset_folder_name(10, "sks", "dog")
    assert subset == "10_sks dog"
    report = preprocess_images(image_files(source), out, subset,
                               PreprocessOptions(width=64, height=64, crop=CropMode.CENTRE, flip_copies=True),
                               captioner=lambda image: "sks, dog")
    assert [p.name for p in report.written] == ["0001.png", "0002.png"]
    first, flipped = (np.asarray(Image.open(p)) for p in report.written)
    assert first.shape == (64, 64, 3)
    assert first[32, 2, 0] > 200 and flipped[32, 2, 0] < 50 and flipped[32, 61, 0] > 200
    np.testing.assert_array_equal(first[:, ::-1], flipped)
    assert (out / "10_sks dog" / "0002.txt").read_text() == "sks, dog\n"
    # A second run adds after the existing numbers instead of overwriting them.
    again = preprocess_images([source / "a.png"], out, subset, PreprocessOptions(width=64, height=64))
    assert [p.name for p in again.written] == ["0003.png"]


def test_tall_image_is_split_into_overlapping_crops(tmp_path):
    rows = np.repeat(np.linspace(0, 255, 320).astype(np.uint8)[:, None], 64, axis=1)
    tall = tmp_path / "tall.png"
    Image.fromarray(np.stack([rows] * 3, axis=-1)).save(tall)
    options = PreprocessOptions(width=64, height=64, split_oversized=True)
    report = preprocess_images([tall], tmp_path / "out", "1_x", options)
    # L=320, T=64, overlap 0.2: ceil((320 - 12.8) / 51.2) = 6 crops from top to bottom.
    assert len(report.written) == 6
    tops = [int(np.asarray(Image.open(p).convert("L"))[0, 0]) for p in report.written]
    assert tops == sorted(tops) and tops[0] < 5 and tops[-1] > 190
    assert all(Image.open(p).size == (64, 64) for p in report.written)


def test_corrupt_tiny_and_unreadable_files_are_listed_and_skipped(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    Image.new("RGB", (100, 90), "blue").save(source / "good.jpg")
    (source / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    good = (source / "good.jpg").read_bytes()
    (source / "truncated.jpg").write_bytes(good[: len(good) // 3])
    Image.new("RGB", (20, 20), "red").save(source / "tiny.png")
    Image.new("RGBA", (96, 96), (0, 0, 0, 0)).save(source / "transparent.png")
    report = preprocess_images(image_files(source), tmp_path / "out", "5_blue", PreprocessOptions(width=64, height=64))
    skipped = dict(report.skipped)
    assert set(skipped) == {"broken.png", "truncated.jpg", "tiny.png"}
    assert "too small" in skipped["tiny.png"] and "unreadable" in skipped["broken.png"]
    assert len(report.written) == 2
    transparent = np.asarray(Image.open(report.written[-1]))
    assert (transparent == 255).all()  # transparency lands on white, as the taggers expect
    assert "skipped 3" in report.summary()


def test_bad_folder_names_are_refused():
    with pytest.raises(UserInputError):
        subset_folder_name(0, "sks", "dog")
    with pytest.raises(UserInputError):
        subset_folder_name(10, "", " ")
    with pytest.raises(UserInputError):
        subset_folder_name(10, "../x", "")


def test_a_found_face_outweighs_entropy_and_edges(monkeypatch):
    from webui.training import focal

    source = _busy_patch_image(256, 64, 200)  # busy on the right
    assert focal.face_points(Image.new("RGB", (256, 64), "grey")) == []  # the bundled cascades load and run
    monkeypatch.setattr(focal, "face_points", lambda image: [focal.Point(20, 30, focal.FACE_WEIGHT)])
    left, _ = focal.focal_point(focal.cover_scale(source, 64, 64), 64, 64)
    assert left < 128  # pulled towards the face on the left, against the patch's entropy and corners
    assert _noise_share(focal_crop(source, 64, 64, faces=False)) > 0.45  # faces off: the patch wins again


def test_keep_aspect_mode_only_scales_down(tmp_path):
    Image.new("RGB", (200, 100), "red").save(tmp_path / "wide.png")
    Image.new("RGB", (40, 60), "red").save(tmp_path / "small.png")
    options = PreprocessOptions(width=64, height=64, crop=CropMode.NONE, min_side=16)
    report = preprocess_images([tmp_path / "wide.png", tmp_path / "small.png"], tmp_path / "out", "1_x", options)
    # 200x100 shrunk to the 64x64 area (sqrt(4096 / 20000) = 0.4525), aspect kept; 40x60 is not enlarged.
    assert [Image.open(p).size for p in report.written] == [(91, 45), (40, 60)]
