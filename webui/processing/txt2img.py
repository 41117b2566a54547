"""txt2img, readable top to bottom: request in, images and infotext out."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from PIL import Image

from webui.models.manager import LoadedModel
from webui.processing.infotext import format_infotext
from webui.processing.jobs import ImageSkipped, JobInterrupted, JobState
from webui.models.device import on_device
from webui.processing.model_calls import (alphas_cumprod, decode_latents, encode_images, latent_scale,
                                          make_unet_call, text_encoders_on_device, to_pil)
from webui.processing.network_stack import activate_networks
from webui.processing.noise import fix_seed, image_noise, seeds_for_batch
from webui.processing.outputs import dated_folder, make_grid, save_grid, save_image
from webui.processing.png_info import pnginfo_for
from webui.processing.prompt_conds import ConditioningBuilder, embeddings_for, plan_prompt, prompt_encoder_for
from webui.processing.request import Txt2ImgRequest
from webui.processing.runtime import Runtime
from webui.sampling import CFGDenoiser, DiscreteSchedule, ModelDenoiser, sample
from webui.sampling.names import resolve_sampler, schedule_label_for_infotext

log = logging.getLogger(__name__)
VERSION = "webui-lora 0.1"


@dataclass
class GenerationResult:
    """What a generation returns to any adapter: images (each with its infotext), seeds, and messages."""

    images: list[Image.Image] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    subseeds: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    grid: Image.Image | None = None
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False


def txt2img(request: Txt2ImgRequest, runtime: Runtime, job: JobState | None = None) -> GenerationResult:
    job = job or JobState()
    # 1. Check inputs: the request type validated fields; resolve names before any model work.
    sampler, schedule = resolve_sampler(request.sampler_name, request.scheduler)
    total = request.batch_size * request.n_iter
    seed, subseed = fix_seed(request.seed), fix_seed(request.subseed)
    all_seeds, all_subseeds = seeds_for_batch(seed, subseed, request.subseed_strength, total)
    result = GenerationResult(seeds=all_seeds, subseeds=all_subseeds)
    job.job_count = request.n_iter

    with runtime.models.use(request.checkpoint, request.vae) as model:
        # 2. Parse prompts: extra networks out, AND parts and prompt-editing schedules in.
        # Second-order samplers call the model twice per step; A1111 stretches prompt-editing schedules to match.
        schedule_steps = request.steps * (2 if sampler.second_order else 1)
        plan = plan_prompt(request.prompt, schedule_steps)
        negative_plan = plan_prompt(request.negative_prompt, schedule_steps, allow_and=False)
        networks = activate_networks(model, runtime.loras, plan.networks)
        result.warnings += networks.warnings
        components = model.components
        device = runtime.models.device
        embeddings = embeddings_for(components, runtime.embeddings)
        encoder = prompt_encoder_for(components, request.emphasis, embeddings)
        schedule_model = DiscreteSchedule(alphas_cumprod(model.architecture.scheduler_config()))
        unet_call = make_unet_call(components, device)
        denoiser_model = ModelDenoiser(unet_call, schedule_model, model.architecture.prediction_type)

        for batch_no in range(request.n_iter):
            job.job_no = batch_no
            seeds = all_seeds[batch_no * request.batch_size:(batch_no + 1) * request.batch_size]
            subseeds = all_subseeds[batch_no * request.batch_size:(batch_no + 1) * request.batch_size]
            # 3. Conditioning for every step (encoded once per distinct text).
            builder = ConditioningBuilder(encoder, components, request.clip_skip, request.width, request.height,
                                          image_cond=_inpainting_txt2img_cond(model, request, len(seeds), device))
            with text_encoders_on_device(components, device):
                builder.precompute(plan, negative_plan)
            cfg = CFGDenoiser(denoiser_model, builder.cond_fn(plan, len(seeds)),
                              builder.uncond_fn(negative_plan, len(seeds)), request.cfg_scale)
            # 4. Initial noise from each image's own CPU generator.
            latent_channels = components.unet.config.out_channels
            scale = latent_scale(components)
            shape = (latent_channels, request.height // scale, request.width // scale)
            resize = (request.seed_resize_from_w, request.seed_resize_from_h) \
                if request.seed_resize_from_w > 0 and request.seed_resize_from_h > 0 else None
            noise, generators = image_noise(shape, seeds, subseeds, request.subseed_strength, resize,
                                            eta_noise_seed_delta=request.eta_noise_seed_delta)
            noise = noise.to(device.device)  # latents stay fp32; the UNet call casts to the model dtype
            # 5. Denoising loop.
            try:
                with torch.no_grad(), on_device(components.unet, device):
                    latents = sample(sampler.name, schedule.name, cfg, noise, schedule_model, request.steps,
                                     seeds=seeds, generators=generators,
                                     callback=lambda info: job.step(info.i, info.total, info.denoised),
                                     settings=_sampler_settings(request),
                                     is_sdxl=model.architecture.family in ("sdxl", "sdxl-refiner"))
            except ImageSkipped:
                continue
            except JobInterrupted:
                result.interrupted = True
                break
            # 6. Decode and write.
            with torch.no_grad(), on_device(components.vae, device):
                images = to_pil(decode_latents(components, latents, device))
            extra = {"Lora hashes": networks.lora_hashes,
                     "TI hashes": embeddings.hashes_infotext(builder.embeddings_used) or None}
            for index, image in enumerate(images):
                params = _infotext_params(request, model, sampler, schedule, seeds[index], subseeds[index], runtime)
                text = format_infotext(request.prompt, request.negative_prompt, {**params, **extra})
                image.info["parameters"] = text
                result.images.append(image)
                result.infotexts.append(text)
                if request.save_images:
                    folder = dated_folder(runtime.outputs.root / "txt2img-images") \
                        if runtime.outputs.save_to_dated_folders else runtime.outputs.root / "txt2img-images"
                    result.paths.append(str(save_image(image, folder, seed=seeds[index], infotext=text)))
        job.job_no = request.n_iter

    if len(result.images) > 1 and request.save_grid:
        result.grid = make_grid(result.images)
        if request.save_images:
            grid_folder = dated_folder(runtime.outputs.root / "txt2img-grids")
            save_grid(result.grid, grid_folder, infotext=result.infotexts[0])
    return result


def _sampler_settings(request: Txt2ImgRequest) -> dict:
    settings = {"s_churn": request.s_churn, "s_tmin": request.s_tmin, "s_tmax": request.s_tmax,
                "s_noise": request.s_noise}
    if request.eta is not None:
        settings["eta"] = request.eta
    return settings


def _inpainting_txt2img_cond(model: LoadedModel, request: Txt2ImgRequest, batch: int, device) -> torch.Tensor | None:
    """9-channel models get a mask of ones and a grey masked image, as A1111's txt2img does."""
    if not model.architecture.inpainting:
        return None
    grey = torch.full((1, 3, request.height, request.width), 0.5)
    with torch.no_grad(), on_device(model.components.vae, device):
        latent = encode_images(model.components, grey, device)
    mask = torch.ones(1, 1, *latent.shape[-2:])
    return torch.cat([mask, latent], dim=1).expand(batch, -1, -1, -1)


