"""LoRA files as kohya writes them: key names, save precision, `ss_*`/`sshs_*`/`modelspec.*` metadata, the card's
sidecar and preview, all written whole (temp file + fsync + rename)."""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import struct
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import torch
from safetensors.torch import save as safetensors_bytes

from webui.files import atomic_target, atomic_write_text
from webui.training.config import TrainingConfig
from webui.training.dataset import DatasetPlan

SAVE_DTYPES = MappingProxyType({"float": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16})
BASE_MODEL_VERSIONS = MappingProxyType({
    ("sd1", False): "sd_v1", ("sd1", True): "sd_v1_v", ("sd2", False): "sd_v2", ("sd2", True): "sd_v2_v",
    ("sdxl", False): "sdxl_base_v1-0", ("sdxl", True): "sdxl_base_v1-0"})
MODELSPEC_ARCH = MappingProxyType({"sd1": "stable-diffusion-v1", "sd2": "stable-diffusion-v2-768-v",
                                   "sdxl": "stable-diffusion-xl-v1-base"})
_MINIMAL_KEYS = ("ss_v2", "ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha",
                 "ss_network_args")


def epoch_file_name(output_name: str, epoch: int | None = None, step: int | None = None) -> str:
    """`name-000001.safetensors` per epoch, `name-step00000500.safetensors` per step, `name.safetensors` at the end."""
    if epoch is not None:
        return f"{output_name}-{epoch:06d}.safetensors"
    if step is not None:
        return f"{output_name}-step{step:08d}.safetensors"
    return f"{output_name}.safetensors"


def epoch_names(output_name: str, names: Iterable[str]) -> list[str]:
    """The LoRA names of one run, as `epoch_file_name` made them: `name-000001`, `name-000002`, … by epoch, the final
    `name` last. Per-step files (`name-step…`) and other LoRAs that merely share the prefix are left out."""
    epochs: dict[int, str] = {}
    final = False
    for name in names:
        if name == output_name:
            final = True
        elif name.startswith(output_name + "-") and re.fullmatch(r"\d{6,}", name[len(output_name) + 1:]):
            epochs[int(name[len(output_name) + 1:])] = name
    return [epochs[epoch] for epoch in sorted(epochs)] + ([output_name] if final else [])


def training_metadata(config: TrainingConfig, plan: DatasetPlan, *, family: str, v_pred: bool, session_id: str,
                      started_at: float, batches_per_epoch: int, epochs: int, max_steps: int, warmup_steps: int,
                      base_model: Path, base_hash: str | None, conv_dim: int | None, conv_alpha: float | None
                      ) -> dict[str, str]:
    """Every `ss_*` key sd-scripts writes for a folder-style dataset (values are strings, dicts are JSON)."""
    unet_lr = config.unet_lr if config.unet_lr is not None else config.learning_rate
    te_lr = config.text_encoder_lr if config.text_encoder_lr is not None else config.learning_rate
    args = {"conv_dim": str(conv_dim), "conv_alpha": str(conv_alpha)} if conv_dim else None
    values: dict[str, Any] = {
        "ss_session_id": session_id, "ss_training_started_at": started_at, "ss_output_name": config.output_name,
        "ss_learning_rate": config.learning_rate, "ss_text_encoder_lr": te_lr, "ss_unet_lr": unet_lr,
        "ss_num_train_images": plan.num_train_images, "ss_num_validation_images": 0,
        "ss_num_reg_images": plan.num_reg_images, "ss_num_batches_per_epoch": batches_per_epoch,
        "ss_num_epochs": epochs, "ss_gradient_checkpointing": config.gradient_checkpointing,
        "ss_gradient_accumulation_steps": config.gradient_accumulation_steps, "ss_max_train_steps": max_steps,
        "ss_lr_warmup_steps": warmup_steps, "ss_lr_scheduler": config.lr_scheduler,
        "ss_network_module": "networks.lora", "ss_network_dim": config.network_dim,
        "ss_network_alpha": config.network_alpha, "ss_network_dropout": None,
        "ss_mixed_precision": config.mixed_precision, "ss_full_fp16": False, "ss_v2": family == "sd2",
        "ss_base_model_version": BASE_MODEL_VERSIONS.get((family, v_pred), family),
        "ss_clip_skip": config.clip_skip, "ss_max_token_length": None, "ss_cache_latents": config.cache_latents,
        "ss_seed": config.seed, "ss_lowram": False, "ss_noise_offset": config.noise_offset,
        "ss_multires_noise_iterations": None, "ss_multires_noise_discount": 0.3, "ss_adaptive_noise_scale": None,
        "ss_zero_terminal_snr": False, "ss_training_comment": config.training_comment,
        "ss_sd_scripts_commit_hash": "webui-training", "ss_optimizer": _optimizer_text(config),
        "ss_max_grad_norm": config.max_grad_norm, "ss_caption_dropout_rate": config.caption_dropout_rate,
        "ss_caption_dropout_every_n_epochs": 0, "ss_caption_tag_dropout_rate": 0.0, "ss_face_crop_aug_range": None,
        "ss_prior_loss_weight": config.prior_loss_weight, "ss_min_snr_gamma": config.min_snr_gamma,
        "ss_scale_weight_norms": None, "ss_ip_noise_gamma": None, "ss_debiased_estimation": False,
        "ss_noise_offset_random_strength": False, "ss_ip_noise_gamma_random_strength": False,
        "ss_loss_type": "l2", "ss_huber_schedule": "snr", "ss_huber_scale": 1, "ss_huber_c": 0.1,
        "ss_fp8_base": False, "ss_fp8_base_unet": False, "ss_validation_seed": None, "ss_validation_split": 0.0,
        "ss_max_validation_steps": None, "ss_validate_every_n_epochs": None, "ss_validate_every_n_steps": None,
        "ss_resize_interpolation": None,
        "ss_batch_size_per_device": config.train_batch_size,
        "ss_total_batch_size": config.train_batch_size * config.gradient_accumulation_steps,
        "ss_resolution": "({}, {})".format(*plan.buckets.resolution), "ss_color_aug": False,
        "ss_flip_aug": config.flip_aug, "ss_random_crop": False, "ss_shuffle_caption": config.shuffle_caption,
        "ss_keep_tokens": config.keep_tokens, "ss_enable_bucket": plan.buckets.enable_bucket,
        "ss_bucket_no_upscale": plan.buckets.bucket_no_upscale, "ss_min_bucket_reso": plan.buckets.min_bucket_reso,
        "ss_max_bucket_reso": plan.buckets.max_bucket_reso, "ss_bucket_info": plan.bucket_info(),
        "ss_dataset_dirs": json.dumps(plan.dataset_dirs()), "ss_reg_dataset_dirs": json.dumps(plan.dataset_dirs(True)),
        "ss_tag_frequency": json.dumps(plan.tag_frequency()), "ss_sd_model_name": base_model.name,
        "ss_new_sd_model_hash": base_hash, "ss_network_args": json.dumps(args) if args else None,
        "modelspec.sai_model_spec": "1.0.0", "modelspec.architecture": MODELSPEC_ARCH.get(family, family) + "/lora",
        "modelspec.implementation": "https://github.com/kohya-ss/sd-scripts", "modelspec.title": config.output_name,
        "modelspec.resolution": "{}x{}".format(*plan.buckets.resolution),
        "modelspec.prediction_type": "v" if v_pred else "epsilon",
    }
    if config.dataset_config:
        from webui.training.dataset import dataset_json
        values["ss_datasets"] = dataset_json(plan)
    metadata = {key: _text(value) for key, value in values.items() if value is not None}
    if config.no_metadata:
        metadata = {key: value for key, value in metadata.items() if key in _MINIMAL_KEYS}
    return metadata


