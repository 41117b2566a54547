"""Name tables: SGM block names for full-size SD1/SDXL UNets (meta device) and CLIP names in both classes."""
from __future__ import annotations

import pytest
import torch
import transformers
from diffusers import UNet2DConditionModel

from tests.networks.tiny import tiny_clip
from webui.networks import ModelNames

SDXL_UNET = dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
                 use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816)
SD1_UNET = dict(sample_size=64, cross_attention_dim=768)


def _meta_unet(config: dict) -> UNet2DConditionModel:
    with torch.device("meta"):
        return UNet2DConditionModel(**config)


@pytest.fixture(scope="module")
def sdxl_names() -> ModelNames:
    return ModelNames.from_models({"unet": _meta_unet(SDXL_UNET)})


@pytest.mark.parametrize(
    "diffusers_name, sgm",
    [
        ("conv_in", "input_blocks_0_0"),
        ("time_embedding.linear_1", "time_embed_0"),
        ("time_embedding.linear_2", "time_embed_2"),
        ("add_embedding.linear_1", "label_emb_0_0"),
        ("add_embedding.linear_2", "label_emb_0_2"),
        ("down_blocks.0.resnets.1.conv1", "input_blocks_2_0_in_layers_2"),
        ("down_blocks.0.downsamplers.0.conv", "input_blocks_3_0_op"),
        ("down_blocks.1.resnets.0.conv_shortcut", "input_blocks_4_0_skip_connection"),
        (
            "down_blocks.1.attentions.1.transformer_blocks.1.attn1.to_q",
            "input_blocks_5_1_transformer_blocks_1_attn1_to_q",
        ),
        ("down_blocks.1.downsamplers.0.conv", "input_blocks_6_0_op"),
        ("down_blocks.2.attentions.0.proj_in", "input_blocks_7_1_proj_in"),
        ("down_blocks.2.resnets.1.time_emb_proj", "input_blocks_8_0_emb_layers_1"),
        ("mid_block.resnets.0.norm1", "middle_block_0_in_layers_0"),
        (
            "mid_block.attentions.0.transformer_blocks.9.ff.net.0.proj",
            "middle_block_1_transformer_blocks_9_ff_net_0_proj",
        ),
        ("mid_block.resnets.1.conv2", "middle_block_2_out_layers_3"),
        ("up_blocks.0.resnets.2.norm2", "output_blocks_2_0_out_layers_0"),
        (
            "up_blocks.0.attentions.2.transformer_blocks.0.attn2.to_out.0",
            "output_blocks_2_1_transformer_blocks_0_attn2_to_out_0",
        ),
        ("up_blocks.0.upsamplers.0.conv", "output_blocks_2_2_conv"),
        ("up_blocks.1.attentions.0.proj_out", "output_blocks_3_1_proj_out"),
        ("up_blocks.1.upsamplers.0.conv", "output_blocks_5_2_conv"),
        ("up_blocks.2.resnets.2.conv1", "output_blocks_8_0_in_layers_2"),
        ("conv_norm_out", "out_0"),
        ("conv_out", "out_2"),
    ],
)
def test_sdxl_sgm_names_follow_the_reference_table(sdxl_names: ModelNames, diffusers_name: str, sgm: str) -> None:
    assert sdxl_names.kohya_name("unet", diffusers_name, sgm=True) == "lora_unet_" + sgm
    assert sdxl_names.kohya["lora_unet_" + sgm] == ("unet", diffusers_name)
    assert sdxl_names.kohya["lora_unet_" + diffusers_name.replace(".", "_")] == ("unet", diffusers_name)


def test_sd1_sgm_names_and_family() -> None:
    names = ModelNames.from_models({"unet": _meta_unet(SD1_UNET)})
    assert names.family == "sd1"
    expected = {
        "down_blocks.0.attentions.0.proj_in": "input_blocks_1_1_proj_in",
        "down_blocks.3.resnets.1.conv2": "input_blocks_11_0_out_layers_3",
        "up_blocks.0.upsamplers.0.conv": "output_blocks_2_1_conv",  # level without attention → index 1
        "up_blocks.1.upsamplers.0.conv": "output_blocks_5_2_conv",
        "up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k": (
            "output_blocks_11_1_transformer_blocks_0_attn2_to_k"
        ),
    }
    for diffusers_name, sgm in expected.items():
        assert names.kohya_name("unet", diffusers_name, sgm=True) == "lora_unet_" + sgm


def test_sdxl_family_from_context_width(sdxl_names: ModelNames) -> None:
    assert sdxl_names.family == "sdxl"


def test_clip_names_with_and_without_text_model_level() -> None:
    plain, projected = tiny_clip(False), tiny_clip(True)
    assert "encoder.layers.0.self_attn.q_proj" in dict(plain.named_modules())
    assert "text_model.encoder.layers.0.self_attn.q_proj" in dict(projected.named_modules())
    sd1 = ModelNames.from_models({"text_encoder": plain})
    assert sd1.kohya["lora_te_text_model_encoder_layers_0_self_attn_q_proj"] == (
        "text_encoder", "encoder.layers.0.self_attn.q_proj")
    assert sd1.dotted["text_encoder.text_model.encoder.layers.1.mlp.fc2"] == (
        "text_encoder",
        "encoder.layers.1.mlp.fc2",
    )
    xl = ModelNames.from_models({"text_encoder": plain, "text_encoder_2": projected})
    assert xl.kohya["lora_te2_text_model_encoder_layers_1_mlp_fc1"] == (
        "text_encoder_2", "text_model.encoder.layers.1.mlp.fc1")
    assert xl.kohya["lora_te1_text_model_encoder_layers_1_mlp_fc1"] == ("text_encoder", "encoder.layers.1.mlp.fc1")
    assert "lora_te_text_model_encoder_layers_1_mlp_fc1" not in xl.kohya
    assert xl.kohya_name("text_encoder_2", "text_model.encoder.layers.0.self_attn.out_proj") == (
        "lora_te2_text_model_encoder_layers_0_self_attn_out_proj")
    assert isinstance(xl.modules[("text_encoder_2", "text_model.final_layer_norm")], torch.nn.LayerNorm)
    assert transformers.__version__.startswith("5")
