"""Tiny SD1-style and SDXL-style diffusers/transformers models and kohya-format LoRA writers for the tests."""
from __future__ import annotations

import hashlib
from typing import Iterable

import torch
import transformers
from diffusers import UNet2DConditionModel

from webui.networks import ModelNames

WIDTH = 32
TIME_DIM = 8


def tiny_clip(with_projection: bool = False, seed: int = 0) -> torch.nn.Module:
    """A 2-layer CLIP text model with the real vocabulary size (the shipped tokenizer must fit it)."""
    torch.manual_seed(seed)
    config = transformers.CLIPTextConfig(hidden_size=WIDTH, intermediate_size=37, num_hidden_layers=2,
                                         num_attention_heads=4, projection_dim=WIDTH, vocab_size=49408,
                                         max_position_embeddings=77)
    model_class = transformers.CLIPTextModelWithProjection if with_projection else transformers.CLIPTextModel
    return _perturb(model_class(config).eval(), seed)


def tiny_unet(sdxl: bool = False, seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    if sdxl:
        unet = UNet2DConditionModel(
            sample_size=8,
            block_out_channels=(32, 64),
            layers_per_block=1,
            attention_head_dim=8,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2),
            cross_attention_dim=2 * WIDTH,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=TIME_DIM,
            projection_class_embeddings_input_dim=WIDTH + 6 * TIME_DIM,
        )
    else:
        unet = UNet2DConditionModel(
            sample_size=8,
            block_out_channels=(32, 64),
            layers_per_block=1,
            attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=WIDTH,
        )
    return _perturb(unet.eval(), seed)


def _perturb(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    # Default init leaves norms at exactly 1/0 and many equal tensors; noise makes a wrong mapping visible.
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.02 * torch.randn(param.shape, generator=generator))
    return model


def tiny_models(sdxl: bool = False, seed: int = 0) -> dict[str, torch.nn.Module]:
    models: dict[str, torch.nn.Module] = {"unet": tiny_unet(sdxl, seed), "text_encoder": tiny_clip(False, seed + 1)}
    if sdxl:
        models["text_encoder_2"] = tiny_clip(True, seed + 2)
    return models


def param_hash(models: dict[str, torch.nn.Module]) -> str:
    """One digest over every parameter and buffer's bytes, to prove a restore is bit-identical."""
    digest = hashlib.sha256()
    for target in sorted(models):
        for key, tensor in sorted(models[target].state_dict().items()):
            digest.update(f"{target}.{key}".encode())
            digest.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def lora_targets(names: ModelNames, kinds: Iterable[type] = (torch.nn.Linear,)) -> list[tuple[str, str]]:
    """The layers kohya trains by default: attention/ff/proj linears in the UNet, attn/mlp in the text encoders."""
    kinds = tuple(kinds)
    chosen = []
    for (target, name), module in names.modules.items():
        if not isinstance(module, kinds):
            continue
        if target == "unet" and ("attentions" in name or (isinstance(module, torch.nn.Conv2d) and "resnets" in name)):
            chosen.append((target, name))
        elif target != "unet" and ("self_attn" in name or "mlp" in name):
            chosen.append((target, name))
    return chosen


def kohya_lora(names: ModelNames, layers: list[tuple[str, str]], rank: int = 4, alpha: float | None = 2.0,
               seed: int = 0, sgm: bool = False, locon_kernel: bool = True) -> dict[str, torch.Tensor]:
    """A random kohya LoRA/LoCon state dict for `layers` (3x3 convs get [r,in,3,3] downs when `locon_kernel`)."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for target, name in layers:
        module = names.modules[(target, name)]
        base = names.kohya_name(target, name, sgm=sgm)
        weight = module.weight
        if weight.dim() == 4:
            kernel = weight.shape[2:] if locon_kernel else (1, 1)
            down = torch.randn(rank, weight.shape[1], *kernel, generator=generator)
            up = torch.randn(weight.shape[0], rank, 1, 1, generator=generator)
        else:
            down = torch.randn(rank, weight.shape[1], generator=generator)
            up = torch.randn(weight.shape[0], rank, generator=generator)
        tensors[f"{base}.lora_down.weight"] = down * 0.1
        tensors[f"{base}.lora_up.weight"] = up * 0.1
        if alpha is not None:
            tensors[f"{base}.alpha"] = torch.tensor(float(alpha))
    return tensors
