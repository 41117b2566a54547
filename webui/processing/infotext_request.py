"""Infotext → request: A1111's "paste parameters", so generate → parse → generate reproduces the image."""
from __future__ import annotations

from typing import Any

from webui.processing.infotext import parse_infotext
from webui.processing.request import Txt2ImgRequest, make_request

# (infotext key, request field); the model hash is not mapped, as A1111 ignores it by default.
INFOTEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("Prompt", "prompt"), ("Negative prompt", "negative_prompt"), ("Steps", "steps"), ("Sampler", "sampler_name"),
    ("Schedule type", "scheduler"), ("CFG scale", "cfg_scale"), ("Seed", "seed"), ("Size-1", "width"),
    ("Size-2", "height"), ("Clip skip", "clip_skip"), ("Variation seed", "subseed"),
    ("Variation seed strength", "subseed_strength"), ("Seed resize from-1", "seed_resize_from_w"),
    ("Seed resize from-2", "seed_resize_from_h"), ("Emphasis", "emphasis"), ("Eta", "eta"), ("VAE", "vae"),
    ("ENSD", "eta_noise_seed_delta"),
)


def request_fields_from_infotext(text: str) -> dict[str, Any]:
    """The request fields an infotext sets; keys it does not carry are left out (the form keeps its value)."""
    parsed = parse_infotext(text)
    return {field: parsed[key] for key, field in INFOTEXT_FIELDS if key in parsed}


def request_from_infotext(text: str, **overrides: Any) -> Txt2ImgRequest:
    fields = request_fields_from_infotext(text)
    fields.update(overrides)
    return make_request(Txt2ImgRequest, fields)
