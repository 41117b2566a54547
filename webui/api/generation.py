"""POST /txt2img and what img2img shares with it: queue the job, run processing, answer in A1111's shape."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import APIRouter

from webui.api.errors import ApiError
from webui.api.images import encode_png
from webui.api.mapping import add_specific_fields, build, common_fields
from webui.api.schemas import GenerationFields, GenerationResponse, Txt2ImgBody
from webui.processing.infotext import parse_infotext_raw
from webui.processing.jobs import JobState
from webui.processing.previews import LatentPreviewer
from webui.processing.request import Img2ImgRequest, Txt2ImgRequest
from webui.processing.results import GenerationResult
from webui.processing.runtime import Runtime
from webui.processing.settings import Settings
from webui.processing.styles import StyleStore
from webui.processing.txt2img import txt2img
from webui.scripts import ScriptContext, run_script

SAME_CHECKPOINT, SAME_SAMPLER, SAME_SCHEDULER = "Use same checkpoint", "Use same sampler", "Use same scheduler"
# Infotext keys that have their own field in `info`; the rest go to extra_generation_params.
_OWN_FIELDS = frozenset({"Prompt", "Negative prompt", "Steps", "Sampler", "CFG scale", "Seed", "Size", "Size-1",
                         "Size-2", "Model hash", "Model", "VAE hash", "VAE", "Variation seed",
                         "Variation seed strength", "Seed resize from", "Seed resize from-1", "Seed resize from-2",
                         "Clip skip", "Version", "Denoising strength"})


@dataclass
class GenerationDeps:
    """What the generation routes share: the runtime, one live-preview fitter, and the styles.csv the UI edits."""

    runtime: Runtime
    previewer: LatentPreviewer
    styles: StyleStore

    def apply_styles(self, fields: dict[str, Any], body: GenerationFields) -> None:
        """A1111 applies `styles` to the prompts before generating; an unknown name is a 400 here."""
        if body.styles:
            fields["prompt"], fields["negative_prompt"] = self.styles.apply(
                list(body.styles), fields["prompt"], fields["negative_prompt"])

def make_deps(runtime: Runtime) -> GenerationDeps:
    return GenerationDeps(runtime, runtime.previewer, runtime.styles)


def run_job(deps: GenerationDeps, work: Callable[[JobState], Any], settings: Settings) -> Any:
    """Wait for our turn in the queue the UI shares, then run; /progress, /interrupt and /skip see this job."""
    job = deps.runtime.new_job(settings)
    return deps.runtime.queue.run(job, lambda: work(job))


def info_json(body: GenerationFields, request: Any, result: GenerationResult, images_offset: int) -> str:
    """A1111's `info`: a JSON string describing the whole job, with every image's infotext.

    Seeds, model and VAE come from the image records (the seeds of the images actually returned: after a skip
    or an interrupt they are not the first N planned); only `extra_generation_params` keeps A1111's text form.
    """
    records = result.items
    first = {k: v for k, v in records[0].parameters.items() if v is not None} if records else {}
    extra = parse_infotext_raw(records[0].infotext) if records else {}
    seeds, subseeds = result.seeds, result.subseeds
    info = {
        # as A1111: `prompt` is the text before styles, `all_prompts` what each image was made from
        "prompt": body.prompt if body.styles else request.prompt, "all_prompts": [request.prompt] * len(seeds),
        "negative_prompt": body.negative_prompt if body.styles else request.negative_prompt,
        "all_negative_prompts": [request.negative_prompt] * len(seeds),
        "seed": seeds[0] if seeds else body.seed, "all_seeds": seeds,
        "subseed": subseeds[0] if subseeds else body.subseed, "all_subseeds": subseeds,
        "subseed_strength": request.subseed_strength, "width": request.width, "height": request.height,
        "sampler_name": first.get("Sampler", request.sampler_name), "cfg_scale": request.cfg_scale,
        "steps": request.steps, "batch_size": request.batch_size, "restore_faces": False,
        "face_restoration_model": None, "sd_model_name": first.get("Model"), "sd_model_hash": first.get("Model hash"),
        "sd_vae_name": first.get("VAE"), "sd_vae_hash": first.get("VAE hash"),
        "seed_resize_from_w": request.seed_resize_from_w or -1, "seed_resize_from_h": request.seed_resize_from_h or -1,
        "denoising_strength": getattr(request, "denoising_strength", body.denoising_strength),
        "extra_generation_params": {k: v for k, v in extra.items() if k not in _OWN_FIELDS},
        "index_of_first_image": images_offset, "infotexts": result.infotexts, "styles": body.styles or [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "clip_skip": request.clip_skip,
        "is_using_inpainting_conditioning": False, "version": first.get("Version"),
        "interrupted": result.interrupted, "warnings": result.warnings,
    }
    return json.dumps(info, ensure_ascii=False)


def respond(body: GenerationFields, request: Any, result: Any) -> dict[str, Any]:
    """A1111's answer: base64 PNGs (grid first when one was made), the body as given, and `info`."""
    images = []
    offset = 0
    if body.send_images:
        if result.grid is not None:  # A1111 puts the grid first and says so in index_of_first_image
            images.append(encode_png(result.grid, result.grid_infotext or (result.infotexts[0] if result.infotexts
                                                                           else None)))
            offset = 1
        images += [encode_png(image, text) for image, text in zip(result.images, result.infotexts, strict=False)]
    return {"images": images, "parameters": body.model_dump(), "info": info_json(body, request, result, offset)}


