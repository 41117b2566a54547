"""Saving images and grids, file names and counters, and reading the infotext back from PNG/JPEG/WebP/GIF."""
from __future__ import annotations

import io
import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from webui.processing.outputs import (
    apply_pattern,
    dated_folder,
    grid_layout,
    make_grid,
    next_sequence_number,
    sanitize_filename_part,
    save_grid,
    save_image,
)
from webui.processing.png_info import (
    exif_bytes_for,
    pnginfo_for,
    read_png_parameters,
    user_comment_bytes,
)

NOW = datetime(2025, 1, 31, 13, 45, 7)
ASCII_INFO = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, Seed: 1234567890, Size: 64x64"
CHINESE_INFO = "一只猫, 坐着\nNegative prompt: 模糊\nSteps: 20, Sampler: Euler a, Seed: 5, Size: 64x64"


def solid(color=(200, 10, 10), size=(64, 64), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def reopen(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def test_dated_folder():
    assert dated_folder(Path("out/txt2img-images"), NOW) == Path("out/txt2img-images/2025-01-31")


def test_save_image_names_and_counter(tmp_path):
    folder = dated_folder(tmp_path / "txt2img-images", NOW)
    first = save_image(solid(), folder, seed=1234567890, infotext=ASCII_INFO)
    second = save_image(solid(), folder, seed=1234567891, infotext=ASCII_INFO)
    assert first == folder.resolve() / "00000-1234567890.png"
    assert second.name == "00001-1234567891.png"
    (folder / "00041-999.png").write_bytes(b"")
    (folder / "notes.txt").write_text("x")
    assert save_image(solid(), folder, seed=3, infotext=None).name == "00042-3.png"


def test_existing_file_never_overwritten(tmp_path):
    # A stale scan result cannot clobber: exclusive create moves on to the next number.
    path = save_image(solid(), tmp_path, seed=5, infotext="x", pattern="fixed", add_number=False)
    again = save_image(solid((0, 0, 255)), tmp_path, seed=5, infotext="x", pattern="fixed", add_number=False)
    assert path.name == "fixed.png" and again.name == "fixed-1.png"
    assert reopen(path).getpixel((0, 0)) == (200, 10, 10)


def test_concurrent_saves_get_distinct_files(tmp_path):
    paths: list[Path] = []

    def work():
        paths.append(save_image(solid(), tmp_path, seed=7, infotext="x"))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 6 and all(p.exists() for p in paths)


def test_png_parameters_round_trip_tEXt(tmp_path):
    path = save_image(solid(), tmp_path, seed=1, infotext=ASCII_INFO)
    image = reopen(path)
    assert isinstance(image.text["parameters"], str)
    infotext, items = read_png_parameters(image)
    assert infotext == ASCII_INFO
    assert "parameters" not in items
    raw = path.read_bytes()
    assert b"tEXtparameters" in raw and b"iTXt" not in raw


def test_png_parameters_round_trip_iTXt(tmp_path):
    path = save_image(solid(), tmp_path, seed=1, infotext=CHINESE_INFO)
    assert b"iTXtparameters" in path.read_bytes()
    assert read_png_parameters(reopen(path))[0] == CHINESE_INFO


def test_pnginfo_for_extra_chunks():
    info = pnginfo_for("params", {"Software": "test", "note": "中文"})
    buffer = io.BytesIO()
    solid().save(buffer, format="PNG", pnginfo=info)
    buffer.seek(0)
    infotext, items = read_png_parameters(Image.open(buffer))
    assert infotext == "params" and items["Software"] == "test" and items["note"] == "中文"


@pytest.mark.parametrize("extension", ["jpg", "jpeg", "webp"])
@pytest.mark.parametrize("text", [ASCII_INFO, CHINESE_INFO])
def test_exif_user_comment_round_trip(tmp_path, extension, text):
    path = save_image(solid(mode="RGBA", color=(1, 2, 3, 128)), tmp_path, seed=9, infotext=text,
                      extension=extension)
    assert path.suffix == f".{extension}"
    infotext, items = read_png_parameters(reopen(path))
    assert infotext == text
    assert "exif" not in items and "jfif" not in items and "dpi" not in items


def test_exif_little_endian_comment_is_read():
    # Some tools write UTF-16LE despite the standard; the reader tells the byte orders apart.
    from webui.processing.png_info import decode_user_comment

    assert decode_user_comment(b"UNICODE\x00" + "Steps: 20, 中文".encode("utf-16-le")) == "Steps: 20, 中文"
    assert decode_user_comment(user_comment_bytes("Steps: 20, 中文")) == "Steps: 20, 中文"
    assert decode_user_comment(b"ASCII\x00\x00\x00plain") == "plain"
    assert decode_user_comment(b"no header here") == "no header here"


def test_exif_bytes_usable_directly():
    buffer = io.BytesIO()
    solid().save(buffer, format="JPEG", exif=exif_bytes_for("hello, world"))
    buffer.seek(0)
    assert read_png_parameters(Image.open(buffer))[0] == "hello, world"


def test_gif_comment_and_no_info():
    buffer = io.BytesIO()
    solid().convert("P").save(buffer, format="GIF", comment="Steps: 5, Seed: 1, Size: 1x1")
    buffer.seek(0)
    assert read_png_parameters(Image.open(buffer))[0] == "Steps: 5, Seed: 1, Size: 1x1"
    assert read_png_parameters(solid()) == (None, {})


def test_novelai_png_converted():
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "NovelAI")
    info.add_text("Description", "a fox")
    info.add_text("Comment", json.dumps({"uc": "ugly", "steps": 28, "sampler": "k_euler_ancestral",
                                         "scale": 11, "seed": 42}))
    buffer = io.BytesIO()
    solid(size=(64, 32)).save(buffer, format="PNG", pnginfo=info)
    buffer.seek(0)
    infotext, items = read_png_parameters(Image.open(buffer))
    assert infotext == ("a fox\nNegative prompt: ugly\nSteps: 28, Sampler: Euler a, CFG scale: 11, Seed: 42, "
                        "Size: 64x32, Clip skip: 2, ENSD: 31337")
    assert items["Software"] == "NovelAI"


def test_sanitize_filename_part():
    assert sanitize_filename_part('a cat: "big"/small?') == "a_cat___big__small_"
    assert sanitize_filename_part("  spaced name. ", replace_spaces=False) == "spaced name"
    assert sanitize_filename_part("x" * 300) == "x" * 128
    assert sanitize_filename_part("..") == ""


def test_apply_pattern_tags():
    tags = {"prompt": "A cat, on a: mat!", "steps": 20, "sampler": None}
    assert apply_pattern("[seed]", seed=12) == "12"
    assert apply_pattern("[seed]-[prompt_spaces]", seed=1, tags=tags) == "1-A cat, on a_ mat!"
    assert apply_pattern("[prompt]", tags=tags) == "A_cat,_on_a__mat!"
    assert apply_pattern("[prompt_words]", tags=tags) == "A cat on a mat"
    assert apply_pattern("[steps]_[date]", tags=tags, now=NOW) == "20_2025-01-31"
    assert apply_pattern("[datetime<%H%M>]", now=NOW) == "1345"
    assert apply_pattern("[unknown]-[sampler]") == "[unknown]-[sampler]"
    assert apply_pattern("[seed]-x[none]", seed=3) == "3"
    assert apply_pattern("../[seed]", seed=3) == ".._3"


def test_save_image_pattern_suffix_and_txt(tmp_path):
    path = save_image(solid(), tmp_path, seed=77, infotext=ASCII_INFO, pattern="[seed]-[steps]",
                      tags={"steps": 20}, suffix="-before-highres-fix", save_txt=True)
    assert path.name == "00000-77-20-before-highres-fix.png"
    assert path.with_suffix(".txt").read_text(encoding="utf-8") == ASCII_INFO
    # The sidecar shares the counter, so the next image still gets 00001.
    assert save_image(solid(), tmp_path, seed=1, infotext=None).name == "00001-1.png"


def test_path_traversal_in_pattern_stays_inside(tmp_path):
    path = save_image(solid(), tmp_path, seed=1, infotext=None, pattern="../../[seed]")
    assert path.parent == tmp_path.resolve()


def test_long_names_are_truncated(tmp_path):
    path = save_image(solid(), tmp_path, seed=1, infotext=None, pattern="[prompt_spaces]",
                      tags={"prompt": "猫" * 200})
    assert len(path.name.encode("utf-8")) <= 255


def test_unsupported_extension(tmp_path):
    with pytest.raises(ValueError, match="Unsupported"):
        save_image(solid(), tmp_path, seed=1, infotext=None, extension="bmp")


def test_next_sequence_number(tmp_path):
    assert next_sequence_number(tmp_path / "missing") == 0
    for name in ("00003-1.png", "00010-abc.png", "grid-0007.png", "junk.png", "12-x.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert next_sequence_number(tmp_path) == 13
    assert next_sequence_number(tmp_path, "grid") == 8


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (5, (2, 3)), (6, (2, 3)), (7, (3, 3)), (8, (3, 3)),
     (9, (3, 3))],
)
def test_default_grid_layout(count, expected):
    assert grid_layout(count) == expected


