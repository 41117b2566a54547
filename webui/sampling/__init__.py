"""Sampling layer: sigma schedules, samplers as pure functions, model/CFG denoisers and the `sample` entry point."""
from webui.sampling.common import Denoiser, NoiseSource, StepCallback, StepInfo, UncondDenoiser
from webui.sampling.denoisers import CFGDenoiser, ModelDenoiser
from webui.sampling.names import (
    SAMPLER_NAMES,
    SCHEDULE_NAMES,
    SamplerName,
    ScheduleName,
    UnknownSamplerError,
    find_sampler,
    find_schedule,
    resolve_sampler,
    schedule_label_for_infotext,
)
from webui.sampling.noise import BrownianNoise, GeneratorNoise, make_noise_source
from webui.sampling.registry import SAMPLER_FUNCTIONS, SamplerSettings, img2img_steps, run_sampler, sample
from webui.sampling.schedules import DiscreteSchedule, build_sigmas, schedule_sigmas

__all__ = [
    "SAMPLER_FUNCTIONS", "SAMPLER_NAMES", "SCHEDULE_NAMES", "BrownianNoise", "CFGDenoiser", "Denoiser",
    "DiscreteSchedule", "GeneratorNoise", "ModelDenoiser", "NoiseSource", "SamplerName", "SamplerSettings",
    "ScheduleName", "StepCallback", "StepInfo", "UncondDenoiser", "UnknownSamplerError", "build_sigmas",
    "find_sampler", "find_schedule", "img2img_steps", "make_noise_source", "resolve_sampler", "run_sampler",
    "sample", "schedule_label_for_infotext", "schedule_sigmas",
]
