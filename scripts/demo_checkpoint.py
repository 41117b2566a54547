"""The demo model's checkpoints: training modules built from a recipe, saved as A1111 single files, loaded back."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import transformers
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file

from scripts.demo_recipe import NATIVE_SIZE
from scripts.demo_vocab import DemoVocab
from webui.models.architectures import Architecture
from webui.models.device import DeviceConfig
from webui.models.ldm_convert import diffusers_to_ldm
from webui.models.loader import load_components


def build_models(arch: Architecture, seed: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    spec = arch.text_encoders[0]
    return {"unet": UNet2DConditionModel.from_config(arch.unet_config()),
            "vae": AutoencoderKL.from_config(arch.vae_config()),
            "text_encoder": transformers.CLIPTextModel(transformers.CLIPTextConfig(**spec.config_dict()))}

def save_checkpoint(models: dict[str, torch.nn.Module], vocab: DemoVocab, arch: Architecture,
                    sidecar: dict[str, Any], path: Path) -> None:
    """A1111 single-file layout (fp16) plus the same-name JSON sidecar, each written whole (temp + rename)."""
    components = {"unet": models["unet"].state_dict(), "vae": models["vae"].state_dict(),
                  "text_encoder": vocab.full_state_dict(models["text_encoder"])}
    state = diffusers_to_ldm(components, arch)
    write_checkpoint(state, sidecar, path)

def write_checkpoint(state: dict[str, torch.Tensor], sidecar: dict[str, Any], path: Path) -> None:
    """Tensors in fp16 and the sidecar, each written whole (temp + rename), the sidecar first."""
    tensors = {k: v.detach().clone().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt", "modelspec.title": "demo-shapes",
                                           "modelspec.resolution": f"{NATIVE_SIZE}x{NATIVE_SIZE}"})
    side_tmp = path.with_suffix(".json.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    side_tmp.replace(path.with_suffix(".json"))
    tmp.replace(path)

def load_trained(path: Path) -> tuple[dict[str, Any], Architecture, dict[str, torch.nn.Module]]:
    """A checkpoint this script wrote, as its sidecar and float32 modules (for --init-from), by the app's loader."""
    sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    components = load_components(path, DeviceConfig(torch.device("cpu"), torch.float32, torch.float32))
    models: dict[str, torch.nn.Module] = {"unet": components.unet.requires_grad_(True), "vae": components.vae,
                                          "text_encoder": components.text_encoders[0].model.requires_grad_(True)}
    return sidecar, components.architecture, models
