"""Reading architecture hints from an A1111-style LDM `.yaml` config into our base-name + overrides form."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Targets in LDM / SGM configs that name the text encoder; the class name alone tells the families apart.
_SD1_COND = "FrozenCLIPEmbedder"
_SD2_COND = "FrozenOpenCLIPEmbedder"
_BIGG_COND = "FrozenOpenCLIPEmbedder2"

# context_dim of the UNet's cross-attention -> family; it is the one number every LDM UNet config carries.
_FAMILY_BY_CONTEXT = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}


class YamlConfigError(ValueError):
    """The YAML is not an LDM/SGM diffusion config we understand."""


def _target_name(entry: Any) -> str:
    if isinstance(entry, Mapping):
        return str(entry.get("target", "")).rsplit(".", 1)[-1]
    return ""


def _cond_targets(params: Mapping[str, Any]) -> list[str]:
    """Text-encoder class names, in order: LDM's single cond stage or SGM's conditioner embedders."""
    if "cond_stage_config" in params:
        return [_target_name(params["cond_stage_config"])]
    conditioner = params.get("conditioner_config") or {}
    models = (conditioner.get("params") or {}).get("emb_models") or []
    return [_target_name(m) for m in models if "Embedder" in _target_name(m)]


def _family(context: int | None, targets: list[str]) -> str:
    if context in _FAMILY_BY_CONTEXT:
        return _FAMILY_BY_CONTEXT[context]
    # No usable context_dim: fall back to which text encoders the config builds.
    if _SD1_COND in targets and _BIGG_COND in targets:
        return "sdxl"
    if targets == [_BIGG_COND]:
        return "sdxl-refiner"
    if targets == [_SD2_COND]:
        return "sd2"
    if targets == [_SD1_COND]:
        return "sd1"
    raise YamlConfigError(f"cannot tell the model family (context_dim={context}, text encoders={targets})")


def _is_v_prediction(params: Mapping[str, Any]) -> bool:
    if params.get("parameterization") == "v":
        return True
    # SGM (SDXL) configs name the parameterisation through the denoiser's scaling class.
    scaling = ((params.get("denoiser_config") or {}).get("params") or {}).get("scaling_config")
    return "VScaling" in _target_name(scaling)


def yaml_overrides(doc: Any) -> tuple[str, dict[str, Any]]:
    """(base architecture name, overrides in our sidecar form) for a parsed A1111/LDM YAML config.

    Read: `parameterization` (or SGM VScaling), the UNet's `in_channels`, `context_dim`,
    `use_linear_in_transformer`, the cond stage target(s), `scale_factor`, `linear_start`/`linear_end`,
    `timesteps`. Anything else in the YAML is left to the base architecture.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("model"), Mapping):
        raise YamlConfigError("no top-level `model:` section")
    params = doc["model"].get("params") or {}
    unet_entry = params.get("unet_config") or params.get("network_config") or {}
    unet_params = unet_entry.get("params") or {}
    context = unet_params.get("context_dim")
    if isinstance(context, (list, tuple)):
        context = context[0] if context else None
    in_channels = int(unet_params.get("in_channels", 4))
    family = _family(context, _cond_targets(params))
    v_pred = _is_v_prediction(params)

    if family == "sdxl-refiner":
        if in_channels == 9:
            raise YamlConfigError("there is no 9-channel (inpainting) SDXL refiner architecture")
        base = family
    elif in_channels == 9:
        base = f"{family}-inpaint"
    elif family == "sd2":
        base = "sd2-v" if v_pred else "sd2"
    else:
        base = family

    overrides: dict[str, Any] = {"prediction_type": "v_prediction" if v_pred else "epsilon"}
    unet: dict[str, Any] = {"in_channels": in_channels}
    if context is not None:
        unet["cross_attention_dim"] = int(context)
    if "use_linear_in_transformer" in unet_params:
        unet["use_linear_projection"] = bool(unet_params["use_linear_in_transformer"])
    overrides["unet"] = unet
    if "scale_factor" in params:
        overrides["vae"] = {"scaling_factor": float(params["scale_factor"])}
    scheduler: dict[str, Any] = {}
    if "linear_start" in params:
        scheduler["beta_start"] = float(params["linear_start"])
    if "linear_end" in params:
        scheduler["beta_end"] = float(params["linear_end"])
    if "timesteps" in params:
        scheduler["num_train_timesteps"] = int(params["timesteps"])
    if scheduler:
        overrides["scheduler"] = scheduler
    return base, overrides
