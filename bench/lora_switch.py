"""LoRA merge benchmark on a full-size SD1.5-shaped random fp16 model: ours vs diffusers load+fuse, switching, memory."""
from __future__ import annotations

import copy
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from webui.conditioning.tokenizer import load_clip_tokenizer  # noqa: E402
from webui.networks import LoraPatcher, ModelNames, read_lora  # noqa: E402

RANK = 8
DTYPE = torch.float16


def _materialise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Allocate a meta-built model on the CPU and fill it with N(0, 0.02) quickly (no per-layer init)."""
    model = model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    return model.to(DTYPE).eval()


def build_models() -> dict[str, torch.nn.Module]:
    with torch.device("meta"):
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            max_position_embeddings=77, vocab_size=49408))
    return {"unet": _materialise(unet, 1), "text_encoder": _materialise(text, 2)}


def kohya_file(names: ModelNames, path: Path, seed: int) -> Path:
    """A rank-8 kohya LoRA on the default kohya targets (attention, proj, ff; CLIP attn and mlp), stored fp16."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for (target, name), module in names.modules.items():
        wanted = ("attentions" in name and not name.endswith("norm")) if target == "unet" else (
            "self_attn" in name or "mlp" in name)
        if not wanted or not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            continue
        base = names.kohya_name(target, name)
        out_dim, in_dim = module.weight.shape[:2]
        extra = (1, 1) if module.weight.dim() == 4 else ()
        tensors[f"{base}.lora_down.weight"] = (torch.randn(RANK, in_dim, *extra, generator=generator) * 0.01).to(DTYPE)
        tensors[f"{base}.lora_up.weight"] = (torch.randn(out_dim, RANK, *extra, generator=generator) * 0.01).to(DTYPE)
        tensors[f"{base}.alpha"] = torch.tensor(4.0, dtype=DTYPE)
    save_file(tensors, str(path))
    return path


def timed(label: str, fn, results: dict[str, float]):
    started = time.perf_counter()
    value = fn()
    results[label] = time.perf_counter() - started
    print(f"{label:<44} {results[label] * 1000:9.1f} ms")
    return value


def main() -> None:
    torch.set_grad_enabled(False)
    results: dict[str, float] = {}
    models = timed("build full-size SD1.5 UNet + CLIP-L (fp16)", build_models, results)
    names = ModelNames.from_models(models)
    with tempfile.TemporaryDirectory() as folder:
        first = kohya_file(names, Path(folder) / "first.safetensors", 1)
        second = kohya_file(names, Path(folder) / "second.safetensors", 2)

        reference = copy.deepcopy(models)
        vae = AutoencoderKL(block_out_channels=(32,), down_block_types=("DownEncoderBlock2D",),
                            up_block_types=("UpDecoderBlock2D",), norm_num_groups=32)
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=reference["text_encoder"], tokenizer=load_clip_tokenizer(),
                                       unet=reference["unet"], scheduler=DDIMScheduler(), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        timed("diffusers load_lora_weights", lambda: pipe.load_lora_weights(str(first)), results)
        timed("diffusers fuse_lora", lambda: pipe.fuse_lora(lora_scale=0.8), results)
        del pipe, reference

        lora_a = timed("ours: read + parse file", lambda: read_lora(first, names), results)
        lora_b = read_lora(second, names)
        patcher = LoraPatcher(models)
        report = timed("ours: apply (first time, makes backups)", lambda: patcher.apply([(lora_a, 0.8, 0.8)]), results)
        print(f"  layers written: {report.layers_written}")
        timed("ours: apply same stack again", lambda: patcher.apply([(lora_a, 0.8, 0.8)]), results)
        timed("ours: switch A -> B", lambda: patcher.apply([(lora_b, 0.8, 0.8)]), results)
        timed("ours: switch B -> A+B (two LoRAs)", lambda: patcher.apply([(lora_a, 0.8, 0.8), (lora_b, 0.5, 0.5)]),
              results)
        timed("ours: change one weight (A+B -> A+B')", lambda: patcher.apply([(lora_a, 0.8, 0.8), (lora_b, 0.6, 0.6)]),
              results)
        touched = sum(m.weight.numel() * m.weight.element_size() for m in
                      (names.modules[k] for k in patcher.patched_layers))
        backup = patcher.backup_bytes()
        timed("ours: restore", patcher.restore, results)

    diffusers_total = results["diffusers load_lora_weights"] + results["diffusers fuse_lora"]
    ours_total = results["ours: read + parse file"] + results["ours: apply (first time, makes backups)"]
    print()
    print(f"first apply, ours / diffusers (load+fuse):   {ours_total / diffusers_total:6.2f}x")
    print(f"switch A->B, ours / diffusers (load+fuse):   {results['ours: switch A -> B'] / diffusers_total:6.2f}x")
    print(f"backup bytes / touched weight bytes:         {backup / touched:6.2f}  ({backup / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