def txt2img_fields(runtime: Runtime, body: Txt2ImgBody) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """Shared fields plus hires fix; A1111's "Use same …" labels mean "" (the first pass's) here."""
    fields, settings, known = common_fields(runtime, body)
    if body.hr_checkpoint_name not in (None, "", SAME_CHECKPOINT):
        raise ApiError(422, "Not supported: hr_checkpoint_name (the hires pass uses the first pass's checkpoint)",
                       "NotSupported")
    add_specific_fields(fields, {
        "enable_hr": body.enable_hr, "hr_scale": body.hr_scale, "hr_upscaler": body.hr_upscaler or "Latent",
        "hr_second_pass_steps": body.hr_second_pass_steps, "hr_resize_x": body.hr_resize_x,
        "hr_resize_y": body.hr_resize_y, "hr_prompt": body.hr_prompt, "hr_negative_prompt": body.hr_negative_prompt,
        # the API's default strength is 0.75 (the UI's 0.7)
        "denoising_strength": 0.75 if body.denoising_strength is None else body.denoising_strength,
        "hr_sampler_name": "" if body.hr_sampler_name in (None, SAME_SAMPLER) else body.hr_sampler_name,
        "hr_scheduler": "" if body.hr_scheduler in (None, SAME_SCHEDULER) else body.hr_scheduler,
    }, body)
    return fields, settings, known


def run_generation(deps: GenerationDeps, body: GenerationFields, fields: dict[str, Any], settings: Any,
                   known: dict[str, Any], request_type: type, process: Callable) -> dict[str, Any]:
    """Styles, our typed request, one queued job, the overrides kept if asked, and A1111's response."""
    deps.apply_styles(fields, body)
    request = build(request_type, fields)
    if body.script_name:  # the same request, handed to the script, which calls `process`'s function per cell
        context = ScriptContext(deps.runtime, "img2img" if request_type is Img2ImgRequest else "txt2img", deps.styles)
        result = run_job(deps, lambda job: run_script(str(body.script_name), list(body.script_args), request,
                                                      context, job), settings)
    else:
        result = run_job(deps, lambda job: process(request, deps.runtime, job), settings)
    if known and not body.override_settings_restore_afterwards:
        deps.runtime.settings.update(known)  # A1111 keeps the overrides when asked not to restore them
    return respond(body, request, result)


def run_txt2img(deps: GenerationDeps, body: Txt2ImgBody) -> dict[str, Any]:
    fields, settings, known = txt2img_fields(deps.runtime, body)
    return run_generation(deps, body, fields, settings, known, Txt2ImgRequest, txt2img)


def add_generation_routes(router: APIRouter, deps: GenerationDeps) -> None:
    # Plain `def`: FastAPI runs these on worker threads, where they wait for their turn in the queue.

    @router.post("/txt2img", response_model=GenerationResponse, summary="Text to image")
    def txt2img_route(body: Txt2ImgBody) -> dict[str, Any]:
        return run_txt2img(deps, body)

    @router.get("/prompt-styles", summary="Styles from styles.csv")
    def prompt_styles() -> list[dict[str, str]]:
        return [{"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt} for s in deps.styles.all()]
