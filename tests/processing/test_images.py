"""Input pictures of any kind become upright 8-bit RGB at the size asked for, or are refused with a message."""
import io

import numpy as np
import pytest
from PIL import Image

from webui.errors import UserInputError
from webui.processing.images import binary_mask, check_pixel_limit, normalize_image, resize_image, to_tensor
from webui.processing.request import Img2ImgRequest, make_request


def _reload(image: Image.Image, fmt: str = "PNG", **save) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    buffer.seek(0)
    return Image.open(buffer)


def test_rgba_is_flattened_onto_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    image.putpixel((0, 0), (0, 0, 255, 0))  # fully transparent blue → background
    image.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black → mid grey
    out = normalize_image(_reload(image))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert all(abs(v - 127) <= 1 for v in out.getpixel((1, 0)))
    assert out.getpixel((3, 3)) == (255, 0, 0)


def test_grayscale_and_la_become_rgb_grey():
    grey = normalize_image(_reload(Image.new("L", (3, 3), 77)))
    assert grey.mode == "RGB" and grey.getpixel((1, 1)) == (77, 77, 77)
    la = normalize_image(_reload(Image.new("LA", (3, 3), (10, 0))))
    assert la.getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.info["transparency"] = 0
    out = normalize_image(_reload(image))
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((2, 2)) == (0, 200, 0)


def test_sixteen_bit_png_is_scaled_not_clipped():
    array = np.array([[0, 32768, 65535]], dtype=np.uint16)
    image = _reload(Image.fromarray(array))
    assert image.mode.startswith("I")
    out = np.asarray(normalize_image(image))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_exif_rotated_jpeg_is_turned_upright():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # red on the left half as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    loaded = _reload(image, "JPEG", exif=exif.tobytes(), quality=95)
    out = normalize_image(loaded)
    assert out.size == (20, 40)
    top, bottom = np.asarray(out)[5, 10], np.asarray(out)[35, 10]
    assert top[0] > 200 and top[2] < 60, top  # the stored left half is on top once upright
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_pixel_limit_refusal_names_the_sizes():
    with pytest.raises(UserInputError, match=r"100x100 = 10,000 pixels, above the limit of 4,096"):
        check_pixel_limit(Image.new("RGB", (100, 100)), 4096, "init image")
    with pytest.raises(UserInputError, match=r"init image 1 is 200x200 = 40,000 pixels.*max_input_pixels"):
        make_request(Img2ImgRequest, {"init_images": [Image.new("RGB", (200, 200))], "max_input_pixels": 9000})
    with pytest.raises(UserInputError, match="mask is 300x300"):
        make_request(Img2ImgRequest, {"init_images": [Image.new("RGB", (64, 64))], "mask": Image.new("L", (300, 300)),
                                      "max_input_pixels": 20000})


def _stripes(width: int, height: int) -> Image.Image:
    array = np.zeros((height, width, 3), np.uint8)
    array[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    array[:, :, 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    return Image.fromarray(array)


def test_resize_modes_give_the_target_size():
    source = _stripes(100, 50)
    for mode in (0, 1, 2, 3):
        assert resize_image(source, mode, 64, 64).size == (64, 64)


def test_crop_and_resize_keeps_the_centre_and_cuts_the_sides():
    source = _stripes(100, 50)
    out = np.asarray(resize_image(source, 1, 64, 64)).astype(int)
    # The centre column of the source (red ≈ 128) stays in the centre; the extreme reds are cut off.
    assert abs(out[32, 32, 0] - 128) < 12
    assert out[:, 0, 0].mean() > 40 and out[:, -1, 0].mean() < 215


def test_resize_and_fill_stretches_the_edge_rows_into_the_bands():
    source = _stripes(100, 50)
    out = np.asarray(resize_image(source, 2, 64, 64)).astype(int)
    # The picture fits as 64x32 in the middle; the bands above/below repeat its first/last row.
    assert np.abs(out[:16] - out[16:17]).max() <= 3
    assert np.abs(out[48:] - out[47:48]).max() <= 3
    assert out[16, 32, 1] < out[47, 32, 1]


def test_binary_mask_uses_alpha_of_transparent_masks_and_thresholds():
    drawn = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    drawn.putpixel((1, 1), (255, 255, 255, 255))
    assert np.asarray(binary_mask(drawn)).sum() == 255
    grey = Image.new("L", (2, 1))
    grey.putpixel((0, 0), 128)
    grey.putpixel((1, 0), 129)
    assert np.asarray(binary_mask(grey)).tolist() == [[0, 255]]


def test_to_tensor_range_and_layout():
    tensor = to_tensor([Image.new("RGB", (5, 3), (255, 0, 51))])
    assert tuple(tensor.shape) == (1, 3, 3, 5)
    assert tensor[0, :, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.2])


def test_cmyk_and_bilevel_pictures_become_rgb():
    assert normalize_image(Image.new("CMYK", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert normalize_image(Image.new("1", (2, 2), 1)).getpixel((1, 1)) == (255, 255, 255)
