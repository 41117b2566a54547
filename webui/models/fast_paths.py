"""GPU fast paths applied once after a load: the attention kernel, channels-last memory and torch.compile."""
from __future__ import annotations

import logging
from typing import Any

import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from webui.models.attention import InterruptibleSdpa
from webui.models.device import Attention, DeviceConfig

log = logging.getLogger(__name__)


class _SdpaWithoutMemEfficient(InterruptibleSdpa):
    """SDPA with the memory-efficient kernel switched off (flash or math only), as A1111's
    --opt-sdp-no-mem-attention: deterministic results from run to run on the same GPU."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
            return super().__call__(*args, **kwargs)


def attention_processor(kind: Attention) -> AttnProcessor | AttnProcessor2_0:
    """The one place that picks the attention processor; the SDPA kinds can be cut part-way by Interrupt."""
    if kind == Attention.CLASSIC:
        return AttnProcessor()
    if kind == Attention.SDPA_NO_MEM:
        return _SdpaWithoutMemEfficient()
    return InterruptibleSdpa()


def prepare_unet(unet: Any, config: DeviceConfig) -> Any:
    """Set the attention kernel and memory format, then compile in place when asked.

    `nn.Module.compile` keeps the same object, so the LoRA patcher's in-place merges change the very parameters
    the compiled graph reads; parameters are graph inputs (not constants), so a LoRA switch never recompiles.
    """
    _set_attention(unet, config.attention)
    if config.channels_last:
        unet.to(memory_format=torch.channels_last)
    if config.compile:
        if config.offload == "lowvram":
            # Per-layer offload hooks move weights inside the forward: dynamo would break the graph at each one.
            log.warning("--compile is ignored with --lowvram (its per-layer weight moves break the graph)")
        else:
            unet.compile(backend=config.compile_backend, dynamic=False)
    return unet


def prepare_vae(vae: Any, config: DeviceConfig) -> Any:
    """The VAE gets the same attention kernel and memory format (its decoder is conv-heavy: NHWC helps on GPUs)."""
    _set_attention(vae, config.attention)
    if config.channels_last:
        vae.to(memory_format=torch.channels_last)
    return vae


def is_compiled(module: torch.nn.Module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def _set_attention(module: torch.nn.Module, kind: Attention) -> None:
    setter = getattr(module, "set_attn_processor", None)
    if setter is not None and getattr(module, "attn_processors", None):
        setter(attention_processor(kind))
