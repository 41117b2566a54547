"""Bad files and misfits: clear messages, nothing applied from the file, the model untouched."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.networks.tiny import kohya_lora, lora_targets, param_hash, tiny_models
from webui.errors import ModelFileError
from webui.networks import LoraApplyError, LoraFileError, LoraPatcher, ModelNames, parse_lora, read_lora


@pytest.fixture(scope="module")
def sd1():
    models = tiny_models(sdxl=False)
    return models, ModelNames.from_models(models), param_hash(models)


def _good(names: ModelNames) -> dict[str, torch.Tensor]:
    return kohya_lora(names, lora_targets(names)[:6], seed=4)


def test_truncated_safetensors_is_a_file_error(sd1, tmp_path: Path) -> None:
    _, names, _ = sd1
    path = tmp_path / "cut.safetensors"
    save_file(_good(names), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(LoraFileError, match="cut.safetensors"):
        read_lora(path, names)
    path.write_bytes(b"\x00garbage")
    with pytest.raises(ModelFileError):
        read_lora(path, names)


def test_pickle_with_code_is_refused(sd1, tmp_path: Path) -> None:
    _, names, _ = sd1

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(LoraFileError):
        read_lora(path, names)
    torch.save(_good(names), tmp_path / "fine.pt")
    assert len(read_lora(tmp_path / "fine.pt", names).modules) == 6


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tensor_is_rejected(sd1, bad: float) -> None:
    _, names, _ = sd1
    tensors = _good(names)
    key = next(k for k in tensors if k.endswith("lora_up.weight"))
    tensors[key][0, 0] = bad
    with pytest.raises(LoraFileError, match="NaN or Inf"):
        parse_lora("bad", tensors, {}, names)


def test_unknown_keys_are_reported_and_only_unknown_is_an_error(sd1) -> None:
    models, names, pristine = sd1
    with pytest.raises(LoraFileError, match="no key is in a known"):
        parse_lora("junk", {"model.foo.bar": torch.zeros(2), "lora_unet_x.strange": torch.zeros(1)}, {}, names)
    tensors = _good(names)
    tensors["lora_unet_not_a_layer.lora_down.weight"] = torch.zeros(4, 32)
    tensors["lora_unet_not_a_layer.lora_up.weight"] = torch.zeros(32, 4)
    tensors["lora_unet_down_blocks_0_resnets_0_conv1.glora_a1"] = torch.zeros(3)
    lora = parse_lora("partial", tensors, {}, names)
    assert lora.unmatched_keys == ("lora_unet_not_a_layer",)
    assert lora.unsupported_keys == ("lora_unet_down_blocks_0_resnets_0_conv1.glora_a1",)
    patcher = LoraPatcher(models)
    report = patcher.apply([(lora, 1.0, 1.0)])
    assert report.applied == ["partial"] and len(report.warnings) == 2 and report.layers_written == 6
    patcher.restore()
    assert param_hash(models) == pristine


def test_wrong_shapes_reject_the_whole_lora_before_writing(sd1) -> None:
    models, names, pristine = sd1
    tensors = _good(names)
    key = sorted(k for k in tensors if k.endswith("lora_up.weight"))[-1]
    tensors[key] = torch.zeros(tensors[key].shape[0] + 8, tensors[key].shape[1])
    misfit = parse_lora("misfit", tensors, {}, names)
    fine = parse_lora("fine", _good(names), {}, names)
    patcher = LoraPatcher(models)
    report = patcher.apply([(misfit, 1.0, 1.0)])
    assert "misfit" in report.rejected and "does not fit this model" in report.rejected["misfit"]
    assert report.layers_written == 0 and param_hash(models) == pristine
    with pytest.raises(LoraApplyError, match="misfit"):
        patcher.apply([(fine, 1.0, 1.0), (misfit, 1.0, 1.0)], strict=True)
    assert param_hash(models) == pristine
    report = patcher.apply([(fine, 1.0, 1.0), (misfit, 1.0, 1.0)])  # the good one still applies
    assert report.applied == ["fine"] and list(report.rejected) == ["misfit"]
    patcher.restore()
    assert param_hash(models) == pristine


def test_sdxl_lora_on_sd1_is_skipped_with_a_clear_message(sd1) -> None:
    models, names, pristine = sd1
    sdxl_models = tiny_models(sdxl=True)
    sdxl_names = ModelNames.from_models(sdxl_models)
    sdxl_file = kohya_lora(sdxl_names, lora_targets(sdxl_names), sgm=True, seed=5)
    lora = parse_lora("xl", sdxl_file, {"ss_base_model_version": "sdxl_base_v1-0"}, names)
    assert lora.family == "sdxl"
    report = LoraPatcher(models, family="sd1").apply([(lora, 1.0, 1.0)])
    assert report.rejected["xl"] == "LoRA xl is for SDXL but the loaded model is SD1; skipped"
    assert param_hash(models) == pristine
    # With the model's family unknown (tiny widths), the file still fails cleanly: no layer or shape fits.
    report = LoraPatcher(models).apply([(lora, 1.0, 1.0)])
    assert "xl" in report.rejected and param_hash(models) == pristine


def test_family_from_shapes_beats_metadata(sd1) -> None:
    _, names, _ = sd1
    base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    for width, family in ((768, "sd1"), (1024, "sd2"), (2048, "sdxl")):
        tensors = {f"{base}.lora_down.weight": torch.zeros(2, width), f"{base}.lora_up.weight": torch.zeros(32, 2)}
        assert parse_lora("w", tensors, {"ss_v2": "True"}, names).family == family
