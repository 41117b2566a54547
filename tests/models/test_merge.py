"""Checkpoint merger: exact endpoints, add difference, precision/VAE baking, refusals and interrupted writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.helpers.tiny_models import build_tiny_checkpoint
from webui.models.device import device_config
from webui.models.loader import load_components
from webui.models.merge import (
    ConfigSource,
    IncompatibleModelsError,
    MergeMethod,
    MergeRequest,
    ModelRef,
    Precision,
    main,
    merge_checkpoints,
)

VAE_PREFIX = "first_stage_model."


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge")
    return {name: build_tiny_checkpoint("sd1", root / f"{name}.safetensors", seed=seed)
            for name, seed in (("a", 1), ("b", 2), ("c", 3))}


def _request(models: dict[str, Path], out: Path, **changes) -> MergeRequest:
    fields = dict(primary=ModelRef(models["a"]), secondary=ModelRef(models["b"]), out=out)
    fields.update(changes)
    return MergeRequest(**fields)


@pytest.mark.parametrize("multiplier, expected", [(0.0, "a"), (1.0, "b")])
def test_weighted_sum_endpoints_reproduce_a_and_b(models, tmp_path: Path, multiplier: float, expected: str) -> None:
    out = tmp_path / "ends.safetensors"
    report = merge_checkpoints(_request(models, out, multiplier=multiplier))
    merged, wanted = load_file(str(out)), load_file(str(models[expected]))
    assert report.merged > 100 and merged.keys() == wanted.keys()
    a, b = load_file(str(models["a"])), load_file(str(models["b"]))
    assert sum(not torch.equal(a[k], b[k]) for k in a) > 100  # A and B really differ
    for key, tensor in wanted.items():
        assert tensor.dtype == merged[key].dtype and torch.equal(merged[key], tensor), key


def test_add_difference_and_its_recorded_recipe(models, tmp_path: Path) -> None:
    out = tmp_path / "diff.safetensors"
    report = merge_checkpoints(_request(models, out, method=MergeMethod.ADD_DIFFERENCE,
                                        tertiary=ModelRef(models["c"]), multiplier=0.7))
    a, b, c = (load_file(str(models[name])) for name in "abc")
    merged = load_file(str(out))
    assert merged.keys() == a.keys()
    key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"
    assert torch.allclose(merged[key], a[key] + 0.7 * (b[key] - c[key]), rtol=0, atol=1e-6)
    for name, tensor in a.items():
        if name in ("betas", "alphas_cumprod") or not tensor.is_floating_point():
            assert torch.equal(merged[name], tensor), name  # buffers are A's, never mixed
        else:
            assert torch.equal(merged[name], tensor + (b[name] - c[name]) * 0.7), name
    # The architecture sidecar comes along, so the tiny merged model loads with the same layout.
    assert report.sidecar == out.with_suffix(".json")
    assert load_components(out, device_config(device="cpu")).architecture.name == "tiny-sd1"
    with safe_open(str(out), framework="pt") as handle:
        metadata = handle.metadata()
    recipe, sources = json.loads(metadata["sd_merge_recipe"]), json.loads(metadata["sd_merge_models"])
    assert recipe["interp_method"] == "Add difference" and recipe["multiplier"] == 0.7
    assert recipe["primary_model_hash"] in sources and recipe["tertiary_model_hash"] in sources
    assert sources[recipe["secondary_model_hash"]]["name"] == "b.safetensors"


@pytest.mark.parametrize("layout", ["ldm", "diffusers"])
def test_no_interpolation_converts_to_fp16_and_bakes_a_vae(models, tmp_path: Path, layout: str) -> None:
    vae_file = tmp_path / "other.vae.safetensors"
    b = load_file(str(models["b"]))
    if layout == "ldm":
        save_file({k[len(VAE_PREFIX):]: v for k, v in b.items() if k.startswith(VAE_PREFIX)}, str(vae_file))
    else:
        vae = load_components(models["b"], device_config(device="cpu")).vae
        save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(vae_file))
    out = tmp_path / "half.safetensors"
    report = merge_checkpoints(MergeRequest(primary=ModelRef(models["a"]), out=out, precision=Precision.FP16,
                                            method=MergeMethod.NO_INTERPOLATION, vae=vae_file,
                                            config_from=ConfigSource.NONE))
    assert report.merged == 0 and report.from_vae > 10 and report.sidecar is None
    a, merged = load_file(str(models["a"])), load_file(str(out))
    for key, tensor in a.items():
        source = b[key] if key.startswith(VAE_PREFIX) else tensor
        expected = source.half() if source.is_floating_point() else source
        assert merged[key].dtype == expected.dtype and torch.equal(merged[key], expected), key


def test_mismatched_families_are_refused_and_nothing_is_written(models, tmp_path: Path, capsys) -> None:
    xl = build_tiny_checkpoint("sdxl", tmp_path / "xl.safetensors", seed=5)
    out = tmp_path / "mixed.safetensors"
    with pytest.raises(IncompatibleModelsError, match="sdxl model but A"):
        merge_checkpoints(_request(models, out, secondary=ModelRef(xl)))
    assert main(["--a", str(models["a"]), "--b", str(xl), "--out", str(out), "--quiet"]) == 2
    assert "same family" in capsys.readouterr().err
    assert main(["--a", str(models["a"]), "--b", str(models["b"]), "--out", str(models["b"]), "--quiet"]) == 2
    assert "would replace model B" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["xl.json", "xl.safetensors"]


def test_an_interrupted_merge_leaves_no_file(models, tmp_path: Path) -> None:
    out = tmp_path / "broken.safetensors"
    seen: list[int] = []

    def fail_midway(done: int, total: int, key: str) -> None:
        seen.append(total)
        if done == total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge_checkpoints(_request(models, out, multiplier=0.5), on_tensor=fail_midway)
    assert len(seen) == seen[0] // 2 and list(tmp_path.iterdir()) == []


def test_cli_merges_with_fp32_output(models, tmp_path: Path) -> None:
    out = tmp_path / "cli.safetensors"
    assert main(["--a", str(models["a"]), "--b", str(models["b"]), "--method", "weighted_sum", "-m", "0.25",
                 "--precision", "fp32", "--out", str(out), "--quiet"]) == 0
    a, b, merged = load_file(str(models["a"])), load_file(str(models["b"])), load_file(str(out))
    key = "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight"
    assert torch.equal(merged[key], a[key] * 0.75 + b[key] * 0.25)
    assert main(["--a", str(models["a"]), "--b", str(models["b"]), "--out", str(out), "--quiet"]) == 2  # exists


def test_inpainting_a_merges_only_the_shared_input_channels(models, tmp_path: Path) -> None:
    inpaint = build_tiny_checkpoint("sd1-inpaint", tmp_path / "inpaint.safetensors", seed=9)
    out = tmp_path / "inpaint-mix.safetensors"
    merge_checkpoints(MergeRequest(primary=ModelRef(inpaint), secondary=ModelRef(models["b"]),
                                   tertiary=ModelRef(models["c"]), method=MergeMethod.ADD_DIFFERENCE, multiplier=1.0,
                                   out=out))
    a, b, c, merged = (load_file(str(p)) for p in (inpaint, models["b"], models["c"], out))
    key = "model.diffusion_model.input_blocks.0.0.weight"
    assert a[key].shape[1] == 9 and b[key].shape[1] == 4
    assert torch.equal(merged[key][:, :4], a[key][:, :4] + (b[key] - c[key]))
    assert torch.equal(merged[key][:, 4:], a[key][:, 4:])  # mask and masked-image channels stay A's
    with pytest.raises(IncompatibleModelsError, match="make the inpainting model A"):
        merge_checkpoints(_request(models, tmp_path / "no.safetensors", secondary=ModelRef(inpaint)))
