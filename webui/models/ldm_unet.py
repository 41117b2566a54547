"""UNet key map (LDM `openaimodel.UNetModel` <-> diffusers `UNet2DConditionModel`), built from the diffusers config."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webui.models.ldm_keymap import KeyMap, ModuleMap, Part

# LDM's ResBlock keeps its layers in Sequentials; the indices skip the activation/dropout entries.
RESNET_PARTS = (
    Part("in_layers.0", "norm1"),
    Part("in_layers.2", "conv1"),
    Part("emb_layers.1", "time_emb_proj"),
    Part("out_layers.0", "norm2"),
    Part("out_layers.3", "conv2"),
    Part("skip_connection", "conv_shortcut"),
)

# Embedding MLPs: LDM Sequential(Linear, SiLU, Linear) vs diffusers' named linear_1/linear_2.
_MLP = (("0", "linear_1"), ("2", "linear_2"))


def _per_block(value: Any, count: int) -> list[int]:
    """diffusers accepts an int or a per-down-block list for transformer depth; normalise to a list."""
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)] * count


def _has_attention(block_type: str) -> bool:
    return "CrossAttn" in block_type


def unet_module_maps(config: Mapping[str, Any]) -> list[ModuleMap]:
    """Every module of the UNet, in LDM and diffusers naming, derived from block counts and block types."""
    down_types = list(config["down_block_types"])
    up_types = list(config["up_block_types"])
    n_blocks = len(down_types)
    layers = int(config.get("layers_per_block", 2))
    mid_type = config.get("mid_block_type", "UNetMidBlock2DCrossAttn")

    maps = [
        ModuleMap("input_blocks.0.0", "conv_in"),
        ModuleMap("out.0", "conv_norm_out"),
        ModuleMap("out.2", "conv_out"),
    ]
    maps += [ModuleMap(f"time_embed.{ldm}", f"time_embedding.{dif}") for ldm, dif in _MLP]
    # SDXL's pooled-text + size conditioning and the older class embedding share LDM's `label_emb.0`.
    if config.get("addition_embed_type") == "text_time":
        maps += [ModuleMap(f"label_emb.0.{ldm}", f"add_embedding.{dif}") for ldm, dif in _MLP]
    elif config.get("class_embed_type") in ("projection", "timestep"):
        maps += [ModuleMap(f"label_emb.0.{ldm}", f"class_embedding.{dif}") for ldm, dif in _MLP]

    # Down path: LDM numbers every resnet(+attention) pair and every downsampler as one flat input block.
    index = 1
    for block, block_type in enumerate(down_types):
        for layer in range(layers):
            maps.append(ModuleMap(f"input_blocks.{index}.0", f"down_blocks.{block}.resnets.{layer}", RESNET_PARTS))
            if _has_attention(block_type):
                maps.append(ModuleMap(f"input_blocks.{index}.1", f"down_blocks.{block}.attentions.{layer}"))
            index += 1
        if block < n_blocks - 1:
            maps.append(ModuleMap(f"input_blocks.{index}.0.op", f"down_blocks.{block}.downsamplers.0.conv"))
            index += 1

    if mid_type == "UNetMidBlock2DCrossAttn":
        maps += [
            ModuleMap("middle_block.0", "mid_block.resnets.0", RESNET_PARTS),
            ModuleMap("middle_block.1", "mid_block.attentions.0"),
            ModuleMap("middle_block.2", "mid_block.resnets.1", RESNET_PARTS),
        ]
    elif mid_type is not None:
        raise ValueError(f"unsupported UNet mid block type for the LDM layout: {mid_type}")

    # Up path: one more resnet per block than the down path (it consumes the downsampler's skip too);
    # the upsampler sits after the attention in the block's last entry.
    index = 0
    for block, block_type in enumerate(up_types):
        for layer in range(layers + 1):
            maps.append(ModuleMap(f"output_blocks.{index}.0", f"up_blocks.{block}.resnets.{layer}", RESNET_PARTS))
            slot = 1
            if _has_attention(block_type):
                maps.append(ModuleMap(f"output_blocks.{index}.1", f"up_blocks.{block}.attentions.{layer}"))
                slot = 2
            if layer == layers and block < n_blocks - 1:
                maps.append(ModuleMap(f"output_blocks.{index}.{slot}.conv", f"up_blocks.{block}.upsamplers.0.conv"))
            index += 1
    return maps


def unet_keymap(config: Mapping[str, Any]) -> KeyMap:
    """The UNet's `KeyMap` (keys without the `model.diffusion_model.` prefix)."""
    return KeyMap(unet_module_maps(config))


def expected_transformer_depths(config: Mapping[str, Any]) -> dict[str, int]:
    """LDM attention-module prefix -> number of transformer blocks in it, for checking a file's structure."""
    depths = _per_block(config.get("transformer_layers_per_block", 1), len(config["down_block_types"]))
    # diffusers mirrors the per-block depths on the up path unless a per-layer table overrides them.
    reverse = config.get("reverse_transformer_layers_per_block")
    out: dict[str, int] = {}
    for module in unet_module_maps(config):
        path = module.diffusers.split(".")
        if "attentions" not in path:
            continue
        if path[0] == "down_blocks":
            out[module.ldm] = depths[int(path[1])]
        elif path[0] == "up_blocks":
            block, layer = int(path[1]), int(path[3])
            out[module.ldm] = int(reverse[block][layer]) if reverse else depths[len(depths) - 1 - block]
        else:
            out[module.ldm] = depths[-1]
    return out


def input_block_count(config: Mapping[str, Any]) -> int:
    """How many `input_blocks.N` entries the LDM UNet has: conv_in, every resnet, every downsampler."""
    n_blocks = len(config["down_block_types"])
    return 1 + n_blocks * int(config.get("layers_per_block", 2)) + (n_blocks - 1)
