"""Tiny random checkpoints: written in the LDM layout with a sidecar, read back bit-identically."""
from __future__ import annotations

import json

import pytest
import torch
from diffusers.loaders import single_file_utils as sfu
from safetensors import safe_open
from safetensors.torch import load_file

from tests.helpers.components import build_models
from tests.helpers.tiny_models import build_tiny_checkpoint, tiny_architecture, tiny_components
from webui.models.architectures import (
    ARCHITECTURE_NAMES,
    UnsupportedModelError,
    architecture_from_sidecar,
    detect_architecture,
)
from webui.models.ldm_convert import diffusers_to_ldm, ldm_to_diffusers, vae_ldm_to_diffusers
from webui.processing.model_calls import alphas_cumprod
from webui.sampling.schedules import DiscreteSchedule


def _assert_identical(got, want):
    assert got.keys() == want.keys()
    for key, tensor in want.items():
        assert got[key].dtype == tensor.dtype and torch.equal(got[key], tensor), key


def _family(name):
    return name if name == "sdxl-refiner" else name.removesuffix("-inpaint").removesuffix("-v")


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_tiny_checkpoint_reads_back_bit_identical(tmp_path, name):
    path = build_tiny_checkpoint(name, tmp_path / f"{name}.safetensors", seed=3)
    assert path.suffix == ".safetensors" and json.loads(path.with_suffix(".json").read_text())["base"] == name
    arch = architecture_from_sidecar(path)
    assert arch == tiny_architecture(name) and arch.name == f"tiny-{name}"
    assert arch.family == _family(name) and arch.inpainting == name.endswith("-inpaint")
    state_dict = load_file(path)
    converted = ldm_to_diffusers(state_dict, arch)
    assert converted.unexpected == []
    assert "alphas_cumprod" in converted.ignored and "betas" in converted.ignored
    expected = tiny_components(name, seed=3)
    assert converted.components.keys() == expected.keys()
    for slot, want in expected.items():
        _assert_identical(converted.components[slot], want)
    # And back: LDM -> diffusers -> LDM restores every weight tensor (extras included) bit for bit.
    again = diffusers_to_ldm(converted.components, arch, converted.extras)
    _assert_identical(again, {k: v for k, v in state_dict.items() if k not in converted.ignored})


@pytest.mark.parametrize("name", ["sd1-inpaint", "sd2-v", "sdxl", "sdxl-refiner"])
def test_tiny_models_load_strictly_and_match_diffusers_converter(tmp_path, name):
    arch = tiny_architecture(name)
    state_dict = load_file(build_tiny_checkpoint(name, tmp_path / "m.safetensors"))
    converted = ldm_to_diffusers(state_dict, arch)
    models = build_models(arch)
    for slot, model in models.items():
        model.load_state_dict(converted.components[slot], strict=True)
    # diffusers' own converter is the oracle for values, not just names.
    _assert_identical(sfu.convert_ldm_unet_checkpoint(state_dict, arch.unet_config()), converted.components["unet"])
    _assert_identical(sfu.convert_ldm_vae_checkpoint(state_dict, arch.vae_config()), converted.components["vae"])
    for spec in arch.text_encoders:
        if spec.kind == "open_clip":
            oracle = sfu.convert_open_clip_checkpoint(models[spec.slot], state_dict, prefix=spec.ldm_prefix)
            if spec.class_name == "CLIPTextModel":
                oracle = {k.removeprefix("text_model."): v for k, v in oracle.items()}
            _assert_identical(oracle, converted.components[spec.slot])


def test_half_precision_and_extras(tmp_path):
    path = build_tiny_checkpoint("sd2", tmp_path / "half", dtype=torch.float16)
    arch = architecture_from_sidecar(path)
    converted = ldm_to_diffusers(load_file(path), arch)
    assert set(converted.extras) == {"cond_stage_model.model.logit_scale", "cond_stage_model.model.text_projection"}
    assert all(t.dtype == torch.float16 for sd in converted.components.values() for t in sd.values())
    _assert_identical(converted.components["text_encoder"], tiny_components("sd2", dtype=torch.float16)["text_encoder"])


def test_tiny_file_is_not_auto_detected(tmp_path):
    path = build_tiny_checkpoint("sd1", tmp_path / "m")
    with safe_open(str(path), "pt") as handle:
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    with pytest.raises(UnsupportedModelError, match="cross-attention width 32"):
        detect_architecture(shapes)


def test_wrong_architecture_reports_unexpected_keys(tmp_path):
    state_dict = load_file(build_tiny_checkpoint("sdxl", tmp_path / "m"))
    converted = ldm_to_diffusers(state_dict, tiny_architecture("sd1"))
    assert any(k.startswith("conditioner.embedders.") for k in converted.unexpected)
    assert any(k.startswith("model.diffusion_model.label_emb.") for k in converted.unexpected)


