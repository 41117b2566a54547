"""img2img and inpainting, readable top to bottom: init images (and mask) in, images and infotext out."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image, ImageOps

from webui.processing.images import binary_mask, normalize_image, resize_image, to_tensor
from webui.processing.interrupts import interruptible
from webui.processing.jobs import ImageSkipped, JobInterrupted, JobState
from webui.processing.masking import (
    Box,
    blur_mask,
    conditioning_mask,
    crop_region,
    expand_to_aspect,
    fill_masked,
    latent_mask,
    make_overlay,
    paste_back,
    whole_picture_overlay_mask,
)
from webui.processing.noise import fix_seed, seeds_for_batch
from webui.processing.pipeline import (
    VERSION,
    ModelContext,
    SamplingPass,
    base_infotext_params,
    initial_noise,
    prepare_prompts,
    run_pass,
    sampler_settings,
)
from webui.processing.request import INPAINTING_FILLS, Img2ImgRequest, InpaintingFill, MaskMode, ResizeMode
from webui.processing.results import GenerationResult
from webui.processing.runtime import Runtime
from webui.processing.saving import finish_grid, store_image
from webui.processing.vae import decode_checked, encode, inpainting_conditioning

EMPTY_MASK_WARNING = 'The mask is empty, so "Only masked" could not crop anything; ran plain img2img instead.'


@dataclass
class PreparedImage:
    """One init image made ready for sampling, plus what is needed to paste the result back into it."""

    image: Image.Image  # RGB at the request size (or the picture's own size for a latent upscale)
    mask: Image.Image | None = None  # "L" at the request size, 255 = repaint (blurred)
    overlay: Image.Image | None = None  # the original as RGBA, opaque where it must survive
    paste_box: Box | None = None  # where an "only masked" crop goes back


def img2img(request: Img2ImgRequest, runtime: Runtime, job: JobState | None = None) -> GenerationResult:
    job = job or JobState()
    job.prompt_budget.restart()  # the budget is per generation: batch img2img and scripts run many on one job
    # 1. Check inputs and bring the pictures into shape before any model work.
    sampler, schedule = request.sampler, request.schedule  # resolved when the request was built
    warnings: list[str] = []
    prepared = [prepare_image(image, request, warnings) for image in request.init_images]
    if len(prepared) == 1:
        prepared = prepared * request.batch_size
    batch_size = len(prepared)  # A1111: several init images make the batch, one repeats batch_size times
    seed, subseed = fix_seed(request.seed), fix_seed(request.subseed)
    all_seeds, all_subseeds = seeds_for_batch(seed, subseed, request.subseed_strength, batch_size * request.n_iter)
    result = GenerationResult(warnings=warnings)
    job.job_count = request.n_iter

    with runtime.models.use(request.checkpoint, request.vae) as model, interruptible(job, model.components):
        # 2. Parse prompts and apply their LoRAs; img2img keeps the schedule of the nominal steps (A1111).
        try:
            plan, negative_plan, networks, ctx = prepare_prompts(request, model, runtime, sampler, job)
            # 3. Init latents, masks and the inpainting models' image conditioning (the same for every batch).
            init_latent = _encode_init(ctx, prepared, request)
        except JobInterrupted:  # Interrupt while long prompts or big pictures were being encoded
            result.interrupted = True
            return result
        result.warnings += networks.warnings
        keep = _keep_mask(prepared, init_latent)
        masks = None if keep is None else torch.cat([
            conditioning_mask(p.mask, request.height, request.width) for p in prepared])
        image_cond = inpainting_conditioning(ctx, to_tensor([_processing_size(p.image, request) for p in prepared]),
                                             masks, batch_size, request.height, request.width)

        for batch_no in range(request.n_iter):
            job.begin(batch_no)
            seeds = all_seeds[batch_no * batch_size:(batch_no + 1) * batch_size]
            subseeds = all_subseeds[batch_no * batch_size:(batch_no + 1) * batch_size]
            noise, generators = initial_noise(request, tuple(init_latent.shape[1:]), seeds, subseeds, ctx.device,
                                              ctx.scale)
            start = init_latent
            if keep is not None and request.inpainting_fill == InpaintingFill.LATENT_NOISE:
                start = init_latent * keep + noise * (1 - keep)
            elif keep is not None and request.inpainting_fill == InpaintingFill.LATENT_NOTHING:
                start = init_latent * keep
            spec = SamplingPass(sampler=sampler, schedule=schedule, steps=request.steps, cfg_scale=request.cfg_scale,
                                clip_skip=request.clip_skip, width=request.width, height=request.height, plan=plan,
                                negative_plan=negative_plan,
                                settings=sampler_settings(request,
                                                          initial_noise_multiplier=request.initial_noise_multiplier),
                                denoise_strength=request.denoising_strength, init_latent=start,
                                image_cond=image_cond, keep_mask=keep)
            try:
                latents, used = run_pass(ctx, spec, noise, generators, seeds, job)
                decoded = decode_checked(ctx, latents, networks.applied, result.warnings)
            except ImageSkipped:
                continue
            except JobInterrupted:
                result.interrupted = True
                break
            # 4. Decode, paste back into the originals, write.
            extra = {**_img2img_infotext(request, prepared, ctx), "Lora hashes": networks.lora_hashes,
                     "TI hashes": ctx.embeddings.hashes_infotext(used) or None, "Version": VERSION}
            for index, image in enumerate(decoded):
                item = prepared[index]
                if item.overlay is not None:
                    image = paste_back(image, item.overlay, item.paste_box)
                params = base_infotext_params(request, ctx, sampler, schedule, seeds[index], subseeds[index], runtime)
                store_image(result, image, {**params, **extra}, seeds[index], subseeds[index], request, runtime,
                            "img2img")
        job.job_no = request.n_iter

    finish_grid(result, request, runtime, "img2img")
    return result


def prepare_image(init: Image.Image, request: Img2ImgRequest, warnings: list[str]) -> PreparedImage:
    """A1111's img2img set-up for one picture: mask to binary, invert, blur, crop region or resize, overlay, fill."""
    image = normalize_image(init, request.max_input_pixels, "init image")
    width, height = request.width, request.height
    if request.mask is None:
        if request.resize_mode == ResizeMode.LATENT_UPSCALE:  # resized later, in latent space
            return PreparedImage(image)
        return PreparedImage(resize_image(image, request.resize_mode, width, height))
    mask = binary_mask(request.mask)
    if mask.size != image.size:  # an uploaded mask may not match the picture; stretch it onto it
        mask = binary_mask(mask.resize(image.size, Image.Resampling.LANCZOS))
    if request.inpainting_mask_invert == MaskMode.INPAINT_NOT_MASKED:
        mask = ImageOps.invert(mask)
    mask = blur_mask(mask, request.mask_blur)
    # A latent upscale cannot carry a mask through; masked requests resize in pixels instead.
    mode = ResizeMode.JUST_RESIZE if request.resize_mode == ResizeMode.LATENT_UPSCALE else request.resize_mode
    if request.inpaint_full_res:
        region = crop_region(mask, request.inpaint_full_res_padding)
        if region is None:
            if EMPTY_MASK_WARNING not in warnings:
                warnings.append(EMPTY_MASK_WARNING)
            return PreparedImage(resize_image(image, mode, width, height))
        box = expand_to_aspect(region, width, height, image.width, image.height)
        overlay = make_overlay(image, mask)
        crop = resize_image(image.crop(box), ResizeMode.RESIZE_AND_FILL, width, height)
        crop_mask = resize_image(mask.crop(box), ResizeMode.RESIZE_AND_FILL, width, height)
        if request.inpainting_fill != InpaintingFill.ORIGINAL:
            crop = fill_masked(crop, crop_mask)
        return PreparedImage(crop, crop_mask, overlay, box)
    mask = resize_image(mask, mode, width, height)
    image = resize_image(image, mode, width, height)
    overlay = make_overlay(image, whole_picture_overlay_mask(mask))
    if request.inpainting_fill != InpaintingFill.ORIGINAL:
        image = fill_masked(image, mask)
    return PreparedImage(image, mask, overlay)


