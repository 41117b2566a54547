"""Infotext writing and parsing against hand-written A1111-style texts."""
from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from webui.processing.infotext import (
    format_infotext,
    format_params_line,
    parse_infotext,
    parse_infotext_raw,
    quote_value,
    uses_emphasis,
)

EXAMPLE = (
    "a lighthouse at dusk, <lora:coastal:0.7>\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 24, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6.5, Seed: 987654321, Size: 768x512, "
    "Model hash: abcdef0123, Model: myModel_v2, Denoising strength: 0.45, Clip skip: 2, Hires upscale: 1.5, "
    'Hires steps: 12, Hires upscaler: R-ESRGAN 4x+, Lora hashes: "coastal: 0123456789ab", Version: v1.10.1'
)


def example_params() -> dict[str, object]:
    # Deliberately out of order: the writer must put the fixed keys first.
    return {
        "Version": "v1.10.1",
        "Hires upscale": 1.5,
        "Hires steps": 12,
        "Hires upscaler": "R-ESRGAN 4x+",
        "Lora hashes": "coastal: 0123456789ab",
        "Seed": 987654321,
        "Steps": 24,
        "Sampler": "Euler a",
        "Schedule type": "Automatic",
        "CFG scale": 6.5,
        "Size": "768x512",
        "Model hash": "abcdef0123",
        "Model": "myModel_v2",
        "Denoising strength": 0.45,
        "Clip skip": 2,
        "ENSD": None,
    }


def test_format_matches_reference_example_exactly():
    text = format_infotext("a lighthouse at dusk, <lora:coastal:0.7>", "blurry, lowres", example_params())
    assert text == EXAMPLE


def test_negative_line_omitted_when_empty():
    text = format_infotext("cat", "", {"Steps": 20, "Seed": 1, "CFG scale": 7.0})
    assert text == "cat\nSteps: 20, CFG scale: 7.0, Seed: 1"


def test_cfg_scale_int_written_as_float_and_denoise_as_given():
    line = format_params_line({"CFG scale": 7, "Denoising strength": 0.7, "Image CFG scale": 1.5})
    assert line == "CFG scale: 7.0, Image CFG scale: 1.5, Denoising strength: 0.7"


def test_value_equal_to_key_written_bare_and_none_skipped():
    line = format_params_line({"Steps": 20, "Tiling": "Tiling", "Face restoration": None, "Foo": "bar"})
    assert line == "Steps: 20, Tiling, Foo: bar"


def test_user_after_version_and_extras_after_fixed():
    line = format_params_line({"User": "me", "Version": "v1", "Emphasis": "Original", "RNG": "CPU", "Steps": 5})
    assert line == "Steps: 5, RNG: CPU, Emphasis: Original, Version: v1, User: me"


def test_quoting_rules():
    assert quote_value("plain text") == "plain text"
    assert quote_value("a, b") == '"a, b"'
    assert quote_value("a: b") == '"a: b"'
    assert quote_value("line\nbreak") == '"line\\nbreak"'
    assert quote_value("中文: 测试") == '"中文: 测试"'  # non-ASCII kept
    assert quote_value('say "hi", ok') == '"say \\"hi\\", ok"'
    assert quote_value(1.5) == "1.5"


def test_empty_prompt_starts_with_negative_line():
    text = format_infotext("", "bad", {"Steps": 20, "Seed": 1, "Size": "512x512"})
    assert text == "Negative prompt: bad\nSteps: 20, Seed: 1, Size: 512x512"
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "" and parsed["Negative prompt"] == "bad"


def test_parse_reference_example():
    parsed = parse_infotext(EXAMPLE)
    assert parsed["Prompt"] == "a lighthouse at dusk, <lora:coastal:0.7>"
    assert parsed["Negative prompt"] == "blurry, lowres"
    assert parsed["Steps"] == 24 and parsed["Seed"] == 987654321
    assert parsed["CFG scale"] == 6.5
    assert parsed["Size-1"] == 768 and parsed["Size-2"] == 512 and parsed["Size"] == "768x512"
    assert parsed["Lora hashes"] == "coastal: 0123456789ab"
    assert parsed["Model hash"] == "abcdef0123"
    assert parsed["Clip skip"] == 2
    assert parsed["Hires upscaler"] == "R-ESRGAN 4x+"
    assert parsed["Version"] == "v1.10.1"


def test_raw_view_keeps_strings():
    raw = parse_infotext_raw(EXAMPLE)
    assert raw["Steps"] == "24" and raw["CFG scale"] == "6.5" and raw["Size-1"] == "768"
    assert "RNG" not in raw  # no defaults in the raw view


def test_digit_only_hash_stays_a_string():
    parsed = parse_infotext("x\nSteps: 20, Model hash: 1234567890, Seed: 3")
    assert parsed["Model hash"] == "1234567890"


