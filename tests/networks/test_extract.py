"""LoRA extraction: a known rank-8 LoRA baked into a checkpoint comes back out, and diffusers loads the result."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.helpers.tiny_models import build_tiny_checkpoint
from tests.networks.tiny import kohya_lora, lora_targets
from webui.conditioning.tokenizer import load_clip_tokenizer
from webui.errors import UserInputError
from webui.models.bake import bake, network_targets, parse_lora_arg
from webui.models.device import device_config
from webui.models.extract_lora import extract_lora_file, main
from webui.models.loader import load_components
from webui.networks import LoraPatcher, ModelNames, read_lora
from webui.networks.lora_extract import ExtractSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-3
RANK, ALPHA = 8, 4.0


def _names(checkpoint: Path) -> ModelNames:
    return ModelNames.from_models(network_targets(load_components(checkpoint, device_config(device="cpu"))))


@pytest.fixture(scope="module")
def baked(tmp_path_factory):
    """(base checkpoint, tuned checkpoint, the known LoRA's tensors): tuned = our bake of the LoRA into base."""
    root = tmp_path_factory.mktemp("extract")
    base = build_tiny_checkpoint("sd1", root / "base.safetensors", seed=7)
    names = _names(base)
    # Attention linears, 1x1 projections, 3x3 resnet convs (LoCon) and the text encoder's attention/MLP.
    layers = lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d))
    known = kohya_lora(names, layers, rank=RANK, alpha=ALPHA, seed=21)
    lora = root / "known.safetensors"
    save_file(known, str(lora))
    tuned = root / "tuned.safetensors"
    bake(base, [parse_lora_arg(f"{lora}:1.0")], tuned, fp32=True, progress=False)
    return base, tuned, known


@pytest.fixture(scope="module")
def extracted(baked, tmp_path_factory):
    """The LoRA extracted back out of the tuned checkpoint at the known rank (3x3 convs included), and its report."""
    base, tuned, _ = baked
    out = tmp_path_factory.mktemp("extracted") / "extracted.safetensors"
    return out, extract_lora_file(base, tuned, out, ExtractSettings(dim=RANK, conv_dim=RANK))


def _delta(tensors: dict[str, torch.Tensor], base: str) -> torch.Tensor:
    up, down = tensors[f"{base}.lora_up.weight"].float(), tensors[f"{base}.lora_down.weight"].float()
    scale = float(tensors[f"{base}.alpha"]) / down.shape[0] if f"{base}.alpha" in tensors else 1.0
    return (up.flatten(1) @ down.flatten(1)).reshape(up.shape[0], *down.shape[1:]) * scale


def _relative(error: torch.Tensor, reference: torch.Tensor) -> float:
    return float(error.norm() / reference.norm())


def test_extracted_lora_reproduces_the_baked_delta(baked, extracted) -> None:
    base, tuned, known = baked
    out, report = extracted
    extracted = load_file(str(out))
    bases = sorted({key.rsplit(".", 2)[0] for key in known})
    assert report.layers == len(bases) and report.unchanged > 0  # downsamplers etc. are unchanged
    assert {key.rsplit(".", 2)[0] for key in extracted} == set(bases)
    worst = max(_relative(_delta(extracted, b) - _delta(known, b).reshape(_delta(extracted, b).shape),
                          _delta(known, b)) for b in bases)
    assert worst <= TOLERANCE
    assert all(extracted[f"{b}.lora_down.weight"].shape[0] == RANK for b in bases)
    with safe_open(str(out), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["ss_network_module"] == "networks.lora" and metadata["ss_network_dim"] == str(RANK)
    assert metadata["ss_base_model_version"] == "sd_v1" and metadata["ss_v2"] == "False"
    assert '"conv_dim": "8"' in metadata["ss_network_args"]
    # Our own loader applies it back onto the base and lands on the tuned weights.
    components = load_components(base, device_config(device="cpu"))
    targets = network_targets(components)
    LoraPatcher(targets).apply([(read_lora(out, ModelNames.from_models(targets)), 1.0, 1.0)])
    _assert_close_to_tuned(targets, tuned, base)


def _assert_close_to_tuned(models: dict[str, torch.nn.Module], tuned: Path, base: Path) -> None:
    want = network_targets(load_components(tuned, device_config(device="cpu")))
    start = network_targets(load_components(base, device_config(device="cpu")))
    changed = 0
    for target, model in models.items():
        wanted, original = want[target].state_dict(), start[target].state_dict()
        for key, value in model.state_dict().items():
            delta = wanted[key] - original[key]
            if delta.abs().max() == 0:
                assert torch.equal(value, wanted[key]), key
                continue
            changed += 1
            assert _relative(value - wanted[key], delta) <= TOLERANCE, key
    assert changed > 20


def test_diffusers_load_lora_weights_accepts_the_extracted_file(baked, extracted) -> None:
    base, tuned, _ = baked
    out = extracted[0]
    components = load_components(base, device_config(device="cpu"))
    pipe = StableDiffusionPipeline(
        vae=components.vae, text_encoder=components.text_encoders[0].model, tokenizer=load_clip_tokenizer(),
        unet=components.unet, scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.load_lora_weights(load_file(str(out)))
    pipe.fuse_lora(lora_scale=1.0)
    pipe.unload_lora_weights()
    _assert_close_to_tuned({"unet": pipe.unet, "text_encoder": pipe.text_encoder}, tuned, base)


def test_cli_forwarder_and_user_errors(baked, tmp_path: Path, capsys) -> None:
    base, tuned, _ = baked
    out = tmp_path / "cli.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "webui.networks.extract", "--base", str(base), "--tuned", str(tuned),
                           "--dim", "4", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and out.is_file()
    # Without --conv_dim only linear and 1x1 layers are extracted, at the asked rank.
    downs = {k: v for k, v in load_file(str(out)).items() if k.endswith("lora_down.weight")}
    assert downs and all(v.shape[0] == 4 and (v.dim() == 2 or v.shape[2:] == (1, 1)) for v in downs.values())
    probe = ("import sys, webui.networks.extract, webui.networks.lora_extract; "
             "print(any(m.startswith('webui.models') for m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert imported.stdout.strip() == "False", imported.stderr  # the networks layer never imports models
    assert main(["--base", str(base), "--tuned", str(tuned), "--out", str(out), "--quiet"]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(UserInputError, match="does not differ"):
        extract_lora_file(base, base, tmp_path / "same.safetensors", ExtractSettings(dim=4))
    xl = build_tiny_checkpoint("sdxl", tmp_path / "xl.safetensors", seed=2)
    assert main(["--base", str(base), "--tuned", str(xl), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "same family" in capsys.readouterr().err
    assert not (tmp_path / "same.safetensors").exists() and not (tmp_path / "x.safetensors").exists()