def test_diffusers_to_ldm_refuses_unplaceable_keys():
    arch = tiny_architecture("sd1")
    components = tiny_components("sd1")
    with pytest.raises(ValueError, match="no component"):
        diffusers_to_ldm({**components, "text_encoder_2": {}}, arch)
    components["unet"]["bogus.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unet: 1 key"):
        diffusers_to_ldm(components, arch)


def test_partial_qkv_is_reported_not_guessed():
    arch = tiny_architecture("sd2")
    components = tiny_components("sd2")
    del components["text_encoder"]["encoder.layers.0.self_attn.k_proj.weight"]
    with pytest.raises(ValueError, match="q_proj.weight"):
        diffusers_to_ldm(components, arch)


def test_standalone_vae_file(tmp_path):
    arch = tiny_architecture("sd1")
    state_dict = load_file(build_tiny_checkpoint("sd1", tmp_path / "m"))
    vae_file = {k.removeprefix("first_stage_model."): v
                for k, v in state_dict.items() if k.startswith("first_stage_model.")}
    vae_file["loss.logvar"] = torch.zeros(())
    converted, unexpected = vae_ldm_to_diffusers(vae_file, arch)
    assert unexpected == []
    _assert_identical(converted, tiny_components("sd1")["vae"])


def test_legacy_sd1_clip_keys_without_text_model_level(tmp_path):
    arch = tiny_architecture("sd1")
    state_dict = load_file(build_tiny_checkpoint("sd1", tmp_path / "m"))
    legacy = {k.replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."): v
              for k, v in state_dict.items()}
    converted = ldm_to_diffusers(legacy, arch)
    assert converted.unexpected == []
    _assert_identical(converted.components["text_encoder"], tiny_components("sd1")["text_encoder"])


def test_architectures_are_hashable_and_read_only():
    arch = tiny_architecture("sdxl")
    assert hash(arch) == hash(tiny_architecture("sdxl")) and {arch: 1}[tiny_architecture("sdxl")] == 1
    with pytest.raises(TypeError):
        arch.unet["in_channels"] = 9
    config = arch.unet_config()
    config["block_out_channels"].append(1)
    assert arch.unet["block_out_channels"] == (32, 64)


@pytest.mark.parametrize(("name", "time_ids"), [("sdxl", 6), ("sdxl-refiner", 5), ("sd2-inpaint", 0)])
def test_tiny_unets_run_with_their_family_conditioning(name, time_ids):
    """The tiny configs are coherent: text width, pooled projection and time ids fit the UNet's embeddings."""
    arch = tiny_architecture(name)
    models = build_models(arch)
    context = sum(int(spec.config["hidden_size"]) for spec in arch.text_encoders)
    kwargs = {}
    if time_ids:
        pooled = int(arch.text_encoder("text_encoder_2").config["projection_dim"])
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.zeros(1, pooled), "time_ids": torch.zeros(1, time_ids)}
    sample = torch.zeros(1, arch.unet["in_channels"], 8, 8)
    with torch.no_grad():
        out = models["unet"](sample, 10, encoder_hidden_states=torch.zeros(1, 77, context), **kwargs).sample
    assert out.shape == (1, 4, 8, 8)


def test_a_sidecar_noise_schedule_reaches_the_sampler(tmp_path):
    # A checkpoint trained on another schedule (demo run 3: `--beta-end 0.025`) states it in its sidecar: sampling
    # must start from that schedule's noise.
    path = build_tiny_checkpoint("sd1", tmp_path / "steep.safetensors")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    plain = DiscreteSchedule(alphas_cumprod(architecture_from_sidecar(path).scheduler_config()))
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "scheduler": {"beta_end": 0.025}}))
    arch = architecture_from_sidecar(path)
    steep = DiscreteSchedule(alphas_cumprod(arch.scheduler_config()))
    assert arch.scheduler_config()["beta_end"] == 0.025 and arch.scheduler_config()["beta_start"] == 0.00085
    assert plain.sigma_max == pytest.approx(14.6, abs=0.1)
    assert steep.sigma_max == pytest.approx(166.8, abs=0.5)
    assert steep.sigma_min == pytest.approx(plain.sigma_min, rel=1e-3)


def test_a_sidecar_prediction_type_reaches_the_sampler(tmp_path):
    # A checkpoint trained to predict v (the demo script's --prediction-type) says so at the top level of its
    # sidecar, beside "base": the denoiser must read the UNet's output as v, not as noise.
    path = build_tiny_checkpoint("sd1", tmp_path / "vpred.safetensors")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert architecture_from_sidecar(path).prediction_type == "epsilon"
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "prediction_type": "v_prediction"}))
    arch = architecture_from_sidecar(path)
    assert arch.prediction_type == "v_prediction"
    assert arch.scheduler_config()["prediction_type"] == "v_prediction"
