"""Full-size (meta-device) LDM layouts: our key maps against the real models and diffusers' own converter."""
from __future__ import annotations

import json

import pytest
import torch
from diffusers.loaders import single_file_utils as sfu

from tests.helpers.components import build_models, component_state_dicts
from webui.models.architectures import ARCHITECTURE_NAMES, CONFIG_DIR, load_architecture
from webui.models.ldm_convert import diffusers_to_ldm, ldm_to_diffusers


@pytest.fixture(scope="module")
def full_size():
    """Per architecture: (arch, built meta models, their state dicts, our LDM dict); built lazily, once."""
    cache = {}

    def get(name):
        if name not in cache:
            arch = load_architecture(name)
            models = build_models(arch, meta=True)
            components = component_state_dicts(models)
            cache[name] = (arch, models, components, diffusers_to_ldm(components, arch))
        return cache[name]

    return get


def _shapes(state_dict):
    return {key: tuple(tensor.shape) for key, tensor in state_dict.items()}


def test_shipped_configs_are_complete_and_named():
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.json")) == sorted(ARCHITECTURE_NAMES)
    for name in ARCHITECTURE_NAMES:
        arch = load_architecture(name)
        raw = json.loads((CONFIG_DIR / f"{name}.json").read_text())
        assert arch.name == raw["name"] == name
        assert arch.inpainting == name.endswith("-inpaint") == (arch.unet["in_channels"] == 9)
        assert arch.prediction_type == ("v_prediction" if name == "sd2-v" else "epsilon")


def test_real_architecture_values():
    sd1, sd2, xl, ref = (load_architecture(n) for n in ("sd1", "sd2-v", "sdxl", "sdxl-refiner"))
    assert sd1.unet["block_out_channels"] == (320, 640, 1280, 1280)
    assert (sd1.unet["cross_attention_dim"], sd1.unet["attention_head_dim"]) == (768, 8)
    assert sd2.unet["attention_head_dim"] == (5, 10, 20, 20) and sd2.unet["use_linear_projection"]
    assert sd2.unet["cross_attention_dim"] == 1024
    assert sd2.text_encoders[0].config["num_hidden_layers"] == 24  # all of ViT-H kept
    assert xl.unet["addition_embed_type"] == "text_time"
    assert (xl.unet["cross_attention_dim"], xl.unet["projection_class_embeddings_input_dim"]) == (2048, 2816)
    assert [t.kind for t in xl.text_encoders] == ["clip_l", "open_clip"]
    assert xl.text_encoder("text_encoder_2").config["projection_dim"] == 1280
    assert (ref.unet["block_out_channels"][0], ref.unet["projection_class_embeddings_input_dim"]) == (384, 2560)
    assert [t.slot for t in ref.text_encoders] == ["text_encoder_2"]
    assert (sd1.vae["scaling_factor"], xl.vae["scaling_factor"]) == (0.18215, 0.13025)
    assert sd1.scheduler_config()["beta_schedule"] == "scaled_linear"


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_round_trip_key_sets_match_instantiated_models(full_size, name):
    arch, models, components, ldm = full_size(name)
    back = ldm_to_diffusers(ldm, arch)
    assert back.unexpected == [] and back.ignored == [] and back.extras == {}
    assert set(back.components) == set(models)
    for slot, model in models.items():
        assert _shapes(back.components[slot]) == _shapes(model.state_dict()), slot
    assert diffusers_to_ldm(back.components, arch).keys() == ldm.keys()


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_ldm_layout_matches_diffusers_single_file_converter(full_size, name):
    """diffusers' own LDM converter, run on our LDM dict, must land exactly on the models' keys and shapes."""
    arch, models, components, ldm = full_size(name)
    unet = sfu.convert_ldm_unet_checkpoint(ldm, arch.unet_config())
    assert _shapes(unet) == _shapes(components["unet"])
    vae = sfu.convert_ldm_vae_checkpoint(ldm, arch.vae_config())
    assert _shapes(vae) == _shapes(components["vae"])
    for spec in arch.text_encoders:
        expected = _shapes(components[spec.slot])
        if spec.kind == "clip_l":
            got = sfu.convert_ldm_clip_checkpoint(ldm)
            got = {k.removeprefix("text_model."): v for k, v in got.items() if k.startswith("text_model.")}
        else:
            got = sfu.convert_open_clip_checkpoint(models[spec.slot], ldm, prefix=spec.ldm_prefix)
            if spec.class_name == "CLIPTextModel":
                # As diffusers' loader does for transformers 5's flattened CLIPTextModel.
                got = {k.removeprefix("text_model."): v for k, v in got.items()}
                # diffusers drops ViT-H's last block for SD2 (it uses the penultimate layer); we keep all 24.
                expected = {k: v for k, v in expected.items() if not k.startswith("encoder.layers.23.")}
        assert _shapes(got) == expected, spec.slot


