"""A1111 API bodies → our typed requests: settings and override_settings, sampler names, refused extras."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from webui.api.errors import ApiError
from webui.api.schemas import GenerationFields
from webui.errors import UserInputError
from webui.models.registry import UnknownCheckpointError
from webui.processing.infotext_request import request_fields_from_infotext
from webui.processing.request import MAX_SIDE, describe_validation_errors
from webui.processing.runtime import Runtime
from webui.processing.settings import Settings
from webui.sampling.names import UnknownSamplerError
from webui.scripts import script_titles

# A1111 options that are request fields here rather than stored settings: (option, request field).
REQUEST_OPTIONS: tuple[tuple[str, str], ...] = (("eta_noise_seed_delta", "eta_noise_seed_delta"),)
VAE_SPECIAL = ("Automatic", "None", "", None)


def check_checkpoint(runtime: Runtime, name: str, where: str) -> str:
    """The registry's canonical name for `name`, or a 400 that says the checkpoint does not exist."""
    try:
        return runtime.registry.find(str(name)).name
    except UnknownCheckpointError as error:
        raise ApiError(400, f"{where}: {error}", "UnknownCheckpoint") from None


def check_vae(runtime: Runtime, name: str, where: str) -> None:
    if name in VAE_SPECIAL:
        return
    try:
        runtime.registry.find_vae(str(name))
    except UserInputError as error:
        raise ApiError(400, f"{where}: {error}", "UnknownVAE") from None


def settings_with(runtime: Runtime, changes: dict[str, Any], where: str) -> tuple[Settings, dict[str, Any]]:
    """Current settings with `changes` applied (validated, nothing stored) and the changes we know.

    Option names we do not have are ignored, as A1111 ignores them; a checkpoint or VAE that does not exist is
    a 400 (A1111 silently keeps the old model there, which gives pictures from the wrong model).
    """
    known = {key: value for key, value in changes.items() if key in Settings.model_fields}
    if known.get("sd_model_checkpoint"):
        known["sd_model_checkpoint"] = check_checkpoint(runtime, known["sd_model_checkpoint"],
                                                        f"{where}.sd_model_checkpoint")
    if "sd_vae" in known:
        check_vae(runtime, known["sd_vae"], f"{where}.sd_vae")
    try:
        settings = Settings(**{**runtime.settings.current.model_dump(), **known})
    except ValidationError as error:
        raise ApiError(422, f"{where}: " + describe_validation_errors(error.errors(), "options"),
                       "InvalidSetting") from None
    return settings, known


def refuse_unsupported(body: GenerationFields) -> None:
    """Fields whose feature we do not have are refused when used, never silently dropped (422)."""
    used = []
    if body.restore_faces:
        used.append("restore_faces (no face restorer is installed)")
    if body.tiling:
        used.append("tiling")
    if body.refiner_checkpoint:
        used.append("refiner_checkpoint")
    if body.disable_extra_networks:
        used.append("disable_extra_networks")
    if body.script_name and body.script_name.strip().casefold() not in {t.casefold() for t in script_titles()}:
        used.append(f"script_name {body.script_name!r} (no such script; available: "
                    f"{', '.join(t.lower() for t in script_titles())})")
    if body.alwayson_scripts:
        used.append(f"alwayson_scripts {', '.join(map(repr, body.alwayson_scripts))} (no such script)")
    if getattr(body, "firstpass_image", None):
        used.append("firstpass_image")
    if used:
        raise ApiError(422, "Not supported: " + "; ".join(used), "NotSupported")


