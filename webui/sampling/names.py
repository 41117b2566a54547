"""A1111's sampler and schedule-type names, aliases and defaults, as data."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerName:
    """One sampler as the user names it; the algorithm lives in `webui.sampling.samplers`."""

    name: str
    aliases: tuple[str, ...]
    default_schedule: str | None  # schedule name used for "Automatic"; None = the model's own sigmas
    second_order: bool = False
    discard_penultimate_sigma: bool = False
    uses_ensd: bool = False
    brownian: bool = False
    timestep_sampler: bool = False


SAMPLER_NAMES: tuple[SamplerName, ...] = (
    SamplerName("DPM++ 2M", ("k_dpmpp_2m",), "karras"),
    SamplerName("DPM++ SDE", ("k_dpmpp_sde",), "karras", second_order=True, brownian=True),
    SamplerName("DPM++ 2M SDE", ("k_dpmpp_2m_sde",), "exponential", brownian=True),
    SamplerName("DPM++ 2M SDE Heun", ("k_dpmpp_2m_sde_heun",), "exponential", brownian=True),
    SamplerName("DPM++ 2S a", ("k_dpmpp_2s_a",), "karras", second_order=True, uses_ensd=True),
    SamplerName("DPM++ 3M SDE", ("k_dpmpp_3m_sde",), "exponential", discard_penultimate_sigma=True, brownian=True),
    SamplerName("Euler a", ("k_euler_a", "k_euler_ancestral"), None, uses_ensd=True),
    SamplerName("Euler", ("k_euler",), None),
    SamplerName("LMS", ("k_lms",), None),
    SamplerName("Heun", ("k_heun",), None, second_order=True),
    SamplerName("DPM2", ("k_dpm_2",), "karras", second_order=True, discard_penultimate_sigma=True),
    SamplerName("DPM2 a", ("k_dpm_2_a",), "karras", second_order=True, discard_penultimate_sigma=True, uses_ensd=True),
    SamplerName("DPM fast", ("k_dpm_fast",), None, uses_ensd=True),
    SamplerName("DPM adaptive", ("k_dpm_ad",), None, uses_ensd=True),
    SamplerName("Restart", ("restart",), "karras", second_order=True),
    SamplerName("DDIM", ("ddim",), None, timestep_sampler=True),
    SamplerName("DDIM CFG++", ("ddim_cfgpp",), None, timestep_sampler=True),
    SamplerName("PLMS", ("plms",), None, timestep_sampler=True),
    SamplerName("UniPC", ("unipc",), None, timestep_sampler=True),
    SamplerName("LCM", ("k_lcm",), None),
)


@dataclass(frozen=True)
class ScheduleName:
    """One schedule type: its internal name and the label shown in the UI and infotext."""

    name: str
    label: str
    aliases: tuple[str, ...] = ()


SCHEDULE_NAMES: tuple[ScheduleName, ...] = (
    ScheduleName("automatic", "Automatic"),
    ScheduleName("uniform", "Uniform"),
    ScheduleName("karras", "Karras"),
    ScheduleName("exponential", "Exponential"),
    ScheduleName("polyexponential", "Polyexponential"),
    ScheduleName("sgm_uniform", "SGM Uniform", ("SGMUniform",)),
    ScheduleName("kl_optimal", "KL Optimal"),
    ScheduleName("align_your_steps", "Align Your Steps"),
    ScheduleName("simple", "Simple"),
    ScheduleName("normal", "Normal"),
    ScheduleName("ddim", "DDIM"),
    ScheduleName("beta", "Beta"),
)


class UnknownSamplerError(ValueError):
    """Raised for a sampler or schedule name that matches nothing; the message lists the known names."""


def _norm(text: str) -> str:
    return text.strip().lower()


def find_sampler(name: str) -> SamplerName:
    """Look a sampler up by display name or alias (case-insensitive)."""
    key = _norm(name)
    for sampler in SAMPLER_NAMES:
        if key == _norm(sampler.name) or key in (_norm(a) for a in sampler.aliases):
            return sampler
    known = ", ".join(s.name for s in SAMPLER_NAMES)
    raise UnknownSamplerError(f"Unknown sampler: {name!r}. Known samplers: {known}")


def find_schedule(name: str) -> ScheduleName:
    """Look a schedule type up by name, label or alias (case-insensitive)."""
    key = _norm(name)
    for schedule in SCHEDULE_NAMES:
        candidates = (schedule.name, schedule.label, *schedule.aliases)
        if key in (_norm(c) for c in candidates):
            return schedule
    known = ", ".join(s.label for s in SCHEDULE_NAMES)
    raise UnknownSamplerError(f"Unknown schedule type: {name!r}. Known schedule types: {known}")


def resolve_sampler(name: str, schedule: str | None = None) -> tuple[SamplerName, ScheduleName]:
    """Split legacy combined names ("DPM++ 2M Karras") and resolve both parts.

    A split-off schedule equal to the sampler's default becomes "Automatic", as A1111 does.
    An explicit `schedule` other than Automatic wins over one split off the name.
    """
    try:
        sampler, split = find_sampler(name), None
    except UnknownSamplerError:
        sampler, split = _split_legacy(name)
    chosen = schedule if schedule and find_schedule(schedule).name != "automatic" else None
    if chosen is None and split is not None:
        chosen = "automatic" if split.name == sampler.default_schedule else split.name
    return sampler, find_schedule(chosen or "automatic")


def _split_legacy(name: str) -> tuple[SamplerName, ScheduleName | None]:
    text = name.strip()
    for schedule in SCHEDULE_NAMES[1:]:
        for label in (schedule.label, schedule.name, *schedule.aliases):
            if _norm(text).endswith(" " + _norm(label)):
                head = text[: len(text) - len(label)].strip()
                try:
                    return find_sampler(head), schedule
                except UnknownSamplerError:
                    continue
    return find_sampler(text), None  # raises with the list of known names


def schedule_label_for_infotext(sampler: SamplerName, schedule: ScheduleName) -> str:
    """The `Schedule type:` value A1111 writes: the resolved label, or "Automatic" when there is no default."""
    if schedule.name != "automatic":
        return schedule.label
    if sampler.default_schedule is None:
        return "Automatic"
    return find_schedule(sampler.default_schedule).label