KNOWN_REAL_KEYS = {
    "sd1": {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
        "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
        "model.diffusion_model.output_blocks.11.0.skip_connection.weight": (320, 640, 1, 1),
        "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.input_blocks.3.0.op.weight": (320, 320, 3, 3),
        "model.diffusion_model.time_embed.0.weight": (1280, 320),
        "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
        "first_stage_model.decoder.mid.attn_1.q.weight": (512, 512, 1, 1),
        "first_stage_model.encoder.down.0.block.0.conv1.weight": (128, 128, 3, 3),
        "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight": (128, 256, 1, 1),
        "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc1.weight": (3072, 768),
    },
    "sd1-inpaint": {"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)},
    "sd2-v": {
        "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320),
        "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
        "cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight": (3072, 1024),
        "cond_stage_model.model.positional_embedding": (77, 1024),
        "cond_stage_model.model.token_embedding.weight": (49408, 1024),
        "cond_stage_model.model.ln_final.weight": (1024,),
    },
    "sdxl": {
        "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight": (640, 2048),
        "model.diffusion_model.input_blocks.7.1.transformer_blocks.9.ff.net.2.weight": (1280, 5120),
        "model.diffusion_model.middle_block.1.transformer_blocks.9.norm3.weight": (1280,),
        "model.diffusion_model.output_blocks.2.2.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.5.2.conv.weight": (640, 640, 3, 3),
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": (768,),
        "conditioner.embedders.1.model.text_projection": (1280, 1280),
        "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight": (3840, 1280),
        "conditioner.embedders.1.model.positional_embedding": (77, 1280),
    },
    "sdxl-refiner": {
        "model.diffusion_model.input_blocks.0.0.weight": (384, 4, 3, 3),
        "model.diffusion_model.label_emb.0.0.weight": (1536, 2560),
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.3.attn2.to_k.weight": (768, 1280),
        "conditioner.embedders.0.model.text_projection": (1280, 1280),
    },
}


@pytest.mark.parametrize("name", sorted(KNOWN_REAL_KEYS))
def test_known_real_checkpoint_keys_and_shapes(full_size, name):
    shapes = _shapes(full_size(name)[3])
    for key, shape in KNOWN_REAL_KEYS[name].items():
        assert shapes.get(key) == shape, key


def test_real_checkpoint_tensor_counts(full_size):
    # Weights only (no DDPM buffers, position_ids or logit_scale): 686 + 248 + 196 for SD1.5.
    assert len(full_size("sd1")[3]) == 1130
    assert len(full_size("sdxl")[3]) == 2513
    # SD2 keeps text_projection and logit_scale only as extras: 24 * 12 + 4 OpenCLIP weights here.
    assert sum(k.startswith("cond_stage_model.model.") for k in full_size("sd2")[3]) == 292


def test_sdxl_has_no_transformer_in_first_down_block(full_size):
    keys = full_size("sdxl")[3]
    assert not any(k.startswith(("model.diffusion_model.input_blocks.1.1.", "model.diffusion_model.input_blocks.2.1."))
                   for k in keys)
    assert "model.diffusion_model.input_blocks.3.0.op.weight" in keys


def test_meta_and_real_dtypes_are_kept():
    arch = load_architecture("sd1")
    ldm = {"model.diffusion_model.time_embed.0.weight": torch.ones(1280, 320, dtype=torch.float16)}
    out = ldm_to_diffusers(ldm, arch)
    assert out.components["unet"]["time_embedding.linear_1.weight"].dtype == torch.float16
