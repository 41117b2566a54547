"""Steps txt2img, img2img and hires fix share: model context, one sampling pass, VAE calls, infotext, saving."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from webui.conditioning import EmbeddingDatabase, PromptEncoder
from webui.models.device import DeviceConfig, on_device
from webui.models.loader import LoadedComponents
from webui.models.manager import LoadedModel
from webui.processing.jobs import JobState
from webui.processing.model_calls import (
    alphas_cumprod,
    latent_scale,
    make_unet_call,
    text_encoders_on_device,
)
from webui.processing.network_stack import NetworkActivation, activate_networks
from webui.processing.noise import image_noise
from webui.processing.prompt_conds import (
    ConditioningBuilder,
    PromptPlan,
    embeddings_for,
    plan_prompt,
    prompt_encoder_for,
)
from webui.processing.request import GenerationRequest

# Re-exported: adapters and scripts have imported the result type from here.
from webui.processing.results import GenerationResult as GenerationResult
from webui.processing.results import ImageResult as ImageResult
from webui.processing.runtime import Runtime
from webui.sampling import CFGDenoiser, DiscreteSchedule, ModelDenoiser, sample
from webui.sampling.denoisers import MaskBlendDenoiser
from webui.sampling.names import SamplerName, ScheduleName, schedule_label_for_infotext
from webui.sampling.registry import eta_for_infotext

VERSION = "webui-lora 0.1"


@dataclass
class ModelContext:
    """The loaded model wrapped once per generation: schedule, denoiser, prompt encoder, embeddings."""

    model: LoadedModel
    device: DeviceConfig
    schedule: DiscreteSchedule
    denoiser: ModelDenoiser
    encoder: PromptEncoder
    embeddings: EmbeddingDatabase

    @property
    def components(self) -> LoadedComponents:
        return self.model.components

    @property
    def scale(self) -> int:
        return latent_scale(self.model.components)

    @property
    def latent_channels(self) -> int:
        return int(self.model.components.unet.config["out_channels"])

    @property
    def is_sdxl(self) -> bool:
        return self.model.architecture.family in ("sdxl", "sdxl-refiner")


def model_context(model: LoadedModel, runtime: Runtime, emphasis: str) -> ModelContext:
    """Wrap the loaded model for one generation (call after LoRAs are applied; embeddings are rescanned here)."""
    components = model.components
    device = runtime.models.device
    embeddings = embeddings_for(components, runtime.embeddings)
    schedule = DiscreteSchedule(alphas_cumprod(model.architecture.scheduler_config()))
    denoiser = ModelDenoiser(make_unet_call(components, device), schedule, model.architecture.prediction_type)
    # A1111 keeps comma back-off as an option, not a request field: it comes from the settings in force.
    encoder = prompt_encoder_for(components, emphasis, embeddings,
                                 comma_backtrack=runtime.settings.current.comma_padding_backtrack)
    return ModelContext(model, device, schedule, denoiser, encoder, embeddings)


def model_calls_per_step(sampler: SamplerName) -> int:
    """Second-order samplers call the model twice per step; A1111 stretches prompt-editing schedules to match."""
    return 2 if sampler.second_order else 1


class PreparedPrompts(NamedTuple):
    """A request's prompt plans, the LoRAs they named (already applied), and the model wrapped for sampling."""

    plan: PromptPlan
    negative_plan: PromptPlan
    networks: NetworkActivation
    ctx: ModelContext


def prepare_prompts(request: GenerationRequest, model: LoadedModel, runtime: Runtime,
                    sampler: SamplerName, job: JobState | None = None) -> PreparedPrompts:
    """Parse both prompts (extra networks out, AND parts and prompt-editing schedules in), apply the LoRAs they
    name, then wrap the model: the same first steps for txt2img and img2img.

    Parsing counts against the job's prompt time budget and stops on Interrupt between AND parts.
    """
    job = job or JobState()
    schedule_steps = request.steps * model_calls_per_step(sampler)
    with job.prompt_budget.counting():
        plan = plan_prompt(request.prompt, schedule_steps, check=job.check_prompt_work)
        negative_plan = plan_prompt(request.negative_prompt, schedule_steps, allow_and=False,
                                    check=job.check_prompt_work)
    networks = activate_networks(model, runtime.loras, plan.networks)
    return PreparedPrompts(plan, negative_plan, networks, model_context(model, runtime, request.emphasis))


