"""The typed request that the UI, the API and scripts all hand to processing (one schema per operation)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from webui.errors import UserInputError
from webui.sampling.names import resolve_sampler

EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None")
MAX_SIDE = 4096


class Txt2ImgRequest(BaseModel):
    """Everything that decides a txt2img result; same request + same machine = same pixels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = ""
    negative_prompt: str = ""
    steps: int = Field(20, ge=1, le=500)
    sampler_name: str = "DPM++ 2M"
    scheduler: str = "Automatic"
    cfg_scale: float = Field(7.0, ge=0.0, le=100.0)
    width: int = Field(512, ge=64, le=MAX_SIDE)
    height: int = Field(512, ge=64, le=MAX_SIDE)
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = Field(0.0, ge=0.0, le=1.0)
    seed_resize_from_w: int = Field(0, ge=0, le=MAX_SIDE)
    seed_resize_from_h: int = Field(0, ge=0, le=MAX_SIDE)
    batch_size: int = Field(1, ge=1, le=64)
    n_iter: int = Field(1, ge=1, le=1000)
    clip_skip: int = Field(1, ge=1, le=12)
    emphasis: str = "Original"
    eta: float | None = Field(None, ge=0.0, le=10.0)
    s_churn: float = Field(0.0, ge=0.0)
    s_tmin: float = Field(0.0, ge=0.0)
    s_tmax: float = Field(0.0, ge=0.0)
    s_noise: float = Field(1.0, ge=0.0)
    eta_noise_seed_delta: int = Field(0, ge=0)  # A1111's ENSD: re-seeds the noise of ancestral/SDE steps
    checkpoint: str | None = None  # None: the loaded one
    vae: str = "Automatic"  # "Automatic", "None" or a file name from models/VAE
    save_images: bool = True
    save_grid: bool = True

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            lower = value - value % 8
            raise ValueError(f"must be a multiple of 8 (got {value}; try {lower} or {lower + 8})")
        return value

    @field_validator("emphasis")
    @classmethod
    def _known_emphasis(cls, value: str) -> str:
        if value not in EMPHASIS_MODES:
            raise ValueError(f"unknown emphasis mode {value!r}; use one of {', '.join(EMPHASIS_MODES)}")
        return value

    @model_validator(mode="after")
    def _known_sampler(self) -> "Txt2ImgRequest":
        resolve_sampler(self.sampler_name, self.scheduler)  # raises UnknownSamplerError (a ValueError)
        return self


def make_request(cls: type[BaseModel], data: dict[str, Any]) -> Any:
    """Build a request, turning pydantic's report into one readable UserInputError."""
    try:
        return cls(**data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ())) or "request"
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise UserInputError("Invalid request: " + "; ".join(problems)) from None
