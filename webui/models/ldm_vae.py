"""VAE key map (LDM `AutoencoderKL` <-> diffusers `AutoencoderKL`), built from the diffusers VAE config."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webui.models.ldm_keymap import CONV1X1, KeyMap, ModuleMap, Part

RESNET_PARTS = (
    Part("norm1", "norm1"),
    Part("conv1", "conv1"),
    Part("norm2", "norm2"),
    Part("conv2", "conv2"),
    Part("nin_shortcut", "conv_shortcut"),
)

# LDM's AttnBlock uses 1x1 convs for q/k/v/proj_out; diffusers' Attention uses Linear layers.
ATTENTION_PARTS = (
    Part("norm", "group_norm"),
    Part("q", "to_q", CONV1X1),
    Part("k", "to_k", CONV1X1),
    Part("v", "to_v", CONV1X1),
    Part("proj_out", "to_out.0", CONV1X1),
)


def _mid_block(side: str) -> list[ModuleMap]:
    return [
        ModuleMap(f"{side}.mid.block_1", f"{side}.mid_block.resnets.0", RESNET_PARTS),
        ModuleMap(f"{side}.mid.attn_1", f"{side}.mid_block.attentions.0", ATTENTION_PARTS),
        ModuleMap(f"{side}.mid.block_2", f"{side}.mid_block.resnets.1", RESNET_PARTS),
    ]


def vae_module_maps(config: Mapping[str, Any]) -> list[ModuleMap]:
    """Every module of the VAE in both namings, from the number of blocks and layers per block."""
    n_blocks = len(config["block_out_channels"])
    layers = int(config.get("layers_per_block", 2))
    maps = [ModuleMap("quant_conv", "quant_conv"), ModuleMap("post_quant_conv", "post_quant_conv")]
    for side in ("encoder", "decoder"):
        maps += [
            ModuleMap(f"{side}.conv_in", f"{side}.conv_in"),
            ModuleMap(f"{side}.norm_out", f"{side}.conv_norm_out"),
            ModuleMap(f"{side}.conv_out", f"{side}.conv_out"),
        ]
        maps += _mid_block(side)
    for block in range(n_blocks):
        ldm, dif = f"encoder.down.{block}", f"encoder.down_blocks.{block}"
        maps += [ModuleMap(f"{ldm}.block.{layer}", f"{dif}.resnets.{layer}", RESNET_PARTS) for layer in range(layers)]
        if block < n_blocks - 1:
            maps.append(ModuleMap(f"{ldm}.downsample.conv", f"{dif}.downsamplers.0.conv"))
    # LDM numbers the decoder's `up` list from the lowest resolution's far end: diffusers' up block i is LDM's n-1-i.
    for block in range(n_blocks):
        ldm, dif = f"decoder.up.{n_blocks - 1 - block}", f"decoder.up_blocks.{block}"
        maps += [
            ModuleMap(f"{ldm}.block.{layer}", f"{dif}.resnets.{layer}", RESNET_PARTS) for layer in range(layers + 1)
        ]
        if block < n_blocks - 1:
            maps.append(ModuleMap(f"{ldm}.upsample.conv", f"{dif}.upsamplers.0.conv"))
    return maps


def vae_keymap(config: Mapping[str, Any]) -> KeyMap:
    """The VAE's `KeyMap` (keys without the `first_stage_model.` prefix, as in a standalone `.vae` file)."""
    return KeyMap(vae_module_maps(config))