@dataclass(frozen=True)
class SamplingPass:
    """One run of the sampler: what to sample with and at which size; img2img fields are None for txt2img."""

    sampler: SamplerName
    schedule: ScheduleName
    steps: int
    cfg_scale: float
    clip_skip: int
    width: int
    height: int
    plan: PromptPlan
    negative_plan: PromptPlan
    settings: dict
    denoise_strength: float | None = None
    init_latent: Tensor | None = None
    image_cond: Tensor | None = None  # inpainting models' c_concat
    keep_mask: Tensor | None = None  # latent-size mask, 1 where the init latent is kept (normal-model inpainting)


def initial_noise(request: GenerationRequest, shape: Sequence[int], seeds: list[int], subseeds: list[int],
                  device: DeviceConfig, latent_scale: int) -> tuple[Tensor, list[torch.Generator]]:
    """Each image's noise from its own CPU generator (seed, variation, seed resize, ENSD as the request says);
    `latent_scale` is the VAE's pixels per latent cell (the loaded model's, never assumed)."""
    resize = (request.seed_resize_from_w, request.seed_resize_from_h) \
        if request.seed_resize_from_w > 0 and request.seed_resize_from_h > 0 else None
    noise, generators = image_noise(shape, seeds, subseeds, request.subseed_strength, resize,
                                    eta_noise_seed_delta=request.eta_noise_seed_delta, latent_scale=latent_scale)
    return noise.to(device.device), generators  # latents stay fp32; the UNet call casts to the model dtype


def run_pass(ctx: ModelContext, spec: SamplingPass, noise: Tensor, generators: list[torch.Generator],
             seeds: list[int], job: JobState) -> tuple[Tensor, dict[str, None]]:
    """Encode the prompts, then sample; returns latents and the embeddings the prompts used (for TI hashes)."""
    batch = len(seeds)
    builder = ConditioningBuilder(ctx.encoder, ctx.components, spec.clip_skip, spec.width, spec.height,
                                  image_cond=spec.image_cond, check=job.check_prompt_work)
    # Weighing, tokenising and encoding stop on Interrupt between pieces and count against the prompt budget.
    with text_encoders_on_device(ctx.components, ctx.device), job.prompt_budget.counting():
        builder.precompute(spec.plan, spec.negative_plan)
    cfg = CFGDenoiser(ctx.denoiser, builder.cond_fn(spec.plan, batch), builder.uncond_fn(spec.negative_plan, batch),
                      spec.cfg_scale)
    denoiser: CFGDenoiser | MaskBlendDenoiser = cfg
    if spec.keep_mask is not None and spec.init_latent is not None:
        denoiser = MaskBlendDenoiser(cfg, spec.init_latent, spec.keep_mask)
    with torch.no_grad(), on_device(ctx.components.unet, ctx.device):
        latents = sample(spec.sampler, spec.schedule, denoiser, noise, ctx.schedule, spec.steps,
                         seeds=seeds, generators=generators,
                         callback=lambda info: job.step(info.i, info.total, info.denoised),
                         denoise_strength=spec.denoise_strength, init_latent=spec.init_latent,
                         settings=spec.settings, is_sdxl=ctx.is_sdxl)
    if spec.keep_mask is not None and spec.init_latent is not None:
        latents = latents * (1 - spec.keep_mask) + spec.init_latent * spec.keep_mask
    return latents, builder.embeddings_used


def sampler_settings(request: GenerationRequest, **extra: object) -> dict:
    """The request's sampler options (churn, noise, eta) plus pass-specific ones such as img2img_fix_steps."""
    settings = {"s_churn": request.s_churn, "s_tmin": request.s_tmin, "s_tmax": request.s_tmax,
                "s_noise": request.s_noise, **extra}
    if request.eta is not None:
        settings["eta"] = request.eta
    return settings


def base_infotext_params(request: GenerationRequest, ctx: ModelContext, sampler: SamplerName,
                         schedule: ScheduleName, seed: int, subseed: int, runtime: Runtime) -> dict:
    """The keys every generation writes, in A1111's meaning; callers add their own before `Version`."""
    model = ctx.model
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
    params["Eta"] = eta_for_infotext(sampler.name, request.eta)
    if request.emphasis != "Original":
        params["Emphasis"] = request.emphasis
    return params
