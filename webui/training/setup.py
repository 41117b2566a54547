"""What a training run needs before its first step: the base model, text encoding, optimizer and LR schedule."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from diffusers.optimization import get_scheduler

from webui.conditioning.encoder import LayerRule, select_layer
from webui.conditioning.tokenizer import load_clip_tokenizer
from webui.errors import UserInputError
from webui.models.device import DeviceConfig
from webui.models.loader import LoadedComponents, load_components
from webui.paths import REPO_ROOT, resolve_inside
from webui.training.config import TrainingConfig

CHECKPOINT_DIR = REPO_ROOT / "models" / "Stable-diffusion"
_LAYER_RULES: dict[str, LayerRule] = {"sd1": "clip_skip_final_ln", "sd2": "penultimate_final_ln",
                                      "sdxl": "penultimate"}


def resolve_checkpoint(name: str, checkpoint_dir: Path = CHECKPOINT_DIR) -> Path:
    """A checkpoint file path, or a name (with or without extension) inside the checkpoint folder."""
    direct = Path(name).expanduser()
    if direct.is_file():
        return direct
    for candidate in (name, f"{name}.safetensors", f"{name}.ckpt"):
        try:
            path = resolve_inside(checkpoint_dir, candidate)
        except UserInputError:
            continue
        if path.is_file():
            return path
    raise UserInputError(f"pretrained_model_name_or_path {name!r}: no such checkpoint file or model in "
                         f"{checkpoint_dir} (diffusers folders and hub names are not downloaded)")


def load_base(path: Path, device: torch.device) -> LoadedComponents:
    """The base model in fp32 with frozen weights, loaded by the app's own loader."""
    config = DeviceConfig(device=device, dtype=torch.float32, vae_dtype=torch.float32)
    return load_components(path, config)


def family_of(components: LoadedComponents) -> str:
    family = components.architecture.family
    if family not in ("sd1", "sd2", "sdxl"):
        raise UserInputError(f"LoRA training supports SD1.x, SD2.x and SDXL checkpoints, not {family}")
    return family


class TextEncoding:
    """Captions -> (context, pooled) with the family's layer rule; grads flow when the encoders are trained."""

    def __init__(self, components: LoadedComponents, family: str, clip_skip: int | None, device: torch.device):
        self.encoders = components.text_encoders
        self.rule = _LAYER_RULES[family]
        self.clip_skip = clip_skip or 1
        self.device = device
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def cached(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`--cache_text_encoder_outputs`: each distinct caption is encoded once, without gradients."""
        missing = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if missing:
            with torch.no_grad():
                context, pooled = self(missing)
            for index, caption in enumerate(missing):
                self._cache[caption] = (context[index], pooled[index] if pooled is not None else None)
        contexts = torch.stack([self._cache[c][0] for c in captions])
        pooled_rows = [self._cache[c][1] for c in captions]
        if any(row is None for row in pooled_rows):
            return contexts, None
        return contexts, torch.stack([row for row in pooled_rows if row is not None])

    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        contexts, pooled = [], None
        for encoder in self.encoders:
            tokenizer = load_clip_tokenizer(encoder.kind == "clip_l")
            ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True,
                            return_tensors="pt").input_ids.to(self.device)
            output = encoder.model(ids, output_hidden_states=True)
            contexts.append(select_layer(encoder.model, output, self.rule, self.clip_skip))
            if encoder.slot == "text_encoder_2":
                pooled = output.text_embeds
        return torch.cat(contexts, dim=-1), pooled


def sdxl_time_ids(original: tuple[int, int], crop: tuple[int, int], target: tuple[int, int], batch: int,
                  device: torch.device) -> torch.Tensor:
    """SDXL's size/crop conditioning: (orig h, orig w, crop top, crop left, target h, target w) per image."""
    row = torch.tensor([original[1], original[0], crop[1], crop[0], target[1], target[0]], dtype=torch.float32)
    return row.repeat(batch, 1).to(device)


def _optimizer_kwargs(args: list[str]) -> dict[str, Any]:
    """`--optimizer_args "weight_decay=0.01" "betas=0.9,0.99"` -> keyword arguments."""
    kwargs: dict[str, Any] = {}
    for item in args:
        key, _, raw = item.partition("=")
        values: list[Any] = []
        for part in raw.split(","):
            part = part.strip()
            if part.lower() in ("true", "false"):
                values.append(part.lower() == "true")
            else:
                try:
                    values.append(float(part) if any(c in part for c in ".e") else int(part))
                except ValueError:
                    values.append(part)
        kwargs[key.strip()] = tuple(values) if len(values) > 1 else values[0]
    return kwargs


def make_optimizer(config: TrainingConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """kohya's optimizer_type names; optional packages give a clear message when they are not installed."""
    kwargs = _optimizer_kwargs(config.optimizer_args)
    lr = config.learning_rate
    kind = config.optimizer_type
    if kind == "AdamW":
        return torch.optim.AdamW(groups, lr=lr, **kwargs)
    if kind == "SGDNesterov":
        return torch.optim.SGD(groups, lr=lr, nesterov=True, momentum=kwargs.pop("momentum", 0.9), **kwargs)
    if kind == "Adafactor":
        from transformers.optimization import Adafactor
        defaults = {"scale_parameter": False, "relative_step": False, "warmup_init": False}
        return Adafactor(groups, lr=lr, **{**defaults, **kwargs})
    module_name, class_name = {"AdamW8bit": ("bitsandbytes.optim", "AdamW8bit"),
                               "Lion8bit": ("bitsandbytes.optim", "Lion8bit"), "Lion": ("lion_pytorch", "Lion"),
                               "Prodigy": ("prodigyopt", "Prodigy")}.get(kind, tuple(kind.rsplit(".", 1)))
    if kind.endswith("8bit") and not torch.cuda.is_available():
        raise UserInputError(f"optimizer_type {kind} needs CUDA (bitsandbytes); use AdamW on this machine")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise UserInputError(f"optimizer_type {kind} needs the Python package {module_name.split('.')[0]}, "
                             "which is not installed; use AdamW or Adafactor") from error
    return cls(groups, lr=lr, **kwargs)


def warmup_steps(config: TrainingConfig, max_steps: int) -> int:
    """An int, or a float below 1 meaning a share of the total steps (kohya)."""
    value = config.lr_warmup_steps
    return int(value * max_steps) if 0 < value < 1 else int(value)


def make_scheduler(config: TrainingConfig, optimizer: torch.optim.Optimizer, max_steps: int):
    """diffusers' schedulers with kohya's names, warmup and restart cycles."""
    kwargs: dict[str, Any] = {"num_warmup_steps": warmup_steps(config, max_steps), "num_training_steps": max_steps}
    if config.lr_scheduler == "cosine_with_restarts":
        kwargs["num_cycles"] = config.lr_scheduler_num_cycles
    if config.lr_scheduler == "polynomial":
        kwargs["power"] = config.lr_scheduler_power
    if config.lr_scheduler == "constant":
        kwargs = {}
    elif config.lr_scheduler == "constant_with_warmup":
        kwargs.pop("num_training_steps")
    return get_scheduler(config.lr_scheduler, optimizer, **kwargs)
