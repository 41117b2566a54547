"""txt2img, readable top to bottom: request in, images and infotext out (with the optional hires fix pass)."""
from __future__ import annotations

import logging
from dataclasses import replace

from webui.processing.hires import check_target, check_upscaler, hires_infotext, hires_pass, upscale_for_hires
from webui.processing.interrupts import interruptible
from webui.processing.jobs import ImageSkipped, JobInterrupted, JobState
from webui.processing.network_stack import activate_networks
from webui.processing.noise import fix_seed, seeds_for_batch
from webui.processing.pipeline import (
    VERSION,
    SamplingPass,
    base_infotext_params,
    initial_noise,
    prepare_prompts,
    run_pass,
    sampler_settings,
)
from webui.processing.request import Txt2ImgRequest
from webui.processing.results import GenerationResult
from webui.processing.runtime import Runtime
from webui.processing.saving import finish_grid, store_image
from webui.processing.vae import decode_checked, inpainting_conditioning

__all__ = ["GenerationResult", "VERSION", "txt2img"]
log = logging.getLogger(__name__)


def txt2img(request: Txt2ImgRequest, runtime: Runtime, job: JobState | None = None) -> GenerationResult:
    job = job or JobState()
    job.prompt_budget.restart()  # the budget is per generation: an X/Y/Z plot runs many on one job
    # 1. Check inputs: the request type validated fields; resolve names before any model work.
    sampler, schedule = request.sampler, request.schedule  # resolved when the request was built
    if request.enable_hr:
        check_upscaler(request.hr_upscaler, runtime)
        check_target(request, 8)  # impossible sizes fail before model work; redone with the model's latent scale
    total = request.batch_size * request.n_iter
    seed, subseed = fix_seed(request.seed), fix_seed(request.subseed)
    all_seeds, all_subseeds = seeds_for_batch(seed, subseed, request.subseed_strength, total)
    result = GenerationResult()
    passes = 2 if request.enable_hr else 1
    job.job_count = request.n_iter * passes
    job.pass_names = ("First pass", "Hires pass") if request.enable_hr else ()

    with runtime.models.use(request.checkpoint, request.vae) as model, interruptible(job, model.components):
        # 2. Parse prompts: extra networks out (applied), AND parts and prompt-editing schedules in.
        try:
            plan, negative_plan, networks, ctx = prepare_prompts(request, model, runtime, sampler, job)
        except JobInterrupted:  # Interrupt while a long prompt was being encoded
            result.interrupted = True
            return result
        result.warnings += networks.warnings
        first = SamplingPass(sampler=sampler, schedule=schedule, steps=request.steps, cfg_scale=request.cfg_scale,
                             clip_skip=request.clip_skip, width=request.width, height=request.height, plan=plan,
                             negative_plan=negative_plan, settings=sampler_settings(request))
        lora_hashes = [networks.lora_hashes]

        for batch_no in range(request.n_iter):
            job.begin(batch_no * passes)
            seeds = all_seeds[batch_no * request.batch_size:(batch_no + 1) * request.batch_size]
            subseeds = all_subseeds[batch_no * request.batch_size:(batch_no + 1) * request.batch_size]
            try:
                # 3. First pass: initial noise from each image's own CPU generator, then the denoising loop.
                shape = (ctx.latent_channels, request.height // ctx.scale, request.width // ctx.scale)
                noise, generators = initial_noise(request, shape, seeds, subseeds, ctx.device, ctx.scale)
                image_cond = inpainting_conditioning(ctx, None, None, len(seeds), request.height, request.width)
                if batch_no > 0 and request.enable_hr:
                    activate_networks(model, runtime.loras, plan.networks)  # the hires pass may have changed them
                latents, used = run_pass(ctx, _with_image_cond(first, image_cond), noise, generators, seeds, job)
                # 4. Hires fix: upscale, then an img2img pass with the hires steps, prompt, sampler and LoRAs.
                if request.enable_hr:
                    job.begin(batch_no * passes + 1)
                    latents, hires_used, hires_hashes = _hires_fix(ctx, request, runtime, sampler, latents, seeds,
                                                                   subseeds, job, result)
                    used = {**used, **hires_used}
                    lora_hashes.append(hires_hashes)
                # 5. Decode (a tiled VAE pass over a big hires picture stops on Interrupt too) and write.
                images = decode_checked(ctx, latents, networks.applied, result.warnings)
            except ImageSkipped:
                continue
            except JobInterrupted:
                result.interrupted = True
                break
            extra = {**(hires_infotext(request) if request.enable_hr else {}),
                     "Lora hashes": _join_hashes(lora_hashes),
                     "TI hashes": ctx.embeddings.hashes_infotext(used) or None}
            for index, image in enumerate(images):
                params = base_infotext_params(request, ctx, sampler, schedule, seeds[index], subseeds[index], runtime)
                store_image(result, image, {**params, **extra, "Version": VERSION}, seeds[index], subseeds[index],
                            request, runtime, "txt2img")
        job.job_no = job.job_count

    finish_grid(result, request, runtime, "txt2img")
    return result


def _with_image_cond(spec: SamplingPass, image_cond) -> SamplingPass:
    return spec if image_cond is None else replace(spec, image_cond=image_cond)


def _hires_fix(ctx, request: Txt2ImgRequest, runtime: Runtime, first_sampler, latents, seeds, subseeds,
               job: JobState, result: GenerationResult):
    """Upscale the first pass and redraw it; returns latents, embeddings used and the hires LoRA hashes."""
    upscaled = upscale_for_hires(ctx, latents, request, check_target(request, ctx.scale), runtime, job.check)
    if request.denoising_strength <= 0:
        return upscaled, {}, None  # nothing to redraw: the upscale is the result
    spec = hires_pass(ctx, request, first_sampler, upscaled, len(seeds))
    networks = activate_networks(ctx.model, runtime.loras, spec.plan.networks)
    for warning in networks.warnings:
        if warning not in result.warnings:
            result.warnings.append(warning)
    noise, generators = initial_noise(request, tuple(upscaled.shape[1:]), seeds, subseeds, ctx.device, ctx.scale)
    hires_latents, used = run_pass(ctx, spec, noise, generators, seeds, job)
    return hires_latents, used, networks.lora_hashes


def _join_hashes(values: list[str | None]) -> str | None:
    """Both passes' `Lora hashes` as one value, each LoRA once."""
    seen: dict[str, None] = {}
    for value in values:
        for item in (value or "").split(", "):
            if item:
                seen.setdefault(item)
    return ", ".join(seen) or None
