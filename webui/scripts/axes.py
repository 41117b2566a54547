"""The X/Y/Z plot's axis types: A1111 v1.10.1's lists (same order, so API indices match) plus our LoRA axes."""
from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from webui.errors import UserInputError
from webui.models.registry import UnknownCheckpointError
from webui.processing.hires import check_upscaler, known_upscalers
from webui.processing.noise import fix_seed
from webui.sampling.names import SAMPLER_NAMES, SCHEDULE_NAMES, find_sampler, find_schedule
from webui.scripts.common import ScriptContext

Fields = dict[str, Any]
_LORA_TAG = re.compile(r"<(lora|lyco):([^:>]+)(?::([^:>]*))?((?::[^>]*)?)>", re.IGNORECASE)


AxisContext = ScriptContext  # what applying and checking axis values needs besides the request fields


Apply = Callable[[Fields, Any, list, AxisContext], None]
Confirm = Callable[[list, AxisContext], list]


@dataclass(frozen=True)
class Axis:
    """One axis type. `apply` edits a cell's request fields; `confirm` checks (and canonicalises) all values
    before any cell renders; `cost` orders the loops (costliest outermost, so models switch least)."""

    label: str
    kind: type | str  # int, float, str, or "permutations"
    apply: Apply | None  # None: A1111 has it, this WebUI does not (refused with a message)
    tabs: tuple[str, ...] = ("txt2img", "img2img")
    confirm: Confirm | None = None
    choices: Callable[[AxisContext], list[str]] | None = None
    cost: float = 0.0
    label_style: str = "named"  # "named": "Label: value"; "bare": value; "none"; "basename"; "joined"
    seed_axis: bool = field(default=False)

    def format(self, value: Any) -> str:
        if isinstance(value, float):
            value = round(value, 8)
        if self.label_style == "none":
            return ""
        if self.label_style == "bare":
            return str(value)
        if self.label_style == "basename":
            return os.path.basename(str(value))
        if self.label_style == "joined":
            return ", ".join(value)
        return f"{self.label}: {value}"


def set_field(name: str) -> Apply:
    def apply(fields: Fields, value: Any, values: list, ctx: AxisContext) -> None:
        fields[name] = value
    return apply


def _nothing(fields: Fields, value: Any, values: list, ctx: AxisContext) -> None:
    return None


def _prompt_sr(fields: Fields, value: str, values: list, ctx: AxisContext) -> None:
    search = values[0]
    if search not in fields["prompt"] and search not in fields["negative_prompt"]:
        raise UserInputError(f"Prompt S/R did not find {search!r} in the prompt or the negative prompt")
    fields["prompt"] = fields["prompt"].replace(search, value)
    fields["negative_prompt"] = fields["negative_prompt"].replace(search, value)


def _prompt_order(fields: Fields, order: tuple[str, ...], values: list, ctx: AxisContext) -> None:
    """Put the listed terms back into the prompt in this order, each in the place of the term seen there."""
    prompt = fields["prompt"]
    missing = [term for term in order if term not in prompt]
    if missing:
        raise UserInputError(f"Prompt order: {', '.join(map(repr, missing))} not found in the prompt")
    found = sorted((prompt.find(term), term) for term in order)
    pieces, rest = [], prompt
    for _, term in found:
        at = rest.find(term)
        pieces.append(rest[:at])
        rest = rest[at + len(term):]
    fields["prompt"] = "".join(piece + term for piece, term in zip(pieces, order, strict=False)) + rest


def _size(fields: Fields, value: str, values: list, ctx: AxisContext) -> None:
    fields["width"], fields["height"] = _parse_size(value)


