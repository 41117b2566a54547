"""Full-size checkpoints with random weights, written straight from the meta model's shapes (no slow init)."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.helpers.components import build_models
from tests.helpers.tiny_models import tiny_ldm_extras
from webui.models.architectures import load_architecture
from webui.models.ldm_convert import diffusers_to_ldm


def random_components(arch_name: str, seed: int = 0, dtype: torch.dtype = torch.float16) -> dict:
    """Seeded N(0, 0.02²) tensors in every parameter's shape; norms get weight 1 so activations stay finite."""
    arch = load_architecture(arch_name)
    generator = torch.Generator().manual_seed(seed)
    components = {}
    for name, model in build_models(arch, meta=True).items():
        tensors = {}
        for key, meta in model.state_dict().items():
            if key.endswith("weight") and ("norm" in key or "ln_" in key or "layer_norm" in key):
                tensors[key] = torch.ones(meta.shape, dtype=dtype)
            else:
                tensors[key] = (torch.randn(meta.shape, generator=generator) * 0.02).to(dtype)
        components[name] = tensors
    return components


def write_full_size_checkpoint(arch_name: str, path: Path, seed: int = 0) -> Path:
    """An A1111-layout .safetensors of the real architecture, plus the DDPM buffers real files carry."""
    arch = load_architecture(arch_name)
    state = diffusers_to_ldm(random_components(arch_name, seed), arch)
    state.update(tiny_ldm_extras(arch, seed, torch.float16))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().clone() for k, v in state.items()}, str(path))
    return path