def test_defaults_for_missing_keys():
    parsed = parse_infotext("cat\nSteps: 20, Sampler: Euler, Seed: 1")
    assert parsed["Clip skip"] == 1
    assert parsed["RNG"] == "GPU"
    assert parsed["Schedule type"] == "Automatic"
    assert parsed["Hires resize-1"] == 0 and parsed["Hires resize-2"] == 0
    assert parsed["Hires sampler"] == "Use same sampler"
    assert parsed["Hires schedule type"] == "Use same scheduler"
    assert parsed["Hires checkpoint"] == "Use same checkpoint"
    assert parsed["Hires prompt"] == ""
    assert parsed["Mask mode"] == "Inpaint masked"
    assert parsed["Masked content"] == "original"
    assert parsed["Inpaint area"] == "Whole picture"
    assert parsed["Masked area padding"] == 32
    assert parsed["Schedule max sigma"] == 0 and parsed["Schedule rho"] == 0
    assert parsed["VAE Encoder"] == "Full" and parsed["VAE Decoder"] == "Full"
    assert parsed["FP8 weight"] == "Disable"
    assert parsed["Refiner switch by sampling steps"] is False
    assert "Emphasis" not in parsed
    assert "Cache FP16 weight for LoRA" not in parsed


def test_emphasis_default_only_with_brackets():
    assert parse_infotext("a (cat)\nSteps: 20, Seed: 1, Size: 512x512")["Emphasis"] == "Original"
    assert parse_infotext("a cat\nNegative prompt: [ugly]\nSteps: 20, Seed: 1, Size: 5x5")["Emphasis"] == "Original"
    assert "Emphasis" not in parse_infotext("a \\(cat\\)\nSteps: 20, Seed: 1, Size: 512x512")
    explicit = parse_infotext("a (cat)\nSteps: 20, Seed: 1, Emphasis: No norm")
    assert explicit["Emphasis"] == "No norm"


def test_uses_emphasis_cases():
    assert not uses_emphasis("plain, <lora:x:0.8>")
    assert not uses_emphasis("(cat:1.0)")
    assert uses_emphasis("(cat:1.2)")
    assert uses_emphasis("unclosed (cat")
    assert not uses_emphasis("a BREAK b")
    assert not uses_emphasis("()")
    assert uses_emphasis("[a:b:0.5]")  # prompt editing brackets count, as in A1111


