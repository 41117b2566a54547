"""Device and precision choice (CUDA > MPS > CPU), the GPU fast-path switches, and the --medvram / --lowvram
placement policies."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import Enum
from typing import Any, ContextManager, Iterator

import torch


class Precision(str, Enum):
    """A1111's --precision, plus bf16: how the UNet and text encoders compute on a GPU."""

    AUTOCAST = "autocast"  # half-precision weights, run under torch.autocast (A1111's default)
    FULL = "full"  # fp32 weights and math (what --no-half also gives)
    HALF = "half"  # fp16 weights, no autocast
    FP16 = "fp16"  # the same as half
    BF16 = "bf16"  # bfloat16 weights under autocast: fp32's range, so no fp16 overflow


class Attention(str, Enum):
    """Which attention kernel the UNet and VAE use."""

    SDPA = "sdpa"  # torch's scaled_dot_product_attention (flash / memory-efficient kernels): the default
    SDPA_NO_MEM = "sdpa-no-mem"  # SDPA without the memory-efficient kernel (--opt-sdp-no-mem-attention)
    CLASSIC = "classic"  # plain softmax(QKᵀ)V in the model dtype (--disable-opt-split-attention)


@dataclass(frozen=True)
class DeviceConfig:
    """Where each component runs, in which dtype, and with which fast paths; built once from the flags."""

    device: torch.device
    dtype: torch.dtype
    vae_dtype: torch.dtype
    offload: str = "none"  # "none" | "medvram" (one component on the GPU at a time) | "lowvram" (sequential)
    vae_tiling: bool = True
    autocast: bool = False  # run the UNet under torch.autocast(dtype); only ever set for a GPU
    upcast_sampling: bool = False  # UNet inputs stay fp32 and autocast picks each op's precision (--upcast-sampling)
    channels_last: bool = False  # NHWC memory format for the UNet and VAE (--opt-channelslast)
    compile: bool = False  # torch.compile the UNet (--compile)
    compile_backend: Any = "inductor"  # a torch.compile backend name or callable (tests use "eager" or a counter)
    attention: Attention = Attention.SDPA
    lora_keep_backups: bool = False  # keep LoRA pristine copies after a restore (--lora-keep-backups)

    @property
    def storage_device(self) -> torch.device:
        """Where idle components wait: the GPU normally, the CPU when offloading."""
        return torch.device("cpu") if self.offload != "none" else self.device

    @property
    def unet_input_dtype(self) -> torch.dtype:
        """The dtype latents and conditioning are handed to the UNet in: fp32 with --upcast-sampling."""
        return torch.float32 if self.upcast_sampling and self.autocast else self.dtype

    def unet_autocast(self) -> ContextManager[Any]:
        """torch.autocast around a UNet call when the precision asks for it, else a no-op."""
        if not self.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_config(*, device: str | None = None, no_half: bool = False, no_half_vae: bool = False,
                  medvram: bool = False, lowvram: bool = False, precision: Precision | str = Precision.AUTOCAST,
                  upcast_sampling: bool = False, channels_last: bool = False, compile: bool = False,
                  compile_backend: Any = "inductor", attention: Attention | str = Attention.SDPA,
                  lora_keep_backups: bool = False) -> DeviceConfig:
    """fp16 on CUDA/MPS unless --no-half or --precision full; fp32 on the CPU, where half precision is slower
    and less exact (so autocast and upcasting are GPU-only)."""
    chosen = pick_device(device)
    precision = Precision(precision)
    half = chosen.type in ("cuda", "mps") and not no_half and precision != Precision.FULL
    half_dtype = torch.bfloat16 if precision == Precision.BF16 else torch.float16
    dtype = half_dtype if half else torch.float32
    vae_dtype = half_dtype if half and not no_half_vae else torch.float32
    offload = "lowvram" if lowvram else "medvram" if medvram else "none"
    if chosen.type == "cpu":
        offload = "none"  # offloading to the device it already runs on would only copy
    autocast = half and (precision in (Precision.AUTOCAST, Precision.BF16) or upcast_sampling)
    return DeviceConfig(chosen, dtype, vae_dtype, offload, autocast=autocast,
                        upcast_sampling=upcast_sampling and autocast, channels_last=channels_last, compile=compile,
                        compile_backend=compile_backend, attention=Attention(attention),
                        lora_keep_backups=lora_keep_backups)


@contextlib.contextmanager
def on_device(module: torch.nn.Module, config: DeviceConfig) -> Iterator[torch.nn.Module]:
    """Run `module` on the compute device; with --medvram/--lowvram move it back to the CPU afterwards."""
    if config.offload == "none":
        yield module
        return
    if config.offload == "lowvram":
        hooks = _attach_sequential_offload(module, config.device)
        try:
            yield module
        finally:
            for hook in hooks:
                hook.remove()
            module.to("cpu")
        return
    module.to(config.device)
    try:
        yield module
    finally:
        module.to("cpu")
        if config.device.type == "cuda":
            torch.cuda.empty_cache()


def _attach_sequential_offload(module: torch.nn.Module, device: torch.device) -> list:
    """Move each leaf-holding child to the GPU just before it runs and back to the CPU after (lowest VRAM)."""
    hooks = []
    for child in module.modules():
        if any(True for _ in child.parameters(recurse=False)):
            hooks.append(child.register_forward_pre_hook(lambda m, args: m.to(device)))
            hooks.append(child.register_forward_hook(lambda m, args, out: m.to("cpu")))
    return hooks
