"""Training options under kohya sd-scripts' names and defaults, from a command line and/or a `--config_file` TOML."""
from __future__ import annotations

import argparse
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from webui.errors import UserInputError
from webui.paths import REPO_ROOT
from webui.training.buckets import BucketSettings, parse_resolution

OPTIMIZERS = ("AdamW", "AdamW8bit", "Lion", "Lion8bit", "Prodigy", "Adafactor", "SGDNesterov")
SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
PRECISIONS = ("no", "fp16", "bf16")
SAVE_PRECISIONS = ("float", "fp16", "bf16")
DEFAULT_OUTPUT_DIR = REPO_ROOT / "models" / "Lora"


@dataclass
class TrainingConfig:
    """One training run. Field names are kohya's flag names; defaults are sd-scripts' unless noted."""

    pretrained_model_name_or_path: str = ""
    train_data_dir: str | None = None
    reg_data_dir: str | None = None
    dataset_config: str | None = None
    output_dir: str = str(DEFAULT_OUTPUT_DIR)  # ours: straight into the LoRA library
    output_name: str = "last"
    caption_extension: str = ".txt"  # the kohya_ss GUI's default; sd-scripts' ".caption" silently loses .txt files
    network_module: str = "networks.lora"
    network_dim: int = 4
    network_alpha: float = 1.0
    network_args: list[str] = field(default_factory=list)
    network_weights: str | None = None
    network_train_unet_only: bool = False
    network_train_text_encoder_only: bool = False
    learning_rate: float = 2e-6
    unet_lr: float | None = None
    text_encoder_lr: float | None = None
    optimizer_type: str = "AdamW"
    optimizer_args: list[str] = field(default_factory=list)
    lr_scheduler: str = "constant"
    lr_warmup_steps: float = 0
    lr_scheduler_num_cycles: int = 1
    lr_scheduler_power: float = 1.0
    max_train_steps: int = 1600
    max_train_epochs: int | None = None
    train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    resolution: str = "512,512"
    enable_bucket: bool = False
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    bucket_reso_steps: int = 64
    bucket_no_upscale: bool = False
    noise_offset: float | None = None
    min_snr_gamma: float | None = None
    clip_skip: int | None = None
    shuffle_caption: bool = False
    keep_tokens: int = 0
    caption_dropout_rate: float = 0.0
    flip_aug: bool = False
    cache_latents: bool = False
    cache_latents_to_disk: bool = False
    cache_text_encoder_outputs: bool = False
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"
    save_precision: str = "fp16"  # ours: fp16 like the kohya_ss GUI
    seed: int | None = None
    max_grad_norm: float = 1.0
    prior_loss_weight: float = 1.0
    v2: bool = False
    v_parameterization: bool = False
    save_every_n_epochs: int | None = None
    save_every_n_steps: int | None = None
    save_state: bool = False
    resume: str | None = None
    sample_prompts: str | None = None
    sample_every_n_steps: int | None = None
    sample_every_n_epochs: int | None = None
    sample_sampler: str = "ddim"
    sample_at_first: bool = False
    logging_dir: str | None = None
    training_comment: str | None = None
    no_metadata: bool = False
    trigger_word: str | None = None  # ours: the card's activation text; default the most common first tag

    def bucket_settings(self) -> BucketSettings:
        return BucketSettings(parse_resolution(self.resolution), self.enable_bucket, self.min_bucket_reso,
                              self.max_bucket_reso, self.bucket_reso_steps, self.bucket_no_upscale)

    def check(self) -> "TrainingConfig":
        """Refuse impossible combinations before any model work, with kohya's wording where it has one."""
        if not self.pretrained_model_name_or_path:
            raise UserInputError("pretrained_model_name_or_path is required (a checkpoint file or its name)")
        if self.network_module not in ("networks.lora", "lora"):
            raise UserInputError(f"network_module {self.network_module!r} is not supported; use networks.lora")
        if self.network_dim < 1:
            raise UserInputError("network_dim must be at least 1")
        if self.optimizer_type not in OPTIMIZERS and "." not in self.optimizer_type:
            raise UserInputError(f"optimizer_type {self.optimizer_type!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.lr_scheduler not in SCHEDULERS:
            raise UserInputError(f"lr_scheduler {self.lr_scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
        if self.mixed_precision not in PRECISIONS:
            raise UserInputError(f"mixed_precision must be one of {', '.join(PRECISIONS)}")
        if self.save_precision not in SAVE_PRECISIONS:
            raise UserInputError(f"save_precision must be one of {', '.join(SAVE_PRECISIONS)}")
        if self.train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise UserInputError("train_batch_size and gradient_accumulation_steps must be at least 1")
        if self.network_train_unet_only and self.network_train_text_encoder_only:
            raise UserInputError("network_train_unet_only and network_train_text_encoder_only exclude each other")
        if self.cache_text_encoder_outputs and not self.network_train_unet_only:
            raise UserInputError("cache_text_encoder_outputs needs network_train_unet_only (the text encoder "
                                 "cannot learn from cached outputs)")
        if not 0 <= self.caption_dropout_rate <= 1:
            raise UserInputError("caption_dropout_rate must lie between 0 and 1")
        if not self.output_name or any(c in self.output_name for c in "/\\") or self.output_name in (".", ".."):
            raise UserInputError(f"output_name {self.output_name!r} must be a plain file name")
        self.bucket_settings().checked()
        return self

    def network_arg(self, key: str) -> str | None:
        """A `--network_args "key=value"` entry, or None."""
        for item in self.network_args:
            name, _, value = item.partition("=")
            if name.strip() == key:
                return value.strip()
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bool_flag(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(f"--{name}", action="store_true", default=None)


def build_parser() -> argparse.ArgumentParser:
    """kohya's flags: every TrainingConfig field as `--name`, lists with nargs, booleans as store_true."""
    parser = argparse.ArgumentParser(prog="python -m webui.training.train_network",
                                     description="Train a LoRA with kohya sd-scripts flags (train_network.py).")
    parser.add_argument("--config_file", help="a TOML of the same options (flags on the command line win)")
    for item in fields(TrainingConfig):
        default = TrainingConfig.__dataclass_fields__[item.name]
        kind = str(item.type)
        if kind == "bool":
            _bool_flag(parser, item.name)
        elif kind.startswith("list"):
            parser.add_argument(f"--{item.name}", nargs="*", default=None)
        else:
            caster: Any = str
            if kind.startswith("int"):
                caster = int
            elif kind.startswith("float"):
                caster = float
            parser.add_argument(f"--{item.name}", type=caster, default=None,
                                help=None if default.default is None else f"default {default.default}")
    # Flags kohya users pass that change nothing here (attention backends, loader details).
    for flag in ("xformers", "sdpa", "mem_eff_attn", "persistent_data_loader_workers", "lowram", "no_half_vae"):
        _bool_flag(parser, flag)
    parser.add_argument("--max_data_loader_n_workers", type=int, default=None)
    return parser


_IGNORED = {"config_file", "xformers", "sdpa", "mem_eff_attn", "persistent_data_loader_workers", "lowram",
            "no_half_vae", "max_data_loader_n_workers"}


def config_from_args(argv: list[str] | None = None) -> TrainingConfig:
    """Command line over `--config_file` over the defaults, as in kohya."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    if args.config_file:
        values.update(read_config_file(Path(args.config_file)))
    values.update({k: v for k, v in vars(args).items() if v is not None and k not in _IGNORED})
    return config_from_dict(values)


def read_config_file(path: Path) -> dict[str, Any]:
    """A kohya `--config_file` TOML: top-level keys or any sections (kohya_ss GUI writes sections), flattened."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UserInputError(f"cannot read config_file {path}: {error}") from error
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def config_from_dict(values: dict[str, Any]) -> TrainingConfig:
    """A config from JSON/TOML/form values; unknown keys are an error so typos do not pass silently."""
    known = {item.name: item for item in fields(TrainingConfig)}
    unknown = sorted(set(values) - set(known) - _IGNORED)
    if unknown:
        raise UserInputError(f"unknown training option(s): {', '.join(unknown)}")
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if key in _IGNORED or value is None:
            continue
        kind = str(known[key].type)
        try:
            if kind == "bool":
                cleaned[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif kind.startswith("list"):
                cleaned[key] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value).split()
            elif kind.startswith("int"):
                cleaned[key] = int(value)
            elif kind.startswith("float"):
                cleaned[key] = float(value)
            elif key == "resolution" and isinstance(value, (list, tuple, int)):
                cleaned[key] = ",".join(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
            else:
                cleaned[key] = str(value)
        except (TypeError, ValueError) as error:
            raise UserInputError(f"training option {key}: {value!r} is not a valid {kind}") from error
    return TrainingConfig(**cleaned).check()
