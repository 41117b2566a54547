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
