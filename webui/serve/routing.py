"""The routing key of a generation request: checkpoint plus the LoRA stack its prompts ask for, normalised."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from webui.prompts import extract_extra_networks

# Every prompt field whose <lora:…> tags reach the patcher: the hires pass merges its own prompt's stack.
PROMPT_FIELDS = ("prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt")
GENERATION_PATHS = frozenset({"/sdapi/v1/txt2img", "/sdapi/v1/img2img"})


def lora_stack(text: str) -> tuple[tuple[str, float, float], ...]:
    """(name, te, unet) per LoRA tag in order; weights as the patcher compares them (exact floats), zero-weight
    tags dropped because the patcher skips them too."""
    _, tags = extract_extra_networks(text or "")
    return tuple((tag.name.strip(), float(tag.te_weight), float(tag.unet_weight)) for tag in tags
                 if tag.kind == "lora" and (tag.te_weight != 0 or tag.unet_weight != 0))


def request_checkpoint(body: dict[str, Any], current: str) -> str:
    """The checkpoint a request runs on: its override when it names one, else the cluster's current option."""
    overrides = body.get("override_settings") or {}
    chosen = overrides.get("sd_model_checkpoint") if isinstance(overrides, dict) else None
    return str(chosen or current or "")


def routing_key(body: dict[str, Any], current_checkpoint: str = "") -> str:
    """Equal keys mean equal merged weights; a short hash so it can serve as a multiplexed model id."""
    main = lora_stack(str(body.get("prompt") or ""))
    stacks = {name: lora_stack(str(body.get(name) or "")) for name in PROMPT_FIELDS}
    if not body.get("enable_hr"):  # no hires pass: its prompts never reach the patcher
        stacks.pop("hr_prompt")
        stacks.pop("hr_negative_prompt")
    elif not body.get("hr_prompt"):  # an empty hires prompt means "the first pass's prompt"
        stacks["hr_prompt"] = main
    wanted = {"checkpoint": request_checkpoint(body, current_checkpoint), "stacks": stacks}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:20]


def key_of_body(raw: bytes, current_checkpoint: str = "") -> str:
    """The key of a JSON request body, or "" when it is not a JSON object (the route's own validation answers)."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return ""
    return routing_key(body, current_checkpoint) if isinstance(body, dict) else ""
