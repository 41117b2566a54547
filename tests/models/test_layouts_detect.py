"""Architecture detection from names + shapes, and JSON / A1111 YAML sidecars."""
from __future__ import annotations

import json
import textwrap

import pytest

from tests.helpers.components import build_models, component_state_dicts
from webui.errors import ModelFileError
from webui.models.architectures import (
    ARCHITECTURE_NAMES,
    UnsupportedModelError,
    architecture_from_sidecar,
    detect_architecture,
    load_architecture,
)
from webui.models.ldm_convert import diffusers_to_ldm

# SD2 weights cannot tell epsilon from v: a bare SD2 checkpoint is taken as 768-v.
EXPECTED = {name: ("sd2-v" if name == "sd2" else name) for name in ARCHITECTURE_NAMES}


@pytest.fixture(scope="module")
def ldm_shapes():
    cache = {}

    def get(name):
        if name not in cache:
            arch = load_architecture(name)
            ldm = diffusers_to_ldm(component_state_dicts(build_models(arch, meta=True)), arch)
            cache[name] = {k: tuple(v.shape) for k, v in ldm.items()}
        return dict(cache[name])

    return get


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_detects_every_full_size_architecture(ldm_shapes, name):
    assert detect_architecture(ldm_shapes(name)).name == EXPECTED[name]


def test_detection_ignores_non_weight_keys(ldm_shapes):
    shapes = ldm_shapes("sdxl")
    shapes.update({"alphas_cumprod": (1000,), "model_ema.decay": (), "denoiser.sigmas": (1000,),
                   "conditioner.embedders.1.model.logit_scale": (),
                   "conditioner.embedders.0.transformer.text_model.embeddings.position_ids": (1, 77)})
    assert detect_architecture(shapes).name == "sdxl"


def test_legacy_sd1_clip_layout_is_detected(ldm_shapes):
    shapes = {k.replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."): v
              for k, v in ldm_shapes("sd1").items()}
    assert detect_architecture(shapes).name == "sd1"


def test_unet_only_file_is_detected(ldm_shapes):
    shapes = {k: v for k, v in ldm_shapes("sd1").items() if k.startswith("model.diffusion_model.")}
    assert detect_architecture(shapes).name == "sd1"


def test_error_is_a_value_error_naming_what_was_found(ldm_shapes):
    vae_only = {k: v for k, v in ldm_shapes("sd1").items() if k.startswith("first_stage_model.")}
    with pytest.raises(UnsupportedModelError, match=r"no LDM UNet.*first_stage_model\.encoder") as info:
        detect_architecture(vae_only)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ModelFileError)
    with pytest.raises(UnsupportedModelError, match="no LDM UNet"):
        detect_architecture({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)})


def test_pix2pix_channels_are_rejected(ldm_shapes):
    shapes = ldm_shapes("sd1")
    shapes["model.diffusion_model.input_blocks.0.0.weight"] = (320, 8, 3, 3)
    with pytest.raises(UnsupportedModelError, match="8 UNet input channels"):
        detect_architecture(shapes)


def test_unknown_cross_attention_width_is_rejected(ldm_shapes):
    shapes = {k: ((v[0], 512) if k.endswith("attn2.to_k.weight") else v) for k, v in ldm_shapes("sd1").items()}
    with pytest.raises(UnsupportedModelError, match="cross-attention width 512"):
        detect_architecture(shapes)


def test_distilled_sdxl_layout_is_rejected(ldm_shapes):
    # Like SSD-1B: SDXL's signature, but fewer transformer blocks in the deepest level.
    shapes = {k: v for k, v in ldm_shapes("sdxl").items()
              if ".input_blocks.7.1.transformer_blocks.9." not in k}
    with pytest.raises(UnsupportedModelError, match=r"looks like sdxl.*input_blocks\.7\.1 \(9 vs 10\).*sidecar"):
        detect_architecture(shapes)


def test_text_encoder_layout_must_match_the_unet(ldm_shapes):
    shapes = {k: v for k, v in ldm_shapes("sd1").items() if not k.startswith("cond_stage_model.")}
    shapes.update({k: v for k, v in ldm_shapes("sd2").items() if k.startswith("cond_stage_model.")})
    with pytest.raises(UnsupportedModelError, match="text encoders do not match.*open_clip at cond_stage_model"):
        detect_architecture(shapes)


# ---- sidecars -------------------------------------------------------------------------------------------


def test_no_sidecar_gives_none(tmp_path):
    assert architecture_from_sidecar(tmp_path / "model.safetensors") is None


def test_json_sidecar_selects_base_and_merges_overrides(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"base": "sd2"}))
    assert architecture_from_sidecar(tmp_path / "m.safetensors") == load_architecture("sd2")
    (tmp_path / "m.json").write_text(json.dumps(
        {"base": "sd2-v", "prediction_type": "epsilon", "unet": {"upcast_attention": False},
         "vae": {"scaling_factor": 0.2},
         "text_encoders": [{"slot": "text_encoder", "config": {"num_hidden_layers": 23}}]}))
    arch = architecture_from_sidecar(tmp_path / "m.safetensors")
    assert arch.name == "sd2-v+m" and arch.prediction_type == "epsilon" and arch.family == "sd2"
    assert arch.unet["upcast_attention"] is False and arch.unet["cross_attention_dim"] == 1024
    assert arch.vae["scaling_factor"] == 0.2 and arch.vae["block_out_channels"] == (128, 256, 512, 512)
    encoder = arch.text_encoder("text_encoder")
    assert encoder.config["num_hidden_layers"] == 23 and encoder.config["hidden_size"] == 1024
    assert encoder.ldm_prefix == "cond_stage_model.model."


