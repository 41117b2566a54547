"""Bake a LoRA stack into a checkpoint: load offline, merge with LoraPatcher, save one A1111/LDM-layout file."""
from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from webui.errors import UserInputError
from webui.models.architectures import Architecture
from webui.models.checkpoint_io import SAFETENSORS_SUFFIXES, load_tensors
from webui.models.device import device_config
from webui.models.ldm_convert import EXTRA_LEAVES, diffusers_to_ldm, ldm_to_diffusers
from webui.models.loader import LoadedComponents, load_components
from webui.networks import LoraPatcher, ModelNames, read_lora

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoraArg:
    """One `--lora FILE:WEIGHT` (or FILE:TE_WEIGHT:UNET_WEIGHT) from the command line."""

    path: Path
    te_weight: float
    unet_weight: float


@dataclass
class BakeReport:
    """What a bake did: the output file, LoRAs merged, layers written, warnings, tensors saved."""

    out: Path
    applied: list[str] = field(default_factory=list)
    layers_written: int = 0
    warnings: list[str] = field(default_factory=list)
    tensors_saved: int = 0
    sidecar: Path | None = None


def _as_weight(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_lora_arg(text: str) -> LoraArg:
    """`FILE`, `FILE:W` or `FILE:TE:UNET`; weights are taken from the right so `C:\\x.safetensors:0.5` works."""
    parts = text.split(":")
    if len(parts) >= 3 and _as_weight(parts[-1]) is not None and _as_weight(parts[-2]) is not None:
        return LoraArg(Path(":".join(parts[:-2])), float(parts[-2]), float(parts[-1]))
    if len(parts) >= 2 and _as_weight(parts[-1]) is not None:
        weight = float(parts[-1])
        return LoraArg(Path(":".join(parts[:-1])), weight, weight)
    if len(parts) >= 2 and not Path(text).exists():
        raise UserInputError(f"--lora {text!r}: the weight after ':' must be a finite number (FILE:WEIGHT)")
    return LoraArg(Path(text), 1.0, 1.0)


def network_targets(components: LoadedComponents) -> dict[str, torch.nn.Module]:
    """The modules a LoRA may patch, under the names the networks layer uses (as the model manager does)."""
    targets: dict[str, torch.nn.Module] = {"unet": components.unet}
    targets.update({encoder.slot: encoder.model for encoder in components.text_encoders})
    return targets


def _sidecar(path: Path) -> Path | None:
    """The `.json`/`.yaml` next to a checkpoint that names its architecture (the loader reads the same files)."""
    for suffix in (".json", ".yaml"):
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    return None


def _extra_tensors(path: Path, arch: Architecture) -> dict[str, torch.Tensor]:
    """The file's OpenCLIP leaves (`logit_scale`, SD2's `text_projection`) that no built module holds."""
    wanted = [spec.ldm_prefix + leaf for spec in arch.text_encoders if spec.kind != "clip_l" for leaf in EXTRA_LEAVES]
    if not wanted:
        return {}
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        # Read only those few tensors, not the whole checkpoint a second time.
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            present = set(handle.keys())
            return {key: handle.get_tensor(key) for key in wanted if key in present}
    return ldm_to_diffusers(load_tensors(path), arch).extras


def _ldm_state_dict(components: LoadedComponents, extras: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    parts = {"unet": components.unet.state_dict(), "vae": components.vae.state_dict()}
    parts.update({encoder.slot: encoder.model.state_dict() for encoder in components.text_encoders})
    state = diffusers_to_ldm(parts, components.architecture)
    # A leaf that a module does hold (SDXL's projection) comes from the module; only the rest is copied verbatim.
    state.update({key: tensor for key, tensor in extras.items() if key not in state})
    return state


def bake(checkpoint: Path, loras: Sequence[LoraArg], out: Path, fp32: bool = False, overwrite: bool = False,
         progress: bool = True) -> BakeReport:
    """Merge `loras` (in order) into `checkpoint` and write `out` (.safetensors, fp16 unless `fp32`).

    Raises UserInputError (or a subclass) for anything the user can fix; the input files are never written.
    A LoRA that does not fit the checkpoint stops the bake: a file with a silently skipped LoRA would be wrong.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix.lower() != ".safetensors":
        raise UserInputError(f"--out {out.name}: the baked checkpoint is written as .safetensors only")
    if not checkpoint.is_file():
        raise UserInputError(f"--checkpoint {checkpoint}: no such file")
    if out.resolve() == checkpoint.resolve():
        raise UserInputError("--out must differ from --checkpoint (the source file is never overwritten)")
    if out.exists() and not overwrite:
        raise UserInputError(f"{out} already exists; pass --overwrite to replace it")
    if not loras:
        raise UserInputError("give at least one --lora FILE:WEIGHT")
    for lora in loras:
        if not lora.path.is_file():
            raise UserInputError(f"--lora {lora.path}: no such file")

    log.info("loading %s", checkpoint.name)
    # fp32 on the CPU: the merge is computed in fp32 and rounded once, when saving, to the output dtype.
    components = load_components(checkpoint, device_config(device="cpu"))
    family = components.architecture.family
    targets = network_targets(components)
    names = ModelNames.from_models(targets, family if family in ("sd1", "sd2", "sdxl") else None)
    stack = []
    for lora in tqdm(loras, desc="reading LoRAs", unit="file", disable=not progress):
        stack.append((read_lora(lora.path, names), lora.te_weight, lora.unet_weight))
    report = BakeReport(out=out)
    with torch.no_grad():
        applied = LoraPatcher(targets, names.family).apply(stack, strict=True)
    report.applied, report.layers_written, report.warnings = applied.applied, applied.layers_written, applied.warnings
    for warning in applied.warnings:
        log.warning("%s", warning)
    log.info("merged %s into %d layers", ", ".join(applied.applied), applied.layers_written)

    state = _ldm_state_dict(components, _extra_tensors(checkpoint, components.architecture))
    dtype = torch.float32 if fp32 else torch.float16
    saved: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key in tqdm(sorted(state), desc=f"converting to {str(dtype).removeprefix('torch.')}", unit="tensor",
                    disable=not progress):
        tensor = state.pop(key)
        tensor = (tensor.to(dtype) if tensor.is_floating_point() else tensor).contiguous()
        storage = tensor.untyped_storage()
        # safetensors wants every tensor to own its whole storage; copy only views and shared storages (fp32
        # output otherwise saves the live parameters as they are, without doubling the memory).
        if storage.data_ptr() in storages or storage.nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        saved[key] = tensor
    metadata = {"format": "pt", "baked_loras": json.dumps(
        [{"name": lora.name, "sha256": lora.sha256, "te_weight": te, "unet_weight": unet}
         for lora, te, unet in stack if lora.name in applied.applied])}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    log.info("writing %s (%d tensors)", out, len(saved))
    save_file(saved, str(partial), metadata=metadata)
    partial.replace(out)  # a crash while writing never leaves a half-written file under the final name
    report.tensors_saved = len(saved)
    sidecar = _sidecar(checkpoint)
    if sidecar is not None:
        # The sidecar says which architecture/config the file is; the baked file is the same architecture.
        report.sidecar = out.with_suffix(sidecar.suffix)
        shutil.copyfile(sidecar, report.sidecar)
    return report

