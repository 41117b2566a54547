"""Tiny random checkpoints in the real LDM single-file layout, with a same-name JSON sidecar describing them."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from tests.helpers.components import build_models, component_state_dicts, perturb
from webui.models.architectures import Architecture, architecture_from_spec, load_architecture, merge_spec
from webui.models.ldm_convert import diffusers_to_ldm

TINY_CLIP = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
             "projection_dim": 32, "vocab_size": 49408, "max_position_embeddings": 77}
TINY_VAE = {"block_out_channels": [32, 64], "down_block_types": ["DownEncoderBlock2D"] * 2,
            "up_block_types": ["UpDecoderBlock2D"] * 2, "layers_per_block": 1, "norm_num_groups": 32,
            "sample_size": 32}
_TIME_DIM = 8  # addition_time_embed_dim for the tiny SDXL models (real: 256)

# Per family: the UNet shape kept tiny, but with the family's structural features (linear projection and
# per-block head counts for SD2, text_time embedding and uneven transformer depth for SDXL, the refiner's
# four blocks with attention only in the middle two, bigG only).
TINY_UNET: dict[str, dict[str, Any]] = {
    "sd1": {"block_out_channels": [32, 64], "layers_per_block": 1, "attention_head_dim": 4,
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32, "sample_size": 8},
    "sd2": {"block_out_channels": [32, 64], "layers_per_block": 1, "attention_head_dim": [2, 4],
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32, "sample_size": 8},
    "sdxl": {"block_out_channels": [32, 64], "layers_per_block": 1, "attention_head_dim": [2, 4],
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "transformer_layers_per_block": [1, 2],
             "cross_attention_dim": 64, "addition_time_embed_dim": _TIME_DIM,
             "projection_class_embeddings_input_dim": 32 + 6 * _TIME_DIM, "sample_size": 8},
    "sdxl-refiner": {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1,
                     "attention_head_dim": [2, 2, 4, 4], "transformer_layers_per_block": 2,
                     "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                     "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                     "cross_attention_dim": 32, "addition_time_embed_dim": _TIME_DIM,
                     "projection_class_embeddings_input_dim": 32 + 5 * _TIME_DIM, "sample_size": 8},
}

# DDPM buffers and position ids that real checkpoints carry; the converter must list them as ignored.
_SCHEDULE_KEYS = ("betas", "alphas_cumprod")


def tiny_sidecar(arch_name: str) -> dict[str, Any]:
    """The sidecar JSON (base + overrides) describing the tiny version of a shipped architecture."""
    base = load_architecture(arch_name)
    return {
        "base": arch_name,
        "name": f"tiny-{arch_name}",
        "unet": copy.deepcopy(TINY_UNET[base.family]),
        "vae": copy.deepcopy(TINY_VAE),
        "text_encoders": [{"slot": spec.slot, "config": dict(TINY_CLIP)} for spec in base.text_encoders],
    }


def tiny_architecture(arch_name: str) -> Architecture:
    """The tiny Architecture for one of `ARCHITECTURE_NAMES` (what the sidecar written next to it describes)."""
    return architecture_from_spec(merge_spec(load_architecture(arch_name), tiny_sidecar(arch_name)),
                                  where=f"tiny {arch_name}")


def tiny_components(
    arch_name: str, seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, dict[str, torch.Tensor]]:
    """Seeded random diffusers/transformers state dicts for the tiny architecture."""
    models = build_models(tiny_architecture(arch_name), seed=seed)
    return {name: perturb(sd, seed + i, dtype) for i, (name, sd) in enumerate(component_state_dicts(models).items())}


def tiny_ldm_extras(arch: Architecture, seed: int = 0, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The LDM-only tensors a real file of this family has: OpenCLIP logit_scale (+ SD2's text_projection),
    the DDPM schedule buffers and CLIP-L's position_ids."""
    generator = torch.Generator().manual_seed(seed + 100)
    extras: dict[str, torch.Tensor] = {}
    for spec in arch.text_encoders:
        if spec.kind == "open_clip":
            extras[spec.ldm_prefix + "logit_scale"] = torch.tensor(4.6052).to(dtype)
            if spec.class_name == "CLIPTextModel":
                width = int(spec.config["hidden_size"])
                extras[spec.ldm_prefix + "text_projection"] = torch.randn(width, width, generator=generator).to(dtype)
        else:
            extras[spec.ldm_prefix + "text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    sched = arch.scheduler
    steps = int(sched["num_train_timesteps"])
    betas = torch.linspace(float(sched["beta_start"]) ** 0.5, float(sched["beta_end"]) ** 0.5, steps) ** 2
    extras["betas"] = betas.to(dtype)
    extras["alphas_cumprod"] = torch.cumprod(1.0 - betas, dim=0).to(dtype)
    return extras


def build_tiny_checkpoint(arch_name: str, path: Path, seed: int = 0, dtype: torch.dtype = torch.float32) -> Path:
    """Write a tiny random `.safetensors` in the real LDM key layout plus its same-name `.json` sidecar.

    `path` is the checkpoint path (the suffix is forced to `.safetensors`); returns it.
    """
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    arch = tiny_architecture(arch_name)
    state_dict = diffusers_to_ldm(tiny_components(arch_name, seed, dtype), arch)
    state_dict.update(tiny_ldm_extras(arch, seed, dtype))
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path), metadata={"format": "pt"})
    path.with_suffix(".json").write_text(json.dumps(tiny_sidecar(arch_name), indent=2), encoding="utf-8")
    return path
