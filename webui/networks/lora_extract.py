"""LoRA extraction math: pick kohya's target layers, factor each weight difference by SVD, name it as kohya does."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from webui.networks.keymap import ModelNames

# Module classes whose Linear / Conv2d children kohya's `networks.lora` trains (by class name, as kohya matches).
UNET_ATTENTION_BLOCKS = frozenset({"Transformer2DModel"})
UNET_CONV_BLOCKS = frozenset({"ResnetBlock2D", "Downsample2D", "Upsample2D"})  # only with a conv dim
TEXT_BLOCKS = frozenset({"CLIPAttention", "CLIPSdpaAttention", "CLIPMLP"})
LayerKey = tuple[str, str]  # (target model, module name), as in ModelNames.modules
OnLayer = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ExtractSettings:
    """kohya's extract_lora_from_models options: rank for linear/1x1 layers, for 3x3 convs (None: none), and limits.

    `clamp_quantile` < 1 clips factor entries beyond that quantile as kohya does (0.99 there); 1 keeps the exact
    factors. Layers whose largest absolute change is at most `min_diff` are left out.
    """

    dim: int = 32
    conv_dim: int | None = None
    clamp_quantile: float = 1.0
    min_diff: float = 0.0
    dtype: torch.dtype = torch.float32


@dataclass
class ExtractedLora:
    """The kohya state dict, which layers it covers, and which target layers were unchanged."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def kohya_targets(models: Mapping[str, torch.nn.Module], conv: bool) -> dict[LayerKey, bool]:
    """The layers kohya's `networks.lora` puts a LoRA on; the value says whether it is a 3x3 (conv-dim) layer.

    UNet: Linear and 1x1 Conv2d inside transformer blocks (and, with `conv`, every Conv2d of resnets and
    down/upsamplers); text encoders: the Linear layers of attention and MLP blocks.
    """
    found: dict[LayerKey, bool] = {}
    for target, model in models.items():
        blocks = TEXT_BLOCKS if target != "unet" else UNET_ATTENTION_BLOCKS | (UNET_CONV_BLOCKS if conv else set())
        for name, module in model.named_modules():
            if type(module).__name__ not in blocks:
                continue
            for child_name, child in module.named_modules():
                full = f"{name}.{child_name}" if child_name else name
                if isinstance(child, torch.nn.Linear):
                    found[(target, full)] = False
                elif isinstance(child, torch.nn.Conv2d):
                    found[(target, full)] = tuple(child.kernel_size) != (1, 1)
    return found


def low_rank_factors(delta: torch.Tensor, rank: int, clamp_quantile: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(up, down) with up @ down ≈ delta (flattened to 2-D), rank ≤ `rank`, singular values split evenly.

    Conv weights get kohya's shapes: down [r, in, kh, kw], up [out, r, 1, 1].
    """
    matrix = delta.float().reshape(delta.shape[0], -1)
    rank = max(1, min(rank, *matrix.shape))
    if matrix.shape[0] < matrix.shape[1]:
        # LAPACK is several times faster on tall matrices; the SVD of the transpose swaps U and V.
        v, s, uh = torch.linalg.svd(matrix.t(), full_matrices=False)
        u, vh = uh.t(), v.t()
    else:
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    root = s[:rank].sqrt()
    up, down = u[:, :rank] * root, root[:, None] * vh[:rank]
    if clamp_quantile < 1.0:
        limit = torch.quantile(torch.cat([up.flatten(), down.flatten()]).abs(), clamp_quantile)
        up, down = up.clamp(-limit, limit), down.clamp(-limit, limit)
    if delta.dim() == 4:
        return up.reshape(*up.shape, 1, 1), down.reshape(rank, *delta.shape[1:])
    return up, down


def extract_lora(base: Mapping[LayerKey, torch.Tensor], tuned: Mapping[LayerKey, torch.Tensor], names: ModelNames,
                 conv_layers: Mapping[LayerKey, bool], settings: ExtractSettings,
                 on_layer: OnLayer | None = None) -> ExtractedLora:
    """Factor `tuned - base` for every layer in both; kohya names (SGM-style block names for SDXL), alpha = rank."""
    result = ExtractedLora()
    keys = [key for key in base if key in tuned]
    for index, key in enumerate(keys):
        kohya = names.kohya_name(*key, sgm=names.family == "sdxl")
        is_3x3 = conv_layers.get(key, False)
        rank = settings.conv_dim if is_3x3 else settings.dim
        delta = tuned[key].float() - base[key].float()
        if rank and float(delta.abs().max()) > settings.min_diff:
            up, down = low_rank_factors(delta, rank, settings.clamp_quantile)
            result.tensors[f"{kohya}.lora_up.weight"] = up.to(settings.dtype).contiguous()
            result.tensors[f"{kohya}.lora_down.weight"] = down.to(settings.dtype).contiguous()
            result.tensors[f"{kohya}.alpha"] = torch.tensor(float(down.shape[0]), dtype=settings.dtype)
            result.layers.append(kohya)
        elif rank:
            result.unchanged.append(kohya)
        if on_layer is not None:
            on_layer(index + 1, len(keys), kohya)
    return result


def base_model_version(family: str, v_prediction: bool) -> str:
    """kohya's `ss_base_model_version` for a model family."""
    if family.startswith("sdxl"):
        return "sdxl_base_v1-0"
    return ("sd_v2" if family == "sd2" else "sd_v1") + ("_v" if v_prediction else "")


_MODELSPEC_ARCH = {"sd1": "stable-diffusion-v1", "sd2": "stable-diffusion-v2-512",
                   "sdxl": "stable-diffusion-xl-v1-base"}


def kohya_metadata(settings: ExtractSettings, family: str, v_prediction: bool, title: str,
                   comment: str = "") -> dict[str, str]:
    """The `ss_*` (and SAI modelspec) header keys kohya's extract_lora_from_models writes."""
    args = {"conv_dim": str(settings.conv_dim), "conv_alpha": str(float(settings.conv_dim))} if settings.conv_dim \
        else {}
    arch = _MODELSPEC_ARCH.get(family, "stable-diffusion-v1")
    if family == "sd2" and v_prediction:
        arch = "stable-diffusion-v2-768-v"
    metadata = {
        "ss_v2": str(family == "sd2"),
        "ss_base_model_version": base_model_version(family, v_prediction),
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(settings.dim),
        "ss_network_alpha": str(float(settings.dim)),
        "ss_network_args": json.dumps(args),
        "ss_output_name": title,
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{arch}/lora",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models" if family == "sdxl"
        else "diffusers",
        "modelspec.title": title,
    }
    if comment:
        metadata["ss_training_comment"] = comment
    return metadata