def common_fields(runtime: Runtime, body: GenerationFields,
                  mode: str = "txt2img") -> tuple[dict[str, Any], Settings, dict[str, Any]]:
    """Our request fields from the shared part of an A1111 body; also the settings in force and the overrides.

    `mode` ("txt2img" or "img2img") decides which infotext keys may fill fields (hires ones only for txt2img).
    """
    refuse_unsupported(body)
    if body.width > MAX_SIDE or body.height > MAX_SIDE:
        raise ApiError(413, f"{body.width}x{body.height} is too large: at most {MAX_SIDE} px a side", "ImageTooLarge")
    overrides = dict(body.override_settings or {})
    settings, known = settings_with(runtime, overrides, "override_settings")
    sampler = body.sampler_name or body.sampler_index
    fields: dict[str, Any] = {
        "prompt": body.prompt, "negative_prompt": body.negative_prompt, "steps": body.steps,
        "sampler_name": sampler, "scheduler": body.scheduler or "Automatic", "cfg_scale": body.cfg_scale,
        "width": body.width, "height": body.height,
        "seed": -1 if body.seed is None else body.seed, "subseed": -1 if body.subseed is None else body.subseed,
        "subseed_strength": body.subseed_strength,
        # A1111's "not set" is -1 (the API) or 0 (clients); ours is 0
        "seed_resize_from_w": max(0, body.seed_resize_from_w), "seed_resize_from_h": max(0, body.seed_resize_from_h),
        "batch_size": body.batch_size, "n_iter": body.n_iter,
        "clip_skip": settings.CLIP_stop_at_last_layers, "emphasis": settings.emphasis,
        "checkpoint": settings.sd_model_checkpoint or None, "vae": settings.sd_vae or "Automatic",
        # the API writes nothing to disk unless save_images is set, and then honours the do_not_save flags
        "save_images": body.save_images and not body.do_not_save_samples,
        "save_grid": body.save_images and not body.do_not_save_grid,
    }
    # A1111's API starts at 512x512; ours starts at the Settings default, whose 0 means the native size of the
    # checkpoint the job will use (1024 for SDXL, 64 for the demo). A size the client sends always wins.
    if not {"width", "height"} <= body.model_fields_set:
        width, height = runtime.default_size(fields["checkpoint"], settings)
        fields["width"] = body.width if "width" in body.model_fields_set else width
        fields["height"] = body.height if "height" in body.model_fields_set else height
    for name in ("eta", "s_churn", "s_tmin", "s_tmax", "s_noise"):
        value = getattr(body, name)
        if value is not None:
            fields[name] = value
    for option, field in REQUEST_OPTIONS:
        if option in overrides:
            fields[field] = overrides[option]
    if body.infotext:
        _fill_from_infotext(fields, body, overrides, mode)
    return fields, settings, known


def _fill_from_infotext(fields: dict[str, Any], body: GenerationFields, overrides: dict[str, Any],
                        mode: str) -> None:
    # A1111: the infotext fills fields; fields the client set explicitly win.
    explicit = set(body.model_fields_set) | ({"sampler_name"} if "sampler_index" in body.model_fields_set else set())
    if "CLIP_stop_at_last_layers" in overrides:
        explicit.add("clip_skip")
    if "sd_vae" in overrides:
        explicit.add("vae")
    for field, value in request_fields_from_infotext(body.infotext or "", mode=mode).items():
        if field not in explicit:
            fields[field] = value


def add_specific_fields(fields: dict[str, Any], specific: dict[str, Any], body: GenerationFields) -> None:
    """Add an endpoint's own fields; a value the body's `infotext` supplied wins unless the client set that field."""
    from_infotext = set(fields) if body.infotext else set()
    for name, value in specific.items():
        if name in from_infotext and name not in body.model_fields_set:
            continue
        fields[name] = value


def build(request_type: type[BaseModel], fields: dict[str, Any]) -> Any:
    """Validate into our request type; field problems are a 422 listing each one."""
    try:
        return request_type(**fields)
    except ValidationError as error:
        for item in error.errors():
            cause = (item.get("ctx") or {}).get("error")
            if isinstance(cause, UnknownSamplerError):  # the request resolves sampler names: A1111 answers 400
                raise cause from None
        raise ApiError(422, "Invalid request: " + describe_validation_errors(error.errors()),
                       "InvalidRequest") from None
