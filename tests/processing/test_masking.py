"""Mask handling for inpainting: blur reach, crop regions, fill, latent masks and the paste-back."""
import numpy as np
import pytest
from PIL import Image

from webui.processing.masking import (
    blur_mask,
    blur_radius_pixels,
    conditioning_mask,
    crop_region,
    expand_to_aspect,
    fill_masked,
    latent_mask,
    make_overlay,
    paste_back,
    whole_picture_overlay_mask,
)


def _square_mask(size=(64, 48), box=(20, 10, 30, 20)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def test_blur_spreads_only_as_far_as_its_kernel():
    mask = _square_mask(box=(20, 10, 50, 40))
    blurred = np.asarray(blur_mask(mask, 4)).astype(int)
    reach = blur_radius_pixels(4)
    assert reach == 10
    assert blurred[25, 20 - reach + 1] > 0
    assert blurred[:, :20 - reach - 1].max() == 0 and blurred[:, 50 + reach:].max() == 0
    assert 90 < blurred[25, 20] < 165  # the edge sits near half
    assert blurred[25, 35] > 250  # the centre stays white
    assert np.array_equal(np.asarray(blur_mask(mask, 0)), np.asarray(mask))


def test_blur_is_symmetric():
    blurred = np.asarray(blur_mask(_square_mask((41, 41), (15, 15, 26, 26)), 3)).astype(int)
    assert np.array_equal(blurred, blurred[::-1, ::-1]) and np.array_equal(blurred, blurred.T)


def test_crop_region_pads_and_stays_inside():
    assert crop_region(_square_mask(), 4) == (16, 6, 34, 24)
    assert crop_region(_square_mask(), 100) == (0, 0, 64, 48)
    assert crop_region(Image.new("L", (8, 8)), 4) is None


@pytest.mark.parametrize("box, size", [((16, 6, 34, 24), (64, 64)), ((0, 0, 10, 40), (64, 32)),
                                       ((50, 30, 64, 48), (32, 64))])
def test_expand_to_aspect_matches_the_processing_shape(box, size):
    left, top, right, bottom = expand_to_aspect(box, size[0], size[1], 64, 48)
    assert 0 <= left < right <= 64 and 0 <= top < bottom <= 48
    assert left <= box[0] and top <= box[1] and right >= box[2] and bottom >= box[3]
    if right - left < 64 and bottom - top < 48:
        assert abs((right - left) / (bottom - top) - size[0] / size[1]) < 0.1


def test_fill_paints_the_hole_with_the_surrounding_colour():
    image = Image.new("RGB", (32, 32), (200, 40, 10))
    image.paste((0, 0, 0), (10, 10, 20, 20))  # the black square is what gets masked away
    mask = _square_mask((32, 32), (10, 10, 20, 20))
    out = np.asarray(fill_masked(image, mask)).astype(int)
    assert np.abs(out[15, 15] - [200, 40, 10]).max() <= 2
    assert np.array_equal(out[:10], np.asarray(image)[:10])


def test_paste_back_keeps_everything_outside_the_mask():
    original = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    mask = blur_mask(_square_mask(box=(10, 10, 40, 40)), 2)
    generated = Image.new("RGB", (64, 48), (0, 255, 0))
    out = np.asarray(paste_back(generated, make_overlay(original, mask), None)).astype(int)
    m = np.asarray(mask)
    assert np.array_equal(out[m == 0], np.asarray(original).astype(int)[m == 0])
    assert np.abs(out[m == 255] - [0, 255, 0]).max() <= 1


def test_paste_back_of_a_crop_fits_it_into_its_box():
    original = Image.new("RGB", (64, 48), (9, 9, 9))
    mask = _square_mask()
    box = (16, 6, 34, 24)
    out = np.asarray(paste_back(Image.new("RGB", (32, 32), (250, 0, 0)), make_overlay(original, mask), box))
    assert out.shape == (48, 64, 3)
    assert tuple(out[15, 25]) == (250, 0, 0) and tuple(out[40, 5]) == (9, 9, 9)


def test_whole_picture_overlay_lets_the_original_through_only_outside_the_doubled_mask():
    doubled = np.asarray(whole_picture_overlay_mask(Image.fromarray(np.array([[0, 60, 127, 200]], np.uint8))))
    assert doubled.tolist() == [[0, 120, 254, 255]]


def test_latent_mask_is_rounded_and_small():
    mask = latent_mask(_square_mask((64, 64), (0, 0, 32, 64)), 8, 8)
    assert tuple(mask.shape) == (1, 1, 8, 8)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask[0, 0, :, :4].min() == 1 and mask[0, 0, :, 4:].max() == 0
    assert conditioning_mask(None, 4, 6).shape == (1, 1, 4, 6)