def test_legacy_combined_sampler_names():
    parsed = parse_infotext("cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1")
    assert parsed["Sampler"] == "DPM++ 2M" and parsed["Schedule type"] == "Automatic"  # Karras is its default
    parsed = parse_infotext("cat\nSteps: 20, Sampler: DPM++ 2M SDE Karras, CFG scale: 7, Seed: 1")
    assert parsed["Sampler"] == "DPM++ 2M SDE" and parsed["Schedule type"] == "Karras"
    parsed = parse_infotext("cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    assert parsed["Sampler"] == "Euler a" and parsed["Schedule type"] == "Automatic"
    parsed = parse_infotext("cat\nSteps: 20, Sampler: k_euler_a, CFG scale: 7, Seed: 1")
    assert parsed["Sampler"] == "Euler a"


def test_explicit_schedule_type_is_kept():
    parsed = parse_infotext("cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, Seed: 1")
    assert parsed["Sampler"] == "DPM++ 2M" and parsed["Schedule type"] == "Karras"
    parsed = parse_infotext("cat\nSteps: 20, Sampler: Euler, Schedule type: SGMUniform, Seed: 1")
    assert parsed["Schedule type"] == "SGM Uniform"


def test_unknown_sampler_kept_as_text():
    parsed = parse_infotext("cat\nSteps: 20, Sampler: Fancy Extension Sampler, Seed: 1")
    assert parsed["Sampler"] == "Fancy Extension Sampler"
    parsed = parse_infotext("cat\nSteps: 20, Sampler: k_euler, Schedule type: Weird, Seed: 1")
    assert parsed["Sampler"] == "Euler" and parsed["Schedule type"] == "Weird"


def test_old_style_full_infotext():
    text = (
        "masterpiece, best quality, 1girl, (blue eyes:1.2)\n"
        "Negative prompt: lowres, bad anatomy\n"
        "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 2233445566, Size: 512x768, "
        "Model hash: 7f96a1a9ca, Model: anything-v5, Denoising strength: 0.5, Clip skip: 2, ENSD: 31337, "
        'Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Lora hashes: "a: 1a2b3c4d5e6f, b: 0f9e8d7c6b5a", '
        "Version: v1.6.0"
    )
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "masterpiece, best quality, 1girl, (blue eyes:1.2)"
    assert parsed["Lora hashes"] == "a: 1a2b3c4d5e6f, b: 0f9e8d7c6b5a"
    assert parsed["ENSD"] == 31337
    assert parsed["CFG scale"] == 7.0 and isinstance(parsed["CFG scale"], float)
    assert parsed["Hires upscale"] == 2.0
    assert parsed["Denoising strength"] == 0.5
    assert parsed["Size-1"] == 512 and parsed["Size-2"] == 768
    assert parsed["Emphasis"] == "Original"


def test_multiline_prompt_and_negative():
    text = (
        "line one,\nline two\n  line three  \n"
        "Negative prompt: neg one\nneg two\n"
        "Steps: 20, Sampler: Euler, CFG scale: 7.0, Seed: 5"
    )
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "line one,\nline two\nline three"
    assert parsed["Negative prompt"] == "neg one\nneg two"


def test_last_line_with_fewer_than_three_pairs_belongs_to_prompt():
    text = "a photo\nstyle: cinematic, mood: dark"
    raw = parse_infotext_raw(text)
    assert raw["Prompt"] == "a photo\nstyle: cinematic, mood: dark"
    assert "style" not in raw
    three = parse_infotext_raw("a photo\nstyle: cinematic, mood: dark, light: soft")
    assert three["Prompt"] == "a photo" and three["light"] == "soft"


def test_prompt_only_negative_last_line():
    parsed = parse_infotext("cat\nNegative prompt: dog, bird")
    assert parsed["Prompt"] == "cat" and parsed["Negative prompt"] == "dog, bird"


def test_chinese_text_round_trip():
    params = {"Steps": 20, "Sampler": "Euler a", "Seed": 7, "Model": "模型: 第二版", "Note": "中文"}
    text = format_infotext("一只猫，坐在窗台上\n第二行", "模糊, 低质量", params)
    assert '"模型: 第二版"' in text
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "一只猫，坐在窗台上\n第二行"
    assert parsed["Negative prompt"] == "模糊, 低质量"
    assert parsed["Model"] == "模型: 第二版" and parsed["Note"] == "中文"


def test_size_like_values_split():
    raw = parse_infotext_raw("x\nSteps: 1, Seed: 2, Hires resize: 1024x1536, Seed resize from: 640x448")
    assert raw["Hires resize-1"] == "1024" and raw["Hires resize-2"] == "1536"
    assert raw["Seed resize from-1"] == "640" and raw["Seed resize from-2"] == "448"  # width first, no swap
    typed = parse_infotext("x\nSteps: 1, Seed: 2, Hires resize: 1024x1536, Seed resize from: 640x448")
    assert typed["Hires resize-1"] == 1024 and typed["Seed resize from-2"] == 448


def test_old_first_pass_size_converted():
    parsed = parse_infotext("x\nSteps: 20, Seed: 1, Size: 1024x1024, First pass size: 0x0")
    assert (parsed["Size-1"], parsed["Size-2"]) == (512, 512)
    assert (parsed["Hires resize-1"], parsed["Hires resize-2"]) == (1024, 1024)
    parsed = parse_infotext("x\nSteps: 20, Seed: 1, Size: 1024x768, First pass size: 640x448")
    assert (parsed["Size-1"], parsed["Size-2"]) == (640, 448)
    assert (parsed["Hires resize-1"], parsed["Hires resize-2"]) == (1024, 768)


def test_hypernet_becomes_prompt_tag():
    parsed = parse_infotext("cat\nSteps: 20, Seed: 1, Hypernet: anime, Hypernet strength: 0.6")
    assert parsed["Prompt"] == "cat<hypernet:anime:0.6>"


def test_bare_flag_recovered():
    parsed = parse_infotext(format_infotext("x", "", {"Steps": 20, "Seed": 3, "Tiling": "Tiling", "Size": "8x8"}))
    assert parsed["Tiling"] == "Tiling"


def test_malformed_quote_kept():
    raw = parse_infotext_raw('x\nSteps: 20, Seed: 1, Bad: "\\q"')
    assert raw["Bad"] == '"\\q"'


def test_round_trip_all_keys():
    params = example_params()
    params.update({"Hires prompt": "line\nbreak, x", "Emphasis": "No norm", "User": "someone", "RNG": "CPU"})
    parsed = parse_infotext(format_infotext("p, q", "n: m", params))
    for key, value in params.items():
        if value is not None:
            assert parsed[key] == value, key


_key_text = st.text(alphabet=string.ascii_letters + string.digits + " -/", min_size=1, max_size=12)
_keys = st.builds(lambda a, b: a + b.strip(), st.sampled_from(string.ascii_letters), _key_text).filter(
    lambda k: len(k) >= 2 and k not in ("Prompt", "Negative prompt") and not k.endswith(("-1", "-2"))
)
_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20
).map(str.strip).filter(bool)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, min_size=3, max_size=8))
def test_round_trip_property(params):
    raw = parse_infotext_raw(format_infotext("prompt text", "negative", params))
    for key, value in params.items():
        assert raw[key] == value
