"""Merged weights that overflowed to NaN/Inf, and which LoRAs of the stack made them so."""
from __future__ import annotations

from typing import Iterable, Mapping, Protocol

import torch
from torch import Tensor

from webui.networks.layers import LayerPatch
from webui.networks.lora_file import LoraFile

LayerKey = tuple[str, str]
LayerEntries = list[tuple[LoraFile, LayerPatch, float]]


class _Weighted(Protocol):
    weight: torch.nn.Parameter
    bias: torch.nn.Parameter | None


def _finite(tensor: Tensor | None) -> bool:
    # One reduction, summed in fp32 so that a half-precision weight's real values cannot overflow the sum itself;
    # NaN and ±Inf anywhere make the sum non-finite.
    return tensor is None or bool(torch.isfinite(tensor.detach().sum(dtype=torch.float32)))


def low_rank_cannot_overflow(up: Tensor, down: Tensor, alpha: float, dtype: torch.dtype) -> bool:
    """True when W₀ + α·up·down provably stays finite in `dtype`, so the merged weight needs no full read.

    |α·Σᵣ upᵢᵣ·downᵣⱼ| ≤ |α|·Σᵣ maxᵢ|upᵢᵣ|·maxⱼ|downᵣⱼ|: below half the dtype's largest value (and with pristine
    weights below the other half, true of every real checkpoint) no element can overflow. This reads only the small
    factors; when it fails, the merged weight itself is checked.
    """
    bound = abs(alpha) * float((up.abs().amax(dim=0) * down.abs().amax(dim=1)).sum(dtype=torch.float64))
    return bound < torch.finfo(dtype).max / 2


def nonfinite_layers(modules: Mapping[LayerKey, _Weighted], keys: Iterable[LayerKey]) -> list[LayerKey]:
    """The layers among `keys` whose live weight or bias holds a NaN or an Inf."""
    return [key for key in keys
            if not (_finite(modules[key].weight.data) and _finite(getattr(modules[key], "bias", None)))]


def _finite_alone(patch: LayerPatch, multiplier: float, pristine: Tensor, dtype: torch.dtype) -> bool:
    """Whether this one patch, merged alone into the pristine weight and rounded to the model's dtype, stays finite."""
    base = pristine.to(torch.float32)
    delta, bias_delta = patch.delta(base, multiplier)
    return _finite((base + delta.reshape(base.shape)).to(dtype)) and _finite(bias_delta)


def overflowing_loras(broken: Iterable[LayerKey], wanted: Mapping[LayerKey, LayerEntries],
                      pristine: Mapping[LayerKey, Tensor], dtypes: Mapping[LayerKey, torch.dtype]) -> dict[str, str]:
    """LoRA name → why it is skipped, for every LoRA to blame for a broken layer.

    A layer one LoRA patches is that LoRA's fault. Where several share it, the ones that overflow on their own are
    blamed; when none does (only their sum overflows) all of them are.
    """
    blamed: dict[str, list[str]] = {}
    for key in broken:
        entries = wanted.get(key, [])
        guilty = [lora for lora, patch, multiplier in entries
                  if len(entries) == 1 or not _finite_alone(patch, multiplier, pristine[key], dtypes[key])]
        for lora in guilty or [lora for lora, _, _ in entries]:
            blamed.setdefault(lora.name, []).append(f"{key[0]}.{key[1]}")
    return {name: (f"merging it gave NaN/Inf weights in {len(layers)} layer(s) (e.g. {layers[0]}), which would "
                   f"give black pictures; those weights were restored")
            for name, layers in blamed.items()}