def _parse_size(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", str(value))
    if not match:
        raise UserInputError(f"Size: {value!r} is not WIDTHxHEIGHT (for example 512x768)")
    return int(match.group(1)), int(match.group(2))


def _styles(fields: Fields, value: str, values: list, ctx: AxisContext) -> None:
    if ctx.styles is None:
        raise UserInputError("Styles: no styles file is available")
    names = [name.strip() for name in value.split(",") if name.strip()]
    fields["prompt"], fields["negative_prompt"] = ctx.styles.apply(names, fields["prompt"], fields["negative_prompt"])


def lora_tags(prompt: str) -> list[re.Match]:
    return list(_LORA_TAG.finditer(prompt))


def _lora_weight(fields: Fields, value: float, values: list, ctx: AxisContext) -> None:
    """The first LoRA tag's weight (the one the LoRA file axis swaps), e.g. `<lora:x:0.6>` → `<lora:x:0.4>`."""
    tags = lora_tags(fields["prompt"])
    if not tags:
        raise UserInputError("LoRA weight: the prompt has no <lora:name:weight> tag to vary")
    tag = tags[0]
    new = f"<{tag.group(1)}:{tag.group(2)}:{round(value, 8):g}{tag.group(4)}>"
    fields["prompt"] = fields["prompt"][:tag.start()] + new + fields["prompt"][tag.end():]


def _lora_file(fields: Fields, value: str, values: list, ctx: AxisContext) -> None:
    """The first LoRA tag's file (an epoch of a training run, say); without a tag one is added at weight 1."""
    tags = lora_tags(fields["prompt"])
    if not tags:
        fields["prompt"] = f"{fields['prompt']} <lora:{value}:1>".strip()
        return
    tag = tags[0]
    weight = f":{tag.group(3)}" if tag.group(3) is not None else ""
    new = f"<{tag.group(1)}:{value}{weight}{tag.group(4)}>"
    fields["prompt"] = fields["prompt"][:tag.start()] + new + fields["prompt"][tag.end():]


def _confirm_samplers(values: list, ctx: AxisContext) -> list:
    return [find_sampler(str(value)).name for value in values]  # unknown → UnknownSamplerError naming it


def _confirm_schedules(values: list, ctx: AxisContext) -> list:
    return [find_schedule(str(value)).label for value in values]


def _confirm_checkpoints(values: list, ctx: AxisContext) -> list:
    names = []
    for value in values:
        try:
            names.append(ctx.runtime.registry.find(str(value)).name)
        except UnknownCheckpointError as error:
            raise UserInputError(f"Checkpoint name: unknown checkpoint {value!r} ({error})") from None
    return names


def _confirm_vaes(values: list, ctx: AxisContext) -> list:
    out = []
    for value in values:
        if str(value).lower() in ("automatic", "auto", "none"):
            out.append("None" if str(value).lower() == "none" else "Automatic")
            continue
        ctx.runtime.registry.find_vae(str(value))  # unknown → UserInputError naming it
        out.append(str(value))
    return out


def _confirm_upscalers(values: list, ctx: AxisContext) -> list:
    for value in values:
        check_upscaler(str(value), ctx.runtime)
    return values


def _confirm_sizes(values: list, ctx: AxisContext) -> list:
    for value in values:
        _parse_size(value)
    return values


def _confirm_styles(values: list, ctx: AxisContext) -> list:
    for value in values:
        _styles({"prompt": "", "negative_prompt": ""}, value, values, ctx)
    return values


def _confirm_loras(values: list, ctx: AxisContext) -> list:
    return [ctx.runtime.loras.resolve(str(value)).name for value in values]  # LoraNotFoundError names it


def _fixed_seeds(values: list, ctx: AxisContext) -> list:
    return values  # -1 handling happens in the plot (it depends on "Keep -1 for seeds")


def _lora_names(ctx: AxisContext) -> list[str]:
    return [entry.name for entry in ctx.runtime.loras.entries()]


def _checkpoint_names(ctx: AxisContext) -> list[str]:
    return sorted((info.name for info in ctx.runtime.registry.checkpoints()), key=str.casefold)


def _vae_names(ctx: AxisContext) -> list[str]:
    return ["Automatic", "None", *(vae.name for vae in ctx.runtime.registry.vaes())]


def _style_names(ctx: AxisContext) -> list[str]:
    return ctx.styles.names() if ctx.styles is not None else []


def known_upscalers_for(ctx: AxisContext) -> list[str]:
    return known_upscalers(ctx.runtime)


T2I, I2I = ("txt2img",), ("img2img",)
AXES: tuple[Axis, ...] = (
    Axis("Nothing", str, _nothing, label_style="none"),
    Axis("Seed", int, set_field("seed"), seed_axis=True),
    Axis("Var. seed", int, set_field("subseed"), seed_axis=True),
    Axis("Var. strength", float, set_field("subseed_strength")),
    Axis("Steps", int, set_field("steps")),
    Axis("Hires steps", int, set_field("hr_second_pass_steps"), tabs=T2I),
    Axis("CFG Scale", float, set_field("cfg_scale")),
    Axis("Image CFG Scale", float, set_field("image_cfg_scale"), tabs=I2I),
    Axis("Prompt S/R", str, _prompt_sr, label_style="bare"),
    Axis("Prompt order", "permutations", _prompt_order, label_style="joined"),
    Axis("Sampler", str, set_field("sampler_name"), tabs=T2I, confirm=_confirm_samplers, label_style="bare",
         choices=lambda ctx: [s.name for s in SAMPLER_NAMES]),
    Axis("Hires sampler", str, set_field("hr_sampler_name"), tabs=T2I, confirm=_confirm_samplers,
         choices=lambda ctx: [s.name for s in SAMPLER_NAMES]),
    Axis("Sampler", str, set_field("sampler_name"), tabs=I2I, confirm=_confirm_samplers, label_style="bare",
         choices=lambda ctx: [s.name for s in SAMPLER_NAMES]),
    Axis("Checkpoint name", str, set_field("checkpoint"), confirm=_confirm_checkpoints, cost=1.0,
         label_style="basename", choices=_checkpoint_names),
    Axis("Negative Guidance minimum sigma", float, None),
    Axis("Sigma Churn", float, set_field("s_churn")),
    Axis("Sigma min", float, set_field("s_tmin")),
    Axis("Sigma max", float, set_field("s_tmax")),
    Axis("Sigma noise", float, set_field("s_noise")),
    Axis("Schedule type", str, set_field("scheduler"), confirm=_confirm_schedules,
         choices=lambda ctx: [s.label for s in SCHEDULE_NAMES]),
    Axis("Schedule min sigma", float, None),
    Axis("Schedule max sigma", float, None),
    Axis("Schedule rho", float, None),
    Axis("Skip Early CFG", float, None),
    Axis("Beta schedule alpha", float, None),
    Axis("Beta schedule beta", float, None),
    Axis("Eta", float, set_field("eta")),
    Axis("Clip skip", int, set_field("clip_skip")),
    Axis("Denoising", float, set_field("denoising_strength")),
    Axis("Initial noise multiplier", float, set_field("initial_noise_multiplier"), tabs=I2I),
    Axis("Initial noise multiplier", float, None, tabs=T2I),
    Axis("Extra noise", float, None),
    Axis("Hires upscaler", str, set_field("hr_upscaler"), tabs=T2I, confirm=_confirm_upscalers,
         choices=known_upscalers_for),
    Axis("Cond. Image Mask Weight", float, None, tabs=I2I),
    Axis("VAE", str, set_field("vae"), confirm=_confirm_vaes, cost=0.7, choices=_vae_names),
    Axis("Styles", str, _styles, confirm=_confirm_styles, choices=_style_names),
    Axis("UniPC Order", int, None),
    Axis("Face restore", str, None),
    Axis("Token merging ratio", float, None),
    Axis("Token merging ratio high-res", float, None),
    Axis("Always discard next-to-last sigma", str, None, choices=lambda ctx: ["False", "True"]),
    Axis("SGM noise multiplier", str, None, choices=lambda ctx: ["False", "True"]),
    Axis("Refiner checkpoint", str, None),
    Axis("Refiner switch at", float, None),
    Axis("RNG source", str, None, choices=lambda ctx: ["GPU", "CPU", "NV"]),
    Axis("FP8 mode", str, None, choices=lambda ctx: ["Disable", "Enable for SDXL", "Enable"]),
    Axis("Size", str, _size, confirm=_confirm_sizes),
    # Ours: the epoch × strength comparison LoRA tutorials make (LoRA file outermost after checkpoints).
    Axis("LoRA weight", float, _lora_weight, cost=0.5, label_style="named"),
    Axis("LoRA file", str, _lora_file, confirm=_confirm_loras, cost=0.9, label_style="bare", choices=_lora_names),
)


def axes_for(mode: str) -> list[Axis]:
    """The axis list of one tab, in the order API clients index it."""
    return [axis for axis in AXES if mode in axis.tabs]


def find_axis(mode: str, wanted: int | str) -> Axis:
    """An axis by index into the tab's list (what A1111 clients send) or by its label (case-insensitive)."""
    axes = axes_for(mode)
    if isinstance(wanted, bool):
        raise UserInputError(f"axis type {wanted!r} is neither an index nor a name")
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().lstrip("-").isdigit()):
        index = int(wanted)
        if not 0 <= index < len(axes):
            raise UserInputError(f"axis type index {index} is out of range 0..{len(axes) - 1} for {mode}")
        return axes[index]
    for axis in axes:
        if axis.label.casefold() == str(wanted).strip().casefold():
            return axis
    raise UserInputError(f"unknown axis type {wanted!r} for {mode}")


def typed_values(axis: Axis, values: list) -> list:
    if axis.kind == "permutations":
        return list(itertools.permutations(values))
    return values


def fix_axis_seeds(values: list) -> list:
    """A1111: -1 (or an empty value) on a seed axis becomes one fixed random seed, so the row is repeatable."""
    return [fix_seed(-1) if value in (-1, None, "") else value for value in values]
