"""Bake CLI: the baked file equals the live merge (fp32 exact, fp16 one rounding), and diffusers can load it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.helpers.tiny_models import build_tiny_checkpoint, tiny_architecture
from tests.networks.tiny import kohya_lora, lora_targets
from webui.errors import UserInputError
from webui.models.bake import bake, network_targets, parse_lora_arg
from webui.models.bake_cli import main
from webui.models.device import device_config
from webui.models.loader import load_components
from webui.networks import LoraPatcher, ModelNames, read_lora

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_ASSETS = REPO_ROOT / "webui" / "assets" / "clip_tokenizer"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bake")
    checkpoint = build_tiny_checkpoint("sd1", root / "base.safetensors", seed=3)
    names = ModelNames.from_models(network_targets(load_components(checkpoint, device_config(device="cpu"))))
    layers = lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d))  # includes 3x3 LoCon convs
    first, second = root / "first.safetensors", root / "second.safetensors"
    # Deltas large enough that an unmerged or wrongly weighted LoRA is far outside fp16 rounding.
    save_file({k: v * 4 for k, v in kohya_lora(names, layers, rank=4, alpha=2.0, seed=11).items()}, str(first))
    save_file({k: v * 4 for k, v in kohya_lora(names, layers[::2], rank=8, alpha=8.0, seed=12).items()}, str(second))
    return checkpoint, first, second


def _live(checkpoint: Path, stack: list[tuple[Path, float, float]]):
    """The checkpoint loaded fresh with the LoRAs applied the way the app applies them."""
    components = load_components(checkpoint, device_config(device="cpu"))
    targets = network_targets(components)
    names = ModelNames.from_models(targets)
    LoraPatcher(targets).apply([(read_lora(path, names), te, unet) for path, te, unet in stack])
    return components


def _state(components) -> dict[str, torch.Tensor]:
    out = {f"unet.{k}": v for k, v in components.unet.state_dict().items()}
    out.update({f"vae.{k}": v for k, v in components.vae.state_dict().items()})
    for encoder in components.text_encoders:
        out.update({f"{encoder.slot}.{k}": v for k, v in encoder.model.state_dict().items()})
    return out


STACK = [(0, 0.8, 0.8), (1, -0.5, 0.6)]  # (file index, te weight, unet weight): one negative TE weight


def _stack(files) -> list[tuple[Path, float, float]]:
    return [(files[1 + index], te, unet) for index, te, unet in STACK]


def test_fp32_bake_equals_the_live_merge_exactly(files, tmp_path: Path) -> None:
    checkpoint = files[0]
    out = tmp_path / "baked32.safetensors"
    args = [parse_lora_arg(f"{path}:{te}:{unet}") for path, te, unet in _stack(files)]
    report = bake(checkpoint, args, out, fp32=True, progress=False)
    assert report.applied == ["first", "second"] and report.layers_written > 0
    assert report.sidecar == out.with_suffix(".json") and report.sidecar.is_file()
    baked = _state(load_components(out, device_config(device="cpu")))
    live = _state(_live(checkpoint, _stack(files)))
    plain = _state(load_components(checkpoint, device_config(device="cpu")))
    assert baked.keys() == live.keys()
    changed = [k for k in live if not torch.equal(live[k], plain[k])]
    assert len(changed) == report.layers_written  # the LoRAs did change the weights being compared
    for key in live:
        assert torch.equal(baked[key], live[key]), key
    with safe_open(str(out), framework="pt") as handle:
        recorded = json.loads(handle.metadata()["baked_loras"])
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"F32"}
    assert [(r["name"], r["te_weight"], r["unet_weight"]) for r in recorded] == [
        ("first", 0.8, 0.8), ("second", -0.5, 0.6)]


def test_fp16_bake_is_the_live_fp32_merge_rounded_once(files, tmp_path: Path) -> None:
    checkpoint = files[0]
    out = tmp_path / "baked16.safetensors"
    assert main(["--checkpoint", str(checkpoint), "--out", str(out), "--quiet",
                 *(x for path, te, unet in _stack(files) for x in ("--lora", f"{path}:{te}:{unet}"))]) == 0
    with safe_open(str(out), framework="pt") as handle:
        dtypes = {handle.get_slice(k).get_dtype() for k in handle.keys()}
    assert dtypes <= {"F16", "I64"} and "F16" in dtypes
    baked = _state(load_components(out, device_config(device="cpu")))
    live = _state(_live(checkpoint, _stack(files)))
    for key, value in live.items():
        # the loader widens the fp16 file to fp32; rounding the live fp32 merge to fp16 must give the same bits
        assert torch.equal(baked[key], value.half().float()), key


def _diffusers_config(folder: Path) -> Path:
    """A local diffusers config folder for the tiny SD1 architecture (what from_single_file needs offline)."""
    import diffusers
    import transformers

    arch = tiny_architecture("sd1")
    version = diffusers.__version__

    def write(path: Path, data: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")

    write(folder / "model_index.json", {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": version, "feature_extractor": [None, None],
        "safety_checker": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]})
    write(folder / "unet" / "config.json", {"_class_name": "UNet2DConditionModel", **arch.unet_config()})
    write(folder / "vae" / "config.json", {"_class_name": "AutoencoderKL", **arch.vae_config()})
    text = transformers.CLIPTextConfig(**arch.text_encoders[0].config_dict()).to_dict()
    write(folder / "text_encoder" / "config.json", {**text, "architectures": ["CLIPTextModel"]})
    write(folder / "scheduler" / "scheduler_config.json", {"_class_name": "DDIMScheduler", **arch.scheduler_config()})
    (folder / "tokenizer").mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(TOKENIZER_ASSETS / name, folder / "tokenizer" / name)
    write(folder / "tokenizer" / "tokenizer_config.json", {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
    return folder


def test_diffusers_from_single_file_loads_the_baked_weights(files, tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    checkpoint = files[0]
    out = tmp_path / "for_diffusers.safetensors"
    bake(checkpoint, [parse_lora_arg(f"{p}:{t}:{u}") for p, t, u in _stack(files)], out, fp32=True, progress=False)
    pipe = StableDiffusionPipeline.from_single_file(
        str(out), config=str(_diffusers_config(tmp_path / "config")), local_files_only=True,
        safety_checker=None, requires_safety_checker=False)
    live = _live(checkpoint, _stack(files))
    plain = load_components(checkpoint, device_config(device="cpu"))
    theirs = pipe.unet.state_dict()
    ours = live.unet.state_dict()
    assert theirs.keys() == ours.keys()
    assert any(not torch.equal(ours[k], v) for k, v in plain.unet.state_dict().items())
    for key, value in ours.items():
        assert torch.equal(theirs[key].float(), value), key
    theirs_te = pipe.text_encoder.state_dict()
    for key, value in live.text_encoders[0].model.state_dict().items():
        assert torch.equal(theirs_te[key].float(), value), key


@pytest.mark.slow  # two fresh interpreters import torch and diffusers
def test_cli_entry_point_runs_from_any_folder_and_goes_offline_first(files, tmp_path: Path) -> None:
    checkpoint, first, _ = files
    out = tmp_path / "cli.safetensors"
    # The installed package (pip install -e .) is importable from any folder: no PYTHONPATH needed.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run([sys.executable, "-m", "webui.models.bake_cli", "--checkpoint", str(checkpoint),
                           "--lora", f"{first}:0.7", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "merged first into" in done.stderr and out.is_file()
    # huggingface_hub reads the offline switch once, at import: the CLI must set it before the bake imports it.
    probe = ("import sys, webui.models.bake_cli as cli; heavy = 'diffusers' in sys.modules; "
             "status = cli.main(['--checkpoint', 'none.safetensors', '--lora', 'none.safetensors', '--out', 'o']); "
             "from huggingface_hub import constants; print(heavy, status, constants.HF_HUB_OFFLINE)")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120)
    assert imported.stdout.strip() == "False 2 True", imported.stderr


def test_user_errors_are_clear_and_write_nothing(files, tmp_path: Path, capsys) -> None:
    checkpoint, first, _ = files
    out = tmp_path / "x.safetensors"
    assert main(["--checkpoint", str(checkpoint), "--lora", str(tmp_path / "nope.safetensors"), "--out", str(out)]) == 2
    assert "nope.safetensors: no such file" in capsys.readouterr().err
    # An SDXL-shaped LoRA does not fit an SD1 checkpoint: the bake stops instead of writing a file without it.
    misfit = tmp_path / "misfit.safetensors"
    base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{base}.lora_down.weight": torch.ones(2, 2048), f"{base}.lora_up.weight": torch.ones(32, 2)},
              str(misfit))
    assert main(["--checkpoint", str(checkpoint), "--lora", f"{first}:1", "--lora", f"{misfit}:1",
                 "--out", str(out)]) == 2
    assert "SDXL" in capsys.readouterr().err
    assert main(["--checkpoint", str(checkpoint), "--lora", f"{first}:abc", "--out", str(out)]) == 2
    assert main(["--checkpoint", str(checkpoint), "--lora", str(first), "--out", str(checkpoint)]) == 2
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    before = checkpoint.stat().st_mtime_ns
    out.write_bytes(b"keep me")
    assert main(["--checkpoint", str(checkpoint), "--lora", str(first), "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me" and checkpoint.stat().st_mtime_ns == before


def test_lora_argument_parsing() -> None:
    assert parse_lora_arg("a.safetensors:0.5") == parse_lora_arg("a.safetensors:0.5:0.5")
    parsed = parse_lora_arg(r"C:\loras\x.safetensors:-0.25:1.5")
    assert (str(parsed.path), parsed.te_weight, parsed.unet_weight) == (r"C:\loras\x.safetensors", -0.25, 1.5)
    plain = parse_lora_arg("dir/y.safetensors")
    assert (plain.path, plain.te_weight, plain.unet_weight) == (Path("dir/y.safetensors"), 1.0, 1.0)
    with pytest.raises(UserInputError, match="finite number"):
        parse_lora_arg("z.safetensors:nan")


def test_sdxl_bake_keeps_both_encoders_and_the_openclip_extras(tmp_path: Path) -> None:
    checkpoint = build_tiny_checkpoint("sdxl", tmp_path / "xl.safetensors", seed=4)
    components = load_components(checkpoint, device_config(device="cpu"))
    names = ModelNames.from_models(network_targets(components))
    lora = tmp_path / "xl_lora.safetensors"
    tensors = kohya_lora(names, lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d)), rank=4, seed=13, sgm=True)
    assert any(k.startswith("lora_te2_") for k in tensors)
    save_file({k: v * 4 for k, v in tensors.items()}, str(lora))
    out = tmp_path / "xl_baked.safetensors"
    report = bake(checkpoint, [parse_lora_arg(f"{lora}:0.9")], out, fp32=True, progress=False)
    assert report.layers_written == len(read_lora(lora, names).modules)
    baked = _state(load_components(out, device_config(device="cpu")))
    live = _state(_live(checkpoint, [(lora, 0.9, 0.9)]))
    assert baked.keys() == live.keys()
    for key in live:
        assert torch.equal(baked[key], live[key]), key
    with safe_open(str(checkpoint), framework="pt") as source, safe_open(str(out), framework="pt") as result:
        extras = [k for k in source.keys() if k.endswith("logit_scale")]
        assert extras and all(torch.equal(source.get_tensor(k), result.get_tensor(k)) for k in extras)
