"""The trainable LoRA network with kohya `networks.lora` semantics, hooked into our loaded UNet and text encoders."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from webui.errors import UserInputError
from webui.networks.keymap import ModelNames

# Where kohya's networks.lora looks for layers (by the containing module's class name).
UNET_TARGETS = ("Transformer2DModel",)
UNET_CONV_TARGETS = ("ResnetBlock2D", "Downsample2D", "Upsample2D")
TEXT_TARGETS = ("CLIPAttention", "CLIPSdpaAttention", "CLIPFlashAttention2", "CLIPMLP")


class LoRAModule(nn.Module):
    """`org(x) + up(down(x)) * multiplier * alpha / dim`; down kaiming-uniform (a=√5), up zero, so training starts
    exactly at the base model."""

    def __init__(self, name: str, org: nn.Module, dim: int, alpha: float) -> None:
        super().__init__()
        self.lora_name = name
        self.lora_dim = dim
        if isinstance(org, nn.Conv2d):
            self.lora_down: nn.Linear | nn.Conv2d = nn.Conv2d(
                org.in_channels, dim, org.kernel_size, org.stride, org.padding, bias=False)  # type: ignore[arg-type]
            self.lora_up: nn.Linear | nn.Conv2d = nn.Conv2d(dim, org.out_channels, 1, 1, bias=False)
        elif isinstance(org, nn.Linear):
            self.lora_down = nn.Linear(org.in_features, dim, bias=False)
            self.lora_up = nn.Linear(dim, org.out_features, bias=False)
        else:
            raise TypeError(f"{name}: LoRA needs a Linear or Conv2d, not {type(org).__name__}")
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)
        alpha = dim if alpha is None or alpha == 0 else alpha
        self.scale = float(alpha) / dim
        self.alpha: torch.Tensor
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.multiplier = 1.0
        self._org = [org]  # a list, so the frozen base layer is not registered as a sub-module
        self._org_forward = org.forward

    def apply_to(self) -> None:
        self._org[0].forward = self.forward  # type: ignore[method-assign,assignment]

    def remove(self) -> None:
        self._org[0].forward = self._org_forward  # type: ignore[method-assign]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The base runs in fp32 like the LoRA (mixed precision goes through autocast), so no casts here.
        return self._org_forward(x) + self.lora_up(self.lora_down(x)) * (self.multiplier * self.scale)


@dataclass(frozen=True)
class NetworkShape:
    """network_dim/alpha for Linear and 1×1 layers; conv_dim/alpha (LoCon) for 3×3 convs, None = not trained."""

    dim: int
    alpha: float
    conv_dim: int | None = None
    conv_alpha: float | None = None


class LoRANetwork(nn.Module):
    """All LoRA modules of one model, keyed by their kohya names (the file's key prefixes)."""

    def __init__(self, models: Mapping[str, nn.Module], names: ModelNames, shape: NetworkShape,
                 train_unet: bool = True, train_text_encoder: bool = True) -> None:
        super().__init__()
        self.shape = shape
        sgm = names.family == "sdxl"
        unet_modules: dict[str, LoRAModule] = {}
        te_modules: dict[str, LoRAModule] = {}
        for target, model in models.items():
            is_unet = target == "unet"
            if (is_unet and not train_unet) or (not is_unet and not train_text_encoder):
                continue
            for module_name, layer, dim, alpha in _candidates(model, is_unet, shape):
                name = names.kohya_name(target, module_name, sgm=sgm)
                (unet_modules if is_unet else te_modules)[name] = LoRAModule(name, layer, dim, alpha)
        if not unet_modules and not te_modules:
            raise UserInputError("no layer of this model can take a LoRA (nothing to train)")
        self.unet_loras = nn.ModuleDict(unet_modules)
        self.text_encoder_loras = nn.ModuleDict(te_modules)

    def loras(self) -> list[LoRAModule]:
        return [*self.unet_loras.values(), *self.text_encoder_loras.values()]  # type: ignore[list-item]

    def apply_to(self) -> None:
        for lora in self.loras():
            lora.apply_to()

    def remove(self) -> None:
        for lora in self.loras():
            lora.remove()

    def set_multiplier(self, value: float) -> None:
        for lora in self.loras():
            lora.multiplier = value

    def param_groups(self, unet_lr: float, text_encoder_lr: float) -> list[dict]:
        """One optimizer group per part, each with its own lr (kohya's unet_lr / text_encoder_lr)."""
        groups = []
        for modules, lr in ((self.unet_loras, unet_lr), (self.text_encoder_loras, text_encoder_lr)):
            params = [p for p in modules.parameters()]
            if params and lr > 0:
                groups.append({"params": params, "lr": lr})
            else:
                for param in params:
                    param.requires_grad_(False)
        if not groups:
            raise UserInputError("every learning rate is 0: nothing would be trained")
        return groups

    def kohya_state_dict(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """`<kohya name>.lora_down.weight / .lora_up.weight / .alpha`, contiguous, on the CPU."""
        out: dict[str, torch.Tensor] = {}
        for lora in self.loras():
            for suffix, tensor in (("lora_down.weight", lora.lora_down.weight), ("lora_up.weight", lora.lora_up.weight),
                                   ("alpha", lora.alpha)):
                value = tensor.detach().to("cpu")
                out[f"{lora.lora_name}.{suffix}"] = (value.to(dtype) if dtype is not None else value).contiguous()
        return out

    def load_kohya_state_dict(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        """Continue from a LoRA file (`--network_weights`); keys of another model family are a clear error."""
        own = self.kohya_state_dict()
        missing_in_model = [k for k in state if k not in own]
        matched = [k for k in state if k in own]
        if not matched:
            example = next(iter(state), "(empty)")
            raise UserInputError(f"network_weights {source} does not fit this model: none of its keys (e.g. "
                                 f"{example}) name a layer here; it was trained for another model family")
        for key in matched:
            if tuple(state[key].shape) != tuple(own[key].shape):
                raise UserInputError(f"network_weights {source}: {key} has shape {tuple(state[key].shape)}, this "
                                     f"model needs {tuple(own[key].shape)} (another family, or another network_dim)")
        if missing_in_model:
            raise UserInputError(f"network_weights {source}: {len(missing_in_model)} keys name no layer of this "
                                 f"model (e.g. {missing_in_model[0]}); it was trained for another model family")
        by_name = {lora.lora_name: lora for lora in self.loras()}
        with torch.no_grad():
            for key in matched:
                name, _, suffix = key.partition(".")
                lora = by_name[name]
                target = {"lora_down.weight": lora.lora_down.weight, "lora_up.weight": lora.lora_up.weight,
                          "alpha": lora.alpha}[suffix]
                target.copy_(state[key].to(target.dtype))
                if suffix == "alpha":
                    lora.scale = float(state[key]) / lora.lora_dim


def _candidates(model: nn.Module, is_unet: bool, shape: NetworkShape):
    """(module name, layer, dim, alpha) for every layer kohya's networks.lora trains in `model`."""
    containers = UNET_TARGETS + (UNET_CONV_TARGETS if shape.conv_dim else ()) if is_unet else TEXT_TARGETS
    seen: set[str] = set()
    for parent_name, parent in model.named_modules():
        if type(parent).__name__ not in containers:
            continue
        for child_name, child in parent.named_modules():
            full = f"{parent_name}.{child_name}" if child_name else parent_name
            if full in seen or not child_name:
                continue
            if isinstance(child, nn.Linear):
                seen.add(full)
                yield full, child, shape.dim, shape.alpha
            elif isinstance(child, nn.Conv2d):
                if child.kernel_size == (1, 1):
                    seen.add(full)
                    yield full, child, shape.dim, shape.alpha
                elif shape.conv_dim:
                    seen.add(full)
                    yield full, child, shape.conv_dim, shape.conv_alpha or 1.0