def test_grid_layout_options():
    assert grid_layout(8, prevent_empty_spots=True) == (2, 4)
    assert grid_layout(7, prevent_empty_spots=True) == (1, 7)
    assert grid_layout(6, rows=3) == (3, 2)
    assert grid_layout(2, rows=5) == (2, 1)
    with pytest.raises(ValueError):
        grid_layout(0)


def test_make_grid_layout_and_centering():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    images = [solid(c, size=(20, 10)) for c in colours[:2]] + [solid(colours[2], size=(10, 6))]
    grid = make_grid(images)
    assert grid.size == (40, 20) and grid.mode == "RGB"
    assert grid.getpixel((5, 5)) == colours[0]
    assert grid.getpixel((25, 5)) == colours[1]
    assert grid.getpixel((10, 15)) == colours[2]  # smaller image centred in its cell (x 5..15, y 12..18)
    assert grid.getpixel((2, 11)) == (255, 255, 255)
    assert grid.getpixel((35, 15)) == (255, 255, 255)  # empty cell


def test_save_grid(tmp_path):
    folder = dated_folder(tmp_path / "txt2img-grids", NOW)
    grid = make_grid([solid()] * 4)
    first = save_grid(grid, folder, infotext=ASCII_INFO)
    second = save_grid(grid, folder, infotext=ASCII_INFO)
    assert first.name == "grid-0000.png" and second.name == "grid-0001.png"
    assert first.parent.name == "2025-01-31"
    assert read_png_parameters(reopen(first))[0] == ASCII_INFO
