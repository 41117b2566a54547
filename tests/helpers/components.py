"""Build an architecture's diffusers/transformers components: full size on the meta device, or small and random."""
from __future__ import annotations

import contextlib

import torch
import transformers
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel

from webui.models.architectures import Architecture


def build_models(arch: Architecture, meta: bool = False, seed: int = 0) -> dict[str, torch.nn.Module]:
    """Instantiate every component; `meta=True` allocates nothing (safe for full-size SDXL on a CI box)."""
    torch.manual_seed(seed)
    context = init_empty_weights() if meta else contextlib.nullcontext()
    with context:
        models: dict[str, torch.nn.Module] = {
            "unet": UNet2DConditionModel.from_config(arch.unet_config()),
            "vae": AutoencoderKL.from_config(arch.vae_config()),
        }
        for spec in arch.text_encoders:
            model_class = getattr(transformers, spec.class_name)
            models[spec.slot] = model_class(transformers.CLIPTextConfig(**spec.config_dict()))
    return models


def component_state_dicts(models: dict[str, torch.nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    """State dicts of built components, keyed like `ConvertedComponents.components`."""
    return {name: dict(model.state_dict()) for name, model in models.items()}


def perturb(state_dict: dict[str, torch.Tensor], seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Add small seeded noise to every float tensor, then cast.

    The default init leaves many tensors equal (LayerNorm weights all 1, biases 0), which would let a
    swapped key mapping pass unnoticed; small noise keeps the model numerically sane for pipeline tests.
    """
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, tensor in state_dict.items():
        if tensor.is_floating_point():
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
            tensor = (tensor.float() + 0.02 * noise).to(dtype)
        out[key] = tensor.contiguous()
    return out
