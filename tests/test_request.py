"""The typed request rejects bad input with messages a user can act on."""
import pytest

from webui.errors import UserInputError
from webui.processing.request import Txt2ImgRequest, make_request


@pytest.mark.parametrize("field, value, message", [
    ("width", 513, "multiple of 8"),
    ("height", 1000001, "less than or equal"),
    ("steps", 0, "greater than or equal to 1"),
    ("sampler_name", "Eulerish", "Unknown sampler: 'Eulerish'. Known samplers: DPM\\+\\+ 2M"),
    ("scheduler", "Wobbly", "Unknown schedule type"),
    ("emphasis", "Loud", "unknown emphasis mode"),
])
def test_bad_fields_give_readable_errors(field, value, message):
    with pytest.raises(UserInputError, match=message):
        make_request(Txt2ImgRequest, {field: value})


def test_legacy_sampler_name_is_accepted():
    request = make_request(Txt2ImgRequest, {"sampler_name": "DPM++ 2M Karras"})
    assert request.sampler_name == "DPM++ 2M Karras"


def test_unknown_fields_are_rejected():
    with pytest.raises(UserInputError, match="bogus"):
        make_request(Txt2ImgRequest, {"bogus": 1})


def _image(size=(64, 64)):
    from PIL import Image
    return Image.new("RGB", size)


def test_txt2img_and_img2img_share_the_common_fields():
    from webui.processing.request import GenerationRequest, Img2ImgRequest
    common = set(GenerationRequest.model_fields)
    assert common <= set(Txt2ImgRequest.model_fields) and common <= set(Img2ImgRequest.model_fields)
    assert {"prompt", "seed", "sampler_name", "width", "checkpoint"} <= common


def test_img2img_defaults_follow_a1111_ui():
    from webui.processing.request import Img2ImgRequest
    request = make_request(Img2ImgRequest, {"init_images": [_image()]})
    assert (request.resize_mode, request.denoising_strength, request.mask_blur) == (0, 0.75, 4)
    assert (request.inpainting_fill, request.inpaint_full_res, request.inpaint_full_res_padding) == (1, False, 32)
    assert request.inpainting_mask_invert == 0
    assert request.image_cfg_scale is None and request.initial_noise_multiplier == 1.0


@pytest.mark.parametrize("fields, message", [
    ({"init_images": []}, "at least one init image"),
    ({"resize_mode": 4}, "resize_mode: Input should be 0, 1, 2 or 3"),  # A1111's integer codes, nothing else
    ({"inpainting_fill": -1}, "inpainting_fill: Input should be 0, 1, 2 or 3"),
    ({"inpainting_mask_invert": 2}, "inpainting_mask_invert: Input should be 0 or 1"),
    ({"denoising_strength": 1.5}, "less than or equal to 1"),
    ({"init_images": [_image(), _image()]}, "2 init images need a batch size of at least 2"),
    ({"max_input_pixels": 1000}, "greater than or equal to 4096"),
    ({"init_images": [_image((200, 100))], "max_input_pixels": 10_000}, r"200x100 = 20,000 pixels, above the limit"),
    ({"init_images": ["not a picture"]}, "init_images.0"),
])
def test_bad_img2img_fields(fields, message):
    from webui.processing.request import Img2ImgRequest
    data = {"init_images": [_image()], **fields}
    with pytest.raises(UserInputError, match=message):
        make_request(Img2ImgRequest, data)


def test_hires_fields_and_their_checks():
    request = make_request(Txt2ImgRequest, {"enable_hr": True})
    assert (request.hr_scale, request.hr_upscaler, request.hr_second_pass_steps, request.denoising_strength) == \
        (2.0, "Latent", 0, 0.7)
    assert (request.hr_resize_x, request.hr_resize_y, request.hr_prompt, request.hr_sampler_name) == (0, 0, "", "")
    with pytest.raises(UserInputError, match="hr_scale"):
        make_request(Txt2ImgRequest, {"hr_scale": 0.5})
    with pytest.raises(UserInputError, match="Unknown sampler: 'Nope'"):
        make_request(Txt2ImgRequest, {"hr_sampler_name": "Nope"})
    with pytest.raises(UserInputError, match="Unknown schedule type"):
        make_request(Txt2ImgRequest, {"hr_scheduler": "Wobbly"})
    with pytest.raises(UserInputError, match="init_images"):
        make_request(Txt2ImgRequest, {"init_images": [_image()]})  # txt2img has no pictures


def test_a1111_hires_infotext_maps_back_to_the_request():
    from webui.processing.infotext_request import request_fields_from_infotext
    text = ("a lighthouse\nNegative prompt: blurry\nSteps: 24, Sampler: Euler a, Schedule type: Automatic, "
            "CFG scale: 6.5, Seed: 9, Size: 768x512, Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 12, "
            "Hires upscaler: R-ESRGAN 4x+, Version: v1.10.1")
    fields = request_fields_from_infotext(text)
    assert fields["enable_hr"] is True and fields["hr_scale"] == 1.5 and fields["hr_second_pass_steps"] == 12
    assert fields["hr_upscaler"] == "R-ESRGAN 4x+" and fields["denoising_strength"] == 0.45
    assert fields["hr_sampler_name"] == "" and fields["hr_scheduler"] == "" and fields["hr_prompt"] == ""
    assert (fields["hr_resize_x"], fields["hr_resize_y"]) == (0, 0)
    resized = request_fields_from_infotext(text.replace("Hires upscale: 1.5", "Hires resize: 1024x0"))
    assert resized["enable_hr"] and (resized["hr_resize_x"], resized["hr_resize_y"]) == (1024, 0)
    plain = request_fields_from_infotext("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512")
    assert plain["enable_hr"] is False
    make_request(Txt2ImgRequest, fields)  # every mapped field is one the request knows


def test_a1111_inpaint_infotext_maps_back_to_the_request():
    from webui.processing.infotext_request import request_fields_from_infotext
    text = ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512, Denoising strength: 0.6, "
            "Mask blur: 8, Inpaint area: Only masked, Masked area padding: 48, Masked content: latent noise, "
            "Mask mode: Inpaint not masked, Noise multiplier: 0.9")
    fields = request_fields_from_infotext(text, "img2img")
    assert (fields["mask_blur"], fields["inpaint_full_res"], fields["inpaint_full_res_padding"]) == (8, True, 48)
    assert (fields["inpainting_fill"], fields["inpainting_mask_invert"]) == (2, 1)
    assert fields["initial_noise_multiplier"] == 0.9 and fields["denoising_strength"] == 0.6
    defaults = request_fields_from_infotext("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1", "img2img")
    assert (defaults["inpainting_fill"], defaults["inpaint_full_res"], defaults["inpaint_full_res_padding"]) == \
        (1, False, 32)
    assert not any(key.startswith("hr_") for key in fields)