def _infotext_params(request: Txt2ImgRequest, model: LoadedModel, sampler, schedule, seed: int, subseed: int,
                     runtime: Runtime) -> dict:
    params: dict = {
        "Steps": request.steps,
        "Sampler": sampler.name,
        "Schedule type": schedule_label_for_infotext(sampler, schedule),
        "CFG scale": request.cfg_scale,
        "Seed": seed,
        "Size": f"{request.width}x{request.height}",
        "Model hash": model.short_hash,
        "Model": model.checkpoint.stem,
        "VAE hash": (runtime.registry.vae_sha256(model.vae) or "")[:10] or None if model.vae else None,
        "VAE": model.vae.name if model.vae else None,
        "Variation seed": subseed if request.subseed_strength > 0 else None,
        "Variation seed strength": request.subseed_strength if request.subseed_strength > 0 else None,
        "Seed resize from": f"{request.seed_resize_from_w}x{request.seed_resize_from_h}"
        if request.seed_resize_from_w > 0 and request.seed_resize_from_h > 0 else None,
        "Clip skip": request.clip_skip if request.clip_skip > 1 else None,
        "ENSD": request.eta_noise_seed_delta if request.eta_noise_seed_delta and sampler.uses_ensd else None,
        "RNG": "CPU",
    }
    if request.eta is not None:
        params["Eta"] = request.eta
    if request.emphasis != "Original":
        params["Emphasis"] = request.emphasis
    params["Version"] = VERSION
    return params

