"""Device and precision choice (CUDA > MPS > CPU) and the --medvram / --lowvram placement policies."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass(frozen=True)
class DeviceConfig:
    """Where each component runs and in which dtype; built once from the command-line flags."""

    device: torch.device
    dtype: torch.dtype
    vae_dtype: torch.dtype
    offload: str = "none"  # "none" | "medvram" (one component on the GPU at a time) | "lowvram" (sequential)
    vae_tiling: bool = True

    @property
    def storage_device(self) -> torch.device:
        """Where idle components wait: the GPU normally, the CPU when offloading."""
        return torch.device("cpu") if self.offload != "none" else self.device


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_config(*, device: str | None = None, no_half: bool = False, no_half_vae: bool = False,
                  medvram: bool = False, lowvram: bool = False) -> DeviceConfig:
    """fp16 on CUDA/MPS unless --no-half; fp32 on the CPU, where half precision is slower and less exact."""
    chosen = pick_device(device)
    half = chosen.type in ("cuda", "mps") and not no_half
    dtype = torch.float16 if half else torch.float32
    vae_dtype = torch.float16 if half and not no_half_vae else torch.float32
    offload = "lowvram" if lowvram else "medvram" if medvram else "none"
    if chosen.type == "cpu":
        offload = "none"  # offloading to the device it already runs on would only copy
    return DeviceConfig(chosen, dtype, vae_dtype, offload)


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