def _processing_size(image: Image.Image, request: Img2ImgRequest) -> Image.Image:
    return image if image.size == (request.width, request.height) else resize_image(image, 0, request.width,
                                                                                    request.height)


def _encode_init(ctx: ModelContext, prepared: list[PreparedImage], request: Img2ImgRequest) -> torch.Tensor:
    """Each distinct picture encoded once; "Just resize (latent upscale)" interpolates its latents to size."""
    size = (request.height // ctx.scale, request.width // ctx.scale)
    cache: dict[int, torch.Tensor] = {}
    latents = []
    for item in prepared:
        if id(item) not in cache:
            latent = encode(ctx, to_tensor([item.image]))
            if latent.shape[-2:] != size:
                latent = torch.nn.functional.interpolate(latent, size=size, mode="bilinear")
            cache[id(item)] = latent
        latents.append(cache[id(item)])
    return torch.cat(latents)


def _keep_mask(prepared: list[PreparedImage], init_latent: torch.Tensor) -> torch.Tensor | None:
    """Latent-size mask, 1 where the init latent stays; None when no picture is being inpainted."""
    if all(item.mask is None for item in prepared):
        return None
    height, width = init_latent.shape[-2:]
    repaint = [latent_mask(item.mask, height, width) if item.mask is not None else torch.ones(1, 1, height, width)
               for item in prepared]
    return (1 - torch.cat(repaint)).to(init_latent)


def _img2img_infotext(request: Img2ImgRequest, prepared: list[PreparedImage], ctx: ModelContext) -> dict:
    params: dict = {"Denoising strength": request.denoising_strength}
    if ctx.model.architecture.inpainting:
        params["Conditional mask weight"] = 1.0
    if any(item.mask is not None for item in prepared):
        if request.mask_blur > 0:
            params["Mask blur"] = request.mask_blur
        if any(item.paste_box is not None for item in prepared):
            params["Inpaint area"] = "Only masked"
            params["Masked area padding"] = request.inpaint_full_res_padding
        if request.inpainting_fill != InpaintingFill.ORIGINAL:
            params["Masked content"] = INPAINTING_FILLS[request.inpainting_fill]
        if request.inpainting_mask_invert == MaskMode.INPAINT_NOT_MASKED:
            params["Mask mode"] = "Inpaint not masked"
    if request.initial_noise_multiplier != 1.0:
        params["Noise multiplier"] = request.initial_noise_multiplier
    return params
