"""Name tables from our diffusers/transformers modules to kohya (diffusers- and SGM-style) and dotted LoRA names."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import torch

TEXT_TARGETS = ("text_encoder", "text_encoder_2")
# kohya prefixes per target; SD1/SD2 files use `lora_te_`, SDXL files `lora_te1_`/`lora_te2_`.
KOHYA_TE_PREFIXES = MappingProxyType(
    {"lora_te_": "text_encoder", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2"})
_PATCHABLE = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.LayerNorm, torch.nn.GroupNorm)
# LDM ResBlock sub-layer names for diffusers ResnetBlock2D sub-layers.
_RESNET_SGM = MappingProxyType({"norm1": "in_layers_0", "conv1": "in_layers_2", "time_emb_proj": "emb_layers_1",
               "norm2": "out_layers_0", "conv2": "out_layers_3", "conv_shortcut": "skip_connection"})
_TOP_SGM = MappingProxyType({"conv_in": "input_blocks_0_0", "time_embedding.linear_1": "time_embed_0",
            "time_embedding.linear_2": "time_embed_2", "add_embedding.linear_1": "label_emb_0_0",
            "add_embedding.linear_2": "label_emb_0_2", "conv_norm_out": "out_0", "conv_out": "out_2"})
FAMILY_BY_CONTEXT_WIDTH = MappingProxyType({768: "sd1", 1024: "sd2", 2048: "sdxl"})


def text_module_path(module_name: str) -> str:
    """The CLIP module path without the optional `text_model.` level (transformers 5 CLIPTextModel has none,
    CLIPTextModelWithProjection has one), so both classes share one key space."""
    return module_name[len("text_model."):] if module_name.startswith("text_model.") else module_name


def _sgm_block_prefixes(unet: torch.nn.Module) -> dict[str, tuple[str, bool]]:
    """diffusers block path → (SGM block name, is_resnet), derived from the UNet's own structure.

    Each down level contributes one SGM input block per layer (resnet `_0`, attention `_1`) plus one for its
    downsampler (`_0_op`); each up level one output block per layer, with the upsampler in the level's last block
    at index 2 when the level has attention, else 1.
    """
    table: dict[str, tuple[str, bool]] = {}
    index = 1
    for level, block in enumerate(getattr(unet, "down_blocks", [])):
        attentions = getattr(block, "attentions", None)
        for layer in range(len(block.resnets)):
            table[f"down_blocks.{level}.resnets.{layer}"] = (f"input_blocks_{index}_0", True)
            if attentions is not None and layer < len(attentions):
                table[f"down_blocks.{level}.attentions.{layer}"] = (f"input_blocks_{index}_1", False)
            index += 1
        if getattr(block, "downsamplers", None):
            table[f"down_blocks.{level}.downsamplers.0.conv"] = (f"input_blocks_{index}_0_op", False)
            index += 1
    index = 0
    for level, block in enumerate(getattr(unet, "up_blocks", [])):
        attentions = getattr(block, "attentions", None)
        count = len(block.resnets)
        for layer in range(count):
            table[f"up_blocks.{level}.resnets.{layer}"] = (f"output_blocks_{index}_0", True)
            if attentions is not None and layer < len(attentions):
                table[f"up_blocks.{level}.attentions.{layer}"] = (f"output_blocks_{index}_1", False)
            if layer == count - 1 and getattr(block, "upsamplers", None):
                slot = 2 if attentions is not None else 1
                table[f"up_blocks.{level}.upsamplers.0.conv"] = (f"output_blocks_{index}_{slot}_conv", False)
            index += 1
    mid = getattr(unet, "mid_block", None)
    if mid is not None:
        table["mid_block.resnets.0"] = ("middle_block_0", True)
        if getattr(mid, "attentions", None):
            table["mid_block.attentions.0"] = ("middle_block_1", False)
            table["mid_block.resnets.1"] = ("middle_block_2", True)
        elif len(mid.resnets) > 1:
            table["mid_block.resnets.1"] = ("middle_block_1", True)
    return table


def unet_sgm_name(module_name: str, prefixes: Mapping[str, tuple[str, bool]]) -> str | None:
    """The LDM/SGM underscore name of a diffusers UNet module (without `lora_unet_`), or None when it has none."""
    if module_name in _TOP_SGM:
        return _TOP_SGM[module_name]
    for block in sorted(prefixes, key=len, reverse=True):
        if module_name == block or module_name.startswith(block + "."):
            sgm, is_resnet = prefixes[block]
            rest = module_name[len(block) + 1:]
            if is_resnet and rest:
                head, _, tail = rest.partition(".")
                rest = _RESNET_SGM.get(head, head) + ("." + tail if tail else "")
            return sgm + ("_" + rest.replace(".", "_") if rest else "")
    return None


@dataclass(frozen=True)
class ModelNames:
    """Every patchable layer of the loaded models under all the names LoRA files use for it.

    Built from `named_modules()`, so tiny test models and full-size models map the same way.
    """

    modules: Mapping[tuple[str, str], torch.nn.Module]
    kohya: Mapping[str, tuple[str, str]]
    dotted: Mapping[str, tuple[str, str]]
    family: str = "unknown"
    sgm_names: Mapping[tuple[str, str], str] = field(default_factory=dict)
    fingerprint: str = ""

    @classmethod
    def from_models(cls, models: Mapping[str, torch.nn.Module], family: str | None = None) -> "ModelNames":
        """Index `models` ("unet", "text_encoder", "text_encoder_2"); `family` overrides the shape-based guess."""
        modules: dict[tuple[str, str], torch.nn.Module] = {}
        kohya: dict[str, tuple[str, str]] = {}
        dotted: dict[str, tuple[str, str]] = {}
        sgm_names: dict[tuple[str, str], str] = {}
        sdxl_te = "text_encoder_2" in models
        for target, model in models.items():
            prefixes = _sgm_block_prefixes(model) if target == "unet" else {}
            for name, module in model.named_modules():
                if not isinstance(module, _PATCHABLE):
                    continue
                key = (target, name)
                modules[key] = module
                if target == "unet":
                    kohya["lora_unet_" + name.replace(".", "_")] = key
                    dotted["unet." + name] = key
                    sgm = unet_sgm_name(name, prefixes)
                    if sgm is not None:
                        kohya["lora_unet_" + sgm] = key
                        sgm_names[key] = sgm
                elif target in TEXT_TARGETS:
                    path = text_module_path(name)
                    flat = "text_model_" + path.replace(".", "_")
                    for prefix, prefix_target in KOHYA_TE_PREFIXES.items():
                        # `lora_te_` addresses the single SD1/SD2 encoder; `lora_te1_`/`lora_te2_` the SDXL pair.
                        if prefix_target == target and (prefix != "lora_te_" or not sdxl_te):
                            kohya[prefix + flat] = key
                    dotted[f"{target}.text_model.{path}"] = key
                    dotted[f"{target}.{path}"] = key
        digest = hashlib.sha1("\n".join(sorted(f"{t}:{n}" for t, n in modules)).encode()).hexdigest()[:16]
        return cls(modules=modules, kohya=kohya, dotted=dotted, family=family or guess_model_family(models),
                   sgm_names=sgm_names, fingerprint=digest)

    def kohya_name(self, target: str, module_name: str, sgm: bool = False) -> str:
        """The kohya key base (no suffix) a trainer writes for one of our modules; `sgm` picks SDXL-style blocks."""
        key = (target, module_name)
        if key not in self.modules:
            raise KeyError(f"{target}.{module_name} is not a patchable layer")
        if target == "unet":
            if sgm and key in self.sgm_names:
                return "lora_unet_" + self.sgm_names[key]
            return "lora_unet_" + module_name.replace(".", "_")
        if "text_encoder_2" in {t for t, _ in self.modules}:
            prefix = "lora_te1_" if target == "text_encoder" else "lora_te2_"
        else:
            prefix = "lora_te_"
        return prefix + "text_model_" + text_module_path(module_name).replace(".", "_")


def guess_model_family(models: Mapping[str, torch.nn.Module]) -> str:
    """sd1 / sd2 / sdxl from the UNet's cross-attention width (768/1024/2048), or sdxl from its structure."""
    unet = models.get("unet")
    config = getattr(unet, "config", None)
    width = getattr(config, "cross_attention_dim", None) if config is not None else None
    if isinstance(width, int) and width in FAMILY_BY_CONTEXT_WIDTH:
        return FAMILY_BY_CONTEXT_WIDTH[width]
    if "text_encoder_2" in models or getattr(config, "addition_embed_type", None) == "text_time":
        return "sdxl"
    return "unknown"
