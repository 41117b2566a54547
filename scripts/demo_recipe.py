"""The demo model's fixed recipe as data: picture sizes, training buckets, the sidecar and the UNet depths."""
from __future__ import annotations

from typing import Any

from webui.models.architectures import Architecture, architecture_from_spec, load_architecture, merge_spec

TEXT_WIDTH = 128
NATIVE_SIZE = 64
# (width, height, images, batch, share of steps): equal pixels per batch, so every step costs about the same.
BUCKETS: tuple[tuple[int, int, int, int, float], ...] = (
    (64, 64, 14000, 32, 0.6), (128, 128, 4000, 8, 0.24), (96, 128, 1600, 10, 0.08), (128, 96, 1600, 10, 0.08))
SIDECAR: dict[str, Any] = {
    "base": "sd1",
    "name": "demo-shapes",
    "unet": {"layers_per_block": 1, "attention_head_dim": 4, "cross_attention_dim": TEXT_WIDTH,
             "norm_num_groups": 8, "sample_size": NATIVE_SIZE // 4},
    "vae": {"block_out_channels": [32, 64, 64], "down_block_types": ["DownEncoderBlock2D"] * 3,
            "up_block_types": ["UpDecoderBlock2D"] * 3, "layers_per_block": 1, "norm_num_groups": 8,
            "sample_size": NATIVE_SIZE, "scaling_factor": 1.0},
    "text_encoders": [{"slot": "text_encoder", "config": {
        "hidden_size": TEXT_WIDTH, "intermediate_size": 4 * TEXT_WIDTH, "num_hidden_layers": 2,
        "num_attention_heads": 4, "projection_dim": TEXT_WIDTH, "vocab_size": 49408,
        "max_position_embeddings": 77}}],
}


# UNet depth (`--unet-levels`). 3 levels end on a 4x4 bottom at 64 px, whose inner cells never see the zero padding;
# 4 end on a 2x2 bottom where each cell touches two borders. Runs 4 and 6 tried 4: position words still did not
# place the shape.
UNET_LEVELS: dict[int, dict[str, list[Any]]] = {
    3: {"block_out_channels": [32, 64, 128],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]},
    4: {"block_out_channels": [32, 64, 128, 128],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]},
}


def architecture(sidecar: dict[str, Any]) -> Architecture:
    """The Architecture our loader will build from this sidecar (sd1 base + overrides)."""
    return architecture_from_spec(merge_spec(load_architecture("sd1"), sidecar), where="demo sidecar")