def _text(value: Any) -> str:
    return ("True" if value else "False") if isinstance(value, bool) else str(value)


def _optimizer_text(config: TrainingConfig) -> str:
    name = {"AdamW": "torch.optim.adamw.AdamW", "Adafactor": "transformers.optimization.Adafactor"}.get(
        config.optimizer_type, config.optimizer_type)
    return name + (f"({','.join(config.optimizer_args)})" if config.optimizer_args else "")


def model_hashes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> tuple[str, str]:
    """(`sshs_model_hash`, `sshs_legacy_hash`) as sd-scripts computes them: sha256 of the serialised file after its
    header, and the 8-hex sha256 of the 64 KiB at 1 MiB."""
    data = safetensors_bytes(dict(tensors), metadata=dict(metadata))
    (length,) = struct.unpack("<Q", data[:8])
    full = hashlib.sha256(data[8 + length:]).hexdigest()
    legacy = hashlib.sha256(io.BytesIO(data).getbuffer()[0x100000:0x110000]).hexdigest()[:8]
    return full, legacy


def save_lora(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str], *, epoch: int | None,
              step: int) -> Path:
    """Write one LoRA file whole: a full disk or a crash leaves no file (or the previous one) under `path`."""
    meta = dict(metadata)
    meta.update({"ss_training_finished_at": str(time.time()), "ss_steps": str(step)})
    if epoch is not None:
        meta["ss_epoch"] = str(epoch)
    meta["sshs_model_hash"], meta["sshs_legacy_hash"] = model_hashes(tensors, meta)
    data = safetensors_bytes({k: v.contiguous() for k, v in tensors.items()}, metadata=meta)
    with atomic_target(path) as partial:
        with open(partial, "wb") as handle:
            handle.write(data)
    return path


def write_card_files(lora_path: Path, trigger_word: str | None, preview: Path | None, family: str) -> None:
    """The sidecar the LoRA cards read (activation text = trigger word) and the last sample as the preview."""
    sidecar = {"description": "Trained with the built-in LoRA trainer", "activation text": trigger_word or "",
               "preferred weight": 0, "sd version": {"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL"}.get(family, "Unknown"),
               "notes": ""}
    atomic_write_text(lora_path.with_suffix(".json"), json.dumps(sidecar, indent=2, ensure_ascii=False))
    if preview is not None and preview.is_file():
        with atomic_target(lora_path.with_suffix(".preview.png")) as partial:
            shutil.copyfile(preview, partial)