def test_json_sidecar_can_be_a_complete_spec(tmp_path):
    spec = load_architecture("sd1").to_spec()
    spec.update(name="demo", prediction_type="v_prediction")
    (tmp_path / "demo.json").write_text(json.dumps(spec))
    arch = architecture_from_sidecar(tmp_path / "demo.ckpt")
    assert arch.name == "demo" and arch.prediction_type == "v_prediction" and arch.family == "sd1"


def test_a1111_user_metadata_json_is_not_a_sidecar(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"description": "x", "sd version": "SD1", "vae": "a.pt"}))
    assert architecture_from_sidecar(tmp_path / "m.safetensors") is None


def test_bad_sidecar_is_a_clear_error(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"base": "sd9"}))
    with pytest.raises(UnsupportedModelError, match="unknown architecture 'sd9'"):
        architecture_from_sidecar(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text(json.dumps({"base": "sd1", "family": "flux"}))
    with pytest.raises(UnsupportedModelError, match="m.json: family 'flux'"):
        architecture_from_sidecar(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(UnsupportedModelError, match="cannot read architecture sidecar"):
        architecture_from_sidecar(tmp_path / "m.safetensors")


V2_V_YAML = """
model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    parameterization: "v"
    linear_start: 0.00085
    linear_end: 0.0120
    timesteps: 1000
    scale_factor: 0.18215
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        use_checkpoint: True
        image_size: 32
        in_channels: 4
        model_channels: 320
        num_head_channels: 64
        use_linear_in_transformer: True
        context_dim: 1024
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder
      params:
        freeze: True
        layer: "penultimate"
"""


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (V2_V_YAML, "sd2-v"),
        (V2_V_YAML.replace('parameterization: "v"', ""), "sd2"),
        (V2_V_YAML.replace('parameterization: "v"', "").replace("in_channels: 4", "in_channels: 9"), "sd2-inpaint"),
        (V2_V_YAML.replace("context_dim: 1024", "context_dim: 768").replace('parameterization: "v"', "")
         .replace("use_linear_in_transformer: True", "use_linear_in_transformer: False")
         .replace("FrozenOpenCLIPEmbedder", "FrozenCLIPEmbedder"), "sd1"),
    ],
)
def test_a1111_yaml_sidecar(tmp_path, yaml_text, expected):
    (tmp_path / "m.yaml").write_text(yaml_text)
    assert architecture_from_sidecar(tmp_path / "m.safetensors") == load_architecture(expected)


def test_yaml_v_prediction_on_sd1_overrides_the_base(tmp_path):
    text = (V2_V_YAML.replace("context_dim: 1024", "context_dim: 768")
            .replace("use_linear_in_transformer: True", "use_linear_in_transformer: False"))
    (tmp_path / "m.yml").write_text(text)
    arch = architecture_from_sidecar(tmp_path / "m.safetensors")
    assert (arch.name, arch.family, arch.prediction_type) == ("sd1+m", "sd1", "v_prediction")


SDXL_YAML = """
model:
  target: sgm.models.diffusion.DiffusionEngine
  params:
    scale_factor: 0.13025
    denoiser_config:
      target: sgm.modules.diffusionmodules.denoiser.DiscreteDenoiser
      params:
        scaling_config:
          target: sgm.modules.diffusionmodules.denoiser_scaling.EpsScaling
    network_config:
      target: sgm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        adm_in_channels: 2816
        in_channels: 4
        transformer_depth: [0, 2, 10]
        context_dim: 2048
        use_linear_in_transformer: True
    conditioner_config:
      target: sgm.modules.GeneralConditioner
      params:
        emb_models:
          - target: sgm.modules.encoders.modules.FrozenCLIPEmbedder
          - target: sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder2
          - target: sgm.modules.encoders.modules.ConcatTimestepEmbedderND
"""


def test_sgm_yaml_sidecars(tmp_path):
    (tmp_path / "xl.yaml").write_text(SDXL_YAML)
    assert architecture_from_sidecar(tmp_path / "xl.safetensors") == load_architecture("sdxl")
    refiner = (SDXL_YAML.replace("context_dim: 2048", "context_dim: 1280")
               .replace("          - target: sgm.modules.encoders.modules.FrozenCLIPEmbedder\n", ""))
    (tmp_path / "ref.yaml").write_text(refiner)
    assert architecture_from_sidecar(tmp_path / "ref.safetensors") == load_architecture("sdxl-refiner")
    (tmp_path / "v.yaml").write_text(SDXL_YAML.replace("EpsScaling", "VScaling"))
    arch = architecture_from_sidecar(tmp_path / "v.safetensors")
    assert (arch.family, arch.prediction_type) == ("sdxl", "v_prediction")


def test_json_sidecar_wins_over_yaml_and_bad_yaml_errors(tmp_path):
    (tmp_path / "m.yaml").write_text(SDXL_YAML)
    (tmp_path / "m.json").write_text(json.dumps({"base": "sd1"}))
    assert architecture_from_sidecar(tmp_path / "m.safetensors").name == "sd1"
    (tmp_path / "bad.yaml").write_text(textwrap.dedent("""\
        model:
          params:
            unet_config: {params: {context_dim: 999}}
        """))
    with pytest.raises(UnsupportedModelError, match="cannot tell the model family"):
        architecture_from_sidecar(tmp_path / "bad.safetensors")
