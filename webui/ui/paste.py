"""A1111's "paste parameters": which control of a tab each infotext request field fills, and in what form."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import gradio as gr

from webui.processing.infotext_request import request_fields_from_infotext
from webui.processing.request import INPAINTING_FILLS

USE_SAME_SAMPLER = "Use same sampler"
USE_SAME_SCHEDULER = "Use same scheduler"

# Request values a Radio(type="index") shows by its label: the update must name the label.
_AS_LABEL: Mapping[str, Callable[[Any], Any]] = {
    "inpainting_fill": lambda v: INPAINTING_FILLS[int(v)],
    "inpaint_full_res": lambda v: "Only masked" if v else "Whole picture",
    "inpainting_mask_invert": lambda v: "Inpaint not masked" if int(v) else "Inpaint masked",
    "hr_sampler_name": lambda v: v or USE_SAME_SAMPLER,
    "hr_scheduler": lambda v: v or USE_SAME_SCHEDULER,
}


def _common(tab, top) -> dict[str, gr.components.Component]:
    p, s = tab.prompts, tab.params
    return {"prompt": p.prompt, "negative_prompt": p.negative, "steps": s.steps, "sampler_name": s.sampler,
            "scheduler": s.scheduler, "cfg_scale": s.cfg_scale, "seed": s.seed, "width": s.width, "height": s.height,
            "subseed": s.subseed, "subseed_strength": s.subseed_strength, "seed_resize_from_w": s.seed_resize_w,
            "seed_resize_from_h": s.seed_resize_h, "clip_skip": top.clip_skip, "vae": top.vae,
            "show_variation": s.extra}


def txt2img_targets(tab, top) -> dict[str, gr.components.Component]:
    """Request field → txt2img control, hires fix included (its checkbox is `enable_hr`)."""
    h = tab.hires
    return {**_common(tab, top), "enable_hr": h.enable, "hr_upscaler": h.upscaler,
            "hr_second_pass_steps": h.second_pass_steps, "denoising_strength": h.denoising, "hr_scale": h.scale,
            "hr_resize_x": h.resize_x, "hr_resize_y": h.resize_y, "hr_sampler_name": h.sampler,
            "hr_scheduler": h.scheduler, "hr_prompt": h.prompt, "hr_negative_prompt": h.negative_prompt,
            "hires_shown": h.accordion}


def img2img_targets(tab, top) -> dict[str, gr.components.Component]:
    """Request field → img2img control, with denoising strength and the inpainting (mask) settings."""
    e = tab.extra
    return {**_common(tab, top), "denoising_strength": e["denoising"], "mask_blur": e["mask_blur"],
            "inpainting_fill": e["fill"], "inpaint_full_res": e["full_res"], "inpaint_full_res_padding": e["padding"],
            "inpainting_mask_invert": e["mask_invert"]}


def pasted_updates(infotext: str, targets: Mapping[str, gr.components.Component], mode: str) -> list[Any]:
    """One value per target (in `targets` order); fields the infotext lacks keep the form's value (gr.skip())."""
    if not infotext or not infotext.strip():
        return [gr.skip()] * len(targets)
    fields = request_fields_from_infotext(infotext, mode)
    fields.setdefault("clip_skip", 1)  # A1111 resets clip skip to 1 when the text has none
    if fields.get("subseed_strength") or fields.get("seed_resize_from_w") or fields.get("seed_resize_from_h"):
        fields["show_variation"] = True  # A1111 ticks "Extra" so the pasted variation seed is visible
    if fields.get("enable_hr"):
        fields["hires_shown"] = gr.Accordion(open=True)  # a pasted hires pass is shown, not hidden in a fold
    values = []
    for name in targets:
        if name not in fields:
            values.append(gr.skip())
            continue
        convert = _AS_LABEL.get(name)
        values.append(convert(fields[name]) if convert else fields[name])
    return values
