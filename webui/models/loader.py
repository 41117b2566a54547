"""Builds diffusers/transformers modules from an A1111/LDM single-file checkpoint, entirely offline."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from accelerate import init_empty_weights

# The concrete modules, not the lazy `diffusers` namespace, whose type stubs resolve to placeholder classes.
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from webui.errors import ModelFileError
from webui.models.architectures import (
    Architecture,
    UnsupportedModelError,
    architecture_from_sidecar,
    detect_architecture,
)
from webui.models.checkpoint_io import load_tensors, tensor_shapes
from webui.models.device import DeviceConfig
from webui.models.fast_paths import prepare_unet, prepare_vae
from webui.models.ldm_convert import ldm_to_diffusers, vae_ldm_to_diffusers

log = logging.getLogger(__name__)

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)

_TEXT_ENCODER_CLASSES: dict[str, Callable[[CLIPTextConfig], CLIPTextModel | CLIPTextModelWithProjection]] = {
    "CLIPTextModel": CLIPTextModel,
    "CLIPTextModelWithProjection": CLIPTextModelWithProjection,
}


@dataclass
class TextEncoder:
    """One text encoder of a model and how its conditioning is built ("clip_l" or "open_clip")."""

    slot: str
    kind: str
    model: CLIPTextModel | CLIPTextModelWithProjection


@dataclass
class LoadedComponents:
    """The modules of one checkpoint, ready to run."""

    architecture: Architecture
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoders: list[TextEncoder] = field(default_factory=list)
    vae_source: str | None = None  # None: the checkpoint's own VAE


def resolve_architecture(path: Path) -> Architecture:
    """The sidecar wins (as in A1111); otherwise detect from tensor names and shapes only."""
    sidecar = _sidecar_of(path)
    if sidecar is not None:
        arch = architecture_from_sidecar(sidecar)
        if arch is not None:
            return arch
    try:
        return detect_architecture(tensor_shapes(path))
    except UnsupportedModelError as error:
        raise ModelFileError(f"{path.name}: {error}") from error


def _sidecar_of(path: Path) -> Path | None:
    for suffix in (".json", ".yaml"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def load_components(path: Path, config: DeviceConfig, vae_file: Path | None = None) -> LoadedComponents:
    """Read the file once, convert its keys, and assign the tensors into empty modules (no random init)."""
    path = Path(path)
    arch = resolve_architecture(path)
    state = load_tensors(path)
    converted = ldm_to_diffusers(state, arch)
    del state
    if converted.unexpected:
        log.warning("%s: %d tensors not used by %s, e.g. %s", path.name, len(converted.unexpected), arch.name,
                    ", ".join(converted.unexpected[:3]))
    parts = converted.components
    unet = _assign(_empty(UNet2DConditionModel.from_config, arch.unet_config()), parts.get("unet", {}), "UNet", path)
    vae = _assign(_empty(AutoencoderKL.from_config, arch.vae_config()), parts.get("vae", {}), "VAE", path)
    encoders = []
    for spec in arch.text_encoders:
        cls = _TEXT_ENCODER_CLASSES[spec.class_name]
        module = _assign(_empty(cls, CLIPTextConfig(**spec.config_dict())), parts.get(spec.slot, {}), spec.slot, path)
        encoders.append(TextEncoder(spec.slot, spec.kind, module))
    components = LoadedComponents(arch, unet, vae, encoders)
    if vae_file is not None:
        components.vae = load_vae(vae_file, arch)
        components.vae_source = vae_file.name
    place(components, config)
    return components


def load_vae(path: Path, arch: Architecture) -> AutoencoderKL:
    """A separate VAE file, in LDM (`encoder.down.0…`) or diffusers (`encoder.down_blocks.0…`) layout."""
    state = load_tensors(path)
    state = {k.removeprefix("first_stage_model."): v for k, v in state.items()
             if not k.startswith(("model_ema.", "loss."))}
    diffusers_layout = any(".down_blocks." in k for k in state)
    weights = state if diffusers_layout else vae_ldm_to_diffusers(state, arch)[0]
    return _assign(_empty(AutoencoderKL.from_config, arch.vae_config()), weights, "VAE", path)


def place(components: LoadedComponents, config: DeviceConfig) -> None:
    """Move every module to its storage device and dtype, then apply the fast paths; inference only."""
    target = config.storage_device
    modules: list[tuple[torch.nn.Module, torch.dtype]] = [(components.unet, config.dtype),
                                                           (components.vae, config.vae_dtype)]
    modules += [(e.model, config.dtype) for e in components.text_encoders]
    for module, dtype in modules:
        if next(module.parameters()).dtype != dtype:
            module.to(dtype=dtype)
        module.to(device=target)
        module.eval()
        module.requires_grad_(False)
    prepare_unet(components.unet, config)
    prepare_vae(components.vae, config)


def _empty(factory: Callable[[Any], ModuleT], config: Any) -> ModuleT:
    with init_empty_weights():
        return factory(config)


def _assign(module: ModuleT, weights: dict[str, torch.Tensor], what: str, path: Path) -> ModuleT:
    expected = set(module.state_dict().keys())
    missing = sorted(expected - set(weights))
    extra = sorted(set(weights) - expected)
    if missing:
        raise ModelFileError(f"{path.name}: the {what} is missing {len(missing)} tensors (e.g. {missing[0]}); "
                             "the file is incomplete or of another architecture")
    if extra:
        raise ModelFileError(f"{path.name}: the {what} has {len(extra)} unknown tensors (e.g. {extra[0]})")
    reference = module.state_dict()
    for key, tensor in weights.items():
        if tuple(tensor.shape) != tuple(reference[key].shape):
            raise ModelFileError(f"{path.name}: {what} tensor {key} has shape {tuple(tensor.shape)}, "
                                 f"expected {tuple(reference[key].shape)}; wrong model family or a damaged file")
        if not torch.is_floating_point(tensor):
            raise ModelFileError(f"{path.name}: {what} tensor {key} is not floating point")
    module.load_state_dict({k: v.float() if v.dtype not in (torch.float16, torch.bfloat16, torch.float32) else v
                            for k, v in weights.items()}, strict=True, assign=True)
    return module
