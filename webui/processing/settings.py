"""User settings persisted in config.json, named as A1111's options so the UI and /sdapi/v1/options share them."""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from webui.errors import UserInputError
from webui.files import atomic_write_text, read_with_backup
from webui.processing.request import known_emphasis
from webui.sampling.names import resolve_sampler

log = logging.getLogger(__name__)


class Settings(BaseModel):
    """Option names follow A1111's `config.json`; extend here, never with ad-hoc dicts elsewhere."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    sd_model_checkpoint: str | None = None
    sd_vae: str = "Automatic"
    CLIP_stop_at_last_layers: int = Field(1, ge=1, le=12)
    emphasis: str = "Original"
    comma_padding_backtrack: int = Field(20, ge=0, le=74)
    live_previews_enable: bool = True
    show_progress_every_n_steps: int = Field(3, ge=0, le=100)  # preview period: 6 in a 20-step job; 0 = off
    extra_networks_default_multiplier: float = Field(1.0, ge=-10.0, le=10.0)
    keyedit_precision_attention: float = Field(0.1, ge=0.01, le=0.2)  # Ctrl+Up/Down step for (text:weight)
    keyedit_precision_extra: float = Field(0.05, ge=0.01, le=0.2)  # Ctrl+Up/Down step for <lora:name:weight>
    # Form defaults: A1111 keeps these in ui-config.json ("txt2img/Sampling steps/value"); we keep one file.
    default_sampler_name: str = "DPM++ 2M"
    default_scheduler: str = "Automatic"
    default_steps: int = Field(20, ge=1, le=150)
    # 0: the loaded model's native size (512 for SD1, 1024 for SDXL, 64 for the demo), as the UI and API default.
    default_width: int = Field(0, ge=0, le=2048, multiple_of=8)
    default_height: int = Field(0, ge=0, le=2048, multiple_of=8)
    default_cfg_scale: float = Field(7.0, ge=1.0, le=30.0)
    samples_format: str = Field("png", pattern="^(png|jpg|jpeg|webp|avif)$")
    samples_filename_pattern: str = ""
    save_to_dirs: bool = True
    outdir_samples: str = ""  # one folder for every mode's images; relative to (and kept inside) the data folder
    localization: str = Field("Auto", pattern="^(Auto|None|en|zh-CN)$")  # Auto (A1111: None) = the browser language

    @field_validator("default_width", "default_height")
    @classmethod
    def _size_or_model(cls, value: int) -> int:
        if 0 < value < 64:
            raise ValueError("must be 0 (the model's native size) or at least 64")
        return value

    # Checked when stored (POST /options, the Settings tab), not when the next generation trips over them.
    @field_validator("emphasis")
    @classmethod
    def _known_emphasis(cls, value: str) -> str:
        return known_emphasis(value)

    @model_validator(mode="after")
    def _known_default_sampler(self) -> "Settings":
        resolve_sampler(self.default_sampler_name, self.default_scheduler)  # UnknownSamplerError is a ValueError
        return self


def _parse_config(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("config.json does not hold a table of settings")
    return data


class SettingsStore:
    """Holds the current Settings and writes them back to config.json on every change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._settings = self._read()

    @property
    def current(self) -> Settings:
        return self._settings

    def _read(self) -> Settings:
        data, note = read_with_backup(self.path, _parse_config)
        self.load_note = note or ""  # shown in the Settings tab; "" when config.json itself was read
        if note:
            log.warning("%s", note)
        if not isinstance(data, dict):
            return Settings()
        known = {k: v for k, v in data.items() if k in Settings.model_fields}
        try:
            return Settings(**known)
        except ValidationError as error:
            # Keep every good value; only the invalid ones fall back to their defaults.
            bad = {str(item["loc"][0]) for item in error.errors() if item.get("loc")}
            log.warning("Ignoring invalid values in %s: %s", self.path, ", ".join(sorted(bad)) or error)
            try:
                return Settings(**{k: v for k, v in known.items() if k not in bad})
            except ValidationError:
                return Settings()

    def update(self, changes: dict[str, Any]) -> Settings:
        """Validate all changes first; apply none of them if any is wrong."""
        unknown = sorted(set(changes) - set(Settings.model_fields))
        if unknown:
            raise UserInputError(f"Unknown setting(s): {', '.join(unknown)}")
        with self._lock:
            try:
                updated = Settings(**{**self._settings.model_dump(), **changes})
            except ValidationError as error:
                raise UserInputError(f"Invalid setting: {error.errors()[0].get('msg')}") from None
            self._settings = updated
            # temp file + fsync + rename, keeping the previous good copy as config.json.bak for _read
            atomic_write_text(self.path, json.dumps(updated.model_dump(), indent=2), keep_backup=True)
            return updated
