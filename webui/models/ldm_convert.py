"""Whole-checkpoint conversion between the LDM single-file layout and diffusers/transformers component state dicts."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from webui.models.architectures import Architecture, TextEncoderSpec
from webui.models.ldm_clip import hf_clip_keymap, open_clip_keymap
from webui.models.ldm_keymap import KeyMap
from webui.models.ldm_unet import unet_keymap
from webui.models.ldm_vae import vae_keymap

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."

# Training-time buffers of LDM's DDPM wrapper: the scheduler rebuilds all of them from the config.
IGNORED_KEYS = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "logvar", "lvlb_weights",
})
# EMA shadow weights (A1111 uses the live ones), SGM denoiser sigma tables, and a VAE's training loss.
IGNORED_PREFIXES = ("model_ema.", "denoiser.", "first_stage_model.loss.")
# transformers' position_ids buffer (not persisted by transformers 5, present in old checkpoints).
IGNORED_SUFFIXES = (".position_ids",)
# Real OpenCLIP tensors with no place in the transformers model we build; kept so a save round-trips.
EXTRA_LEAVES = ("logit_scale", "text_projection")
# Checkpoints saved with transformers < 4.20 lack the `text_model.` level under the SD1 CLIP prefix (A1111
# renames them the same way on load).
_LEGACY_CLIP_ROOT = "cond_stage_model.transformer."
_LEGACY_CLIP_HEADS = ("embeddings.", "encoder.", "final_layer_norm.")


@dataclass
class ConvertedComponents:
    """Result of `ldm_to_diffusers`.

    components: "unet" / "vae" / "text_encoder" / "text_encoder_2" -> state dict (only those present in the file).
    ignored: LDM keys known not to be weights we load (see IGNORED_*).
    unexpected: keys that mapped to nothing; a non-empty list means the file is not this architecture.
    extras: real tensors with no slot in the components (OpenCLIP `logit_scale`, SD2's `text_projection`),
        to pass back to `diffusers_to_ldm` for a lossless save.
    Tensors may be views sharing storage with the input (q/k/v chunks); clone before saving them separately.
    """

    components: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def text_encoder_keymap(spec: TextEncoderSpec) -> KeyMap:
    """Key map for one text encoder, relative to its `ldm_prefix`."""
    layers = int(spec.config["num_hidden_layers"])
    if spec.kind == "clip_l":
        return hf_clip_keymap(spec.class_name, layers)
    return open_clip_keymap(spec.class_name, layers)


def component_keymaps(arch: Architecture) -> list[tuple[str, str, KeyMap]]:
    """(component name, LDM prefix, key map) for every component of the architecture."""
    maps = [("unet", UNET_PREFIX, unet_keymap(arch.unet)), ("vae", VAE_PREFIX, vae_keymap(arch.vae))]
    maps += [(spec.slot, spec.ldm_prefix, text_encoder_keymap(spec)) for spec in arch.text_encoders]
    return maps


def is_ignored_key(key: str) -> bool:
    """True for LDM keys that are known non-weights (schedules, EMA copies, buffers)."""
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES) or key.endswith(IGNORED_SUFFIXES)


def normalise_legacy_key(key: str) -> str:
    """Insert the `text_model.` level into pre-2022 SD1 CLIP keys; other keys are returned unchanged."""
    if key.startswith(_LEGACY_CLIP_ROOT) and key[len(_LEGACY_CLIP_ROOT):].startswith(_LEGACY_CLIP_HEADS):
        return f"{_LEGACY_CLIP_ROOT}text_model.{key[len(_LEGACY_CLIP_ROOT):]}"
    return key


def ldm_to_diffusers(state_dict: Mapping[str, torch.Tensor], arch: Architecture) -> ConvertedComponents:
    """Split an LDM single-file state dict into diffusers/transformers component state dicts."""
    maps = component_keymaps(arch)
    # Longest prefix first so `conditioner.embedders.1.` can never be claimed by a shorter root.
    by_prefix = sorted(maps, key=lambda item: len(item[1]), reverse=True)
    grouped: dict[str, dict[str, torch.Tensor]] = {name: {} for name, _, _ in maps}
    result = ConvertedComponents()
    for original, tensor in state_dict.items():
        if is_ignored_key(original):
            result.ignored.append(original)
            continue
        key = normalise_legacy_key(original)
        owner = next((item for item in by_prefix if key.startswith(item[1])), None)
        if owner is None:
            result.unexpected.append(original)
        else:
            grouped[owner[0]][key[len(owner[1]):]] = tensor
    for name, prefix, keymap in maps:
        if not grouped[name]:
            continue
        converted, unmapped = keymap.to_diffusers(grouped[name])
        for rest in unmapped:
            if name.startswith("text_encoder") and rest in EXTRA_LEAVES:
                result.extras[prefix + rest] = grouped[name][rest]
            else:
                result.unexpected.append(prefix + rest)
        result.components[name] = converted
    return result


def diffusers_to_ldm(
    components: Mapping[str, Mapping[str, torch.Tensor]],
    arch: Architecture,
    extras: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Inverse of `ldm_to_diffusers`: one LDM single-file state dict (plus `extras`, written back verbatim).

    Raises ValueError for a component the architecture lacks or a key the map cannot place, since a
    silently dropped weight would make a broken checkpoint.
    """
    maps = {name: (prefix, keymap) for name, prefix, keymap in component_keymaps(arch)}
    unknown = sorted(set(components) - set(maps))
    if unknown:
        raise ValueError(f"{arch.name} has no component(s) {unknown}; it has {sorted(maps)}")
    out: dict[str, torch.Tensor] = {}
    for name, state_dict in components.items():
        prefix, keymap = maps[name]
        converted, unmapped = keymap.to_ldm(state_dict)
        if unmapped:
            raise ValueError(f"{name}: {len(unmapped)} key(s) have no LDM name for {arch.name}, e.g. {unmapped[:5]}")
        out.update({prefix + key: tensor for key, tensor in converted.items()})
    out.update(extras or {})
    return out


def vae_ldm_to_diffusers(
    state_dict: Mapping[str, torch.Tensor], arch: Architecture
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A standalone LDM VAE file (`*.vae.safetensors`, keys with or without `first_stage_model.`) to diffusers.

    Returns (state dict, unexpected keys); training leftovers such as `loss.*` and EMA copies are dropped.
    """
    stripped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, tensor in state_dict.items():
        rest = key[len(VAE_PREFIX):] if key.startswith(VAE_PREFIX) else key
        if rest.startswith(("loss.", "model_ema.")) or is_ignored_key(rest):
            continue
        stripped[rest] = tensor
    converted, unmapped = vae_keymap(arch.vae).to_diffusers(stripped)
    unexpected.extend(unmapped)
    return converted, unexpected


def vae_file_to_ldm(
    state_dict: Mapping[str, torch.Tensor], arch: Architecture
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A standalone VAE file (LDM or diffusers layout) as the `first_stage_model.*` tensors of a checkpoint.

    Returns (state dict with LDM keys, keys that have no place in the VAE); loss and EMA leftovers are dropped.
    """
    if any(".down_blocks." in key for key in state_dict):
        converted, unmapped = vae_keymap(arch.vae).to_ldm(state_dict)
        return {VAE_PREFIX + key: tensor for key, tensor in converted.items()}, unmapped
    kept: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        rest = key[len(VAE_PREFIX):] if key.startswith(VAE_PREFIX) else key
        if not (rest.startswith(("loss.", "model_ema.")) or is_ignored_key(rest)):
            kept[VAE_PREFIX + rest] = tensor
    return kept, []
