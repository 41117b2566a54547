"""One family decision for LoRA cards and the patcher: SD1 LoRAs in LDM block names apply to an SD1 model."""
from __future__ import annotations

import re

import numpy as np
import torch
from safetensors.torch import save_file

from tests.helpers.demo_fixtures import demo_runtime_fixture, one_thread  # noqa: F401  (autouse fixture)
from tests.networks.tiny import kohya_lora, lora_targets
from webui.networks.family import lora_family
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img

runtime = demo_runtime_fixture("lora_family")


def _generate(runtime, prompt: str):
    request = make_request(Txt2ImgRequest, dict(prompt=prompt, steps=2, sampler_name="Euler", width=64, height=64,
                                                seed=3, save_images=False))
    result = txt2img(request, runtime)
    return np.asarray(result.images[0]).astype(int), result


def test_sd1_lora_with_ldm_block_names_gets_one_family_on_card_and_at_generate(runtime):
    names = runtime.models.load().lora_names()
    tensors = kohya_lora(names, lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d)), rank=4, alpha=4.0,
                         seed=7, sgm=True)
    # LDM block names (input_blocks_N_1_proj_in ...), whichever level holds the demo model's first attention.
    assert any(re.match(r"lora_unet_input_blocks_\d+_1_proj_in\.", key) for key in tensors)
    folder = runtime.loras.roots[0]
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v * 5 for k, v in tensors.items()}, str(folder / "ldm_style.safetensors"),
              metadata={"ss_base_model_version": "sd_v1", "ss_network_dim": "4"})
    runtime.loras.scan()
    assert runtime.loras.info("ldm_style").family == "sd1"
    plain, _ = _generate(runtime, "a red circle")
    image, result = _generate(runtime, "a red circle <lora:ldm_style:1>")
    assert result.warnings == []
    assert 'Lora hashes: "ldm_style: ' in result.infotexts[0]
    assert np.abs(image - plain).mean() > 0.5


def test_shapes_decide_before_key_style_and_metadata():
    ldm_sd1 = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k.lora_down.weight"
    assert lora_family({ldm_sd1: (4, 768)}, {"ss_base_model_version": "sdxl_base_v1-0"}) == "sd1"
    assert lora_family({ldm_sd1: (4, 2048)}, {}) == "sdxl"
    # Tie-breakers when the widths say nothing (tiny models): key style, then metadata.
    assert lora_family({"lora_unet_input_blocks_1_1_proj_in.lora_down.weight": (4, 32)}, {}) == "sd1"
    assert lora_family({"lora_unet_input_blocks_2_1_proj_in.lora_down.weight": (4, 32)},
                       {"ss_v2": "True"}) == "sd2"
    assert lora_family({"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 32)}, {}) == "sdxl"
    assert lora_family({"lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q.lora_down.weight": (4, 32)},
                       {}) == "sdxl"
    assert lora_family({"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1024)},
                       {}) == "sd2"
    assert lora_family({"lora_unet_input_blocks_4_1_proj_in.lora_down.weight": (4, 32)},
                       {"ss_base_model_version": "sdxl_base_v1-0"}) == "sdxl"
