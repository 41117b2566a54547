"""The one decision of which model family (sd1/sd2/sdxl) a LoRA file was trained for, from tensor shapes first."""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from webui.networks.keymap import FAMILY_BY_CONTEXT_WIDTH

# The tensor whose second dimension is a layer's input width, per LoRA/LyCORIS spelling.
_DOWN_SUFFIXES = ("lora_down.weight", "lora_A.weight", "lora.down.weight", "lora_linear_layer.down.weight",
                  "down.weight", "hada_w1_b")
# Cross-attention key/value layers read the text encoder's output: their input width names the family.
_CROSS_KV = re.compile(r"attn2[._](to_[kv]|processor[._]to_[kv]_lora)")
_SINGLE_TE_QUERY = re.compile(r"^lora_te_text_model_encoder_layers_\d+_self_attn_q_proj\.")
TE_FAMILY_BY_WIDTH = {768: "sd1", 1024: "sd2"}
# LDM block names: attention at full resolution (input blocks 1/2) exists in SD1/SD2 only, never in SDXL;
# a second transformer in one block exists in SDXL only.
_SD1_STYLE = re.compile(r"lora_unet_input_blocks_[12]_1_")
_SDXL_STYLE = re.compile(r"transformer_blocks[._][1-9]")
_SDXL_TEXT_PREFIXES = ("lora_te1_", "lora_te2_", "text_encoder_2.", "base_model.model.text_encoder_2.")


def _input_width(key: str, shape: Sequence[int]) -> int | None:
    if len(shape) >= 2 and key.endswith(_DOWN_SUFFIXES):
        return int(shape[1])
    return None


def _metadata_family(metadata: Mapping[str, str]) -> str:
    base_version = metadata.get("ss_base_model_version", "")
    architecture = metadata.get("modelspec.architecture", "")
    if base_version.startswith("sdxl") or architecture.startswith("stable-diffusion-xl"):
        return "sdxl"
    if (metadata.get("ss_v2") == "True" or base_version.startswith("sd_v2")
            or architecture.startswith("stable-diffusion-v2")):
        return "sd2"
    if any(k.startswith("ss_") for k in metadata) or architecture.startswith("stable-diffusion-v1"):
        return "sd1"
    return "unknown"


def lora_family(shapes: Mapping[str, Sequence[int]], metadata: Mapping[str, str]) -> str:
    """sd1 / sd2 / sdxl / unknown for a LoRA given its raw key -> tensor shape map and its header metadata.

    Shapes decide (cross-attention key/value input width, else the single text encoder's width); key style breaks
    ties (SDXL's second text encoder or deep transformer blocks; SD1/SD2's full-resolution attention in LDM names);
    metadata is only a hint for files whose tensors say nothing. Cards and the patcher both call this.
    """
    text_width = None
    for key, shape in shapes.items():
        width = _input_width(key, shape)
        if width is None:
            continue
        if _CROSS_KV.search(key) and width in FAMILY_BY_CONTEXT_WIDTH:
            return FAMILY_BY_CONTEXT_WIDTH[width]
        if text_width is None and _SINGLE_TE_QUERY.match(key):
            text_width = width
    if text_width in TE_FAMILY_BY_WIDTH:
        return TE_FAMILY_BY_WIDTH[text_width]
    hinted = _metadata_family(metadata)
    if any(key.startswith(_SDXL_TEXT_PREFIXES) or _SDXL_STYLE.search(key) for key in shapes):
        return "sdxl"
    if any(_SD1_STYLE.match(key) for key in shapes):
        return "sd2" if hinted == "sd2" else "sd1"
    return hinted
