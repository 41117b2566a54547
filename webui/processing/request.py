"""The typed requests that the UI, the API and scripts all hand to processing (one schema per operation)."""
from __future__ import annotations

from enum import IntEnum
from typing import Any, Iterable, Mapping

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from webui.errors import UserInputError
from webui.prompts.limits import prompt_problem
from webui.sampling.names import SamplerName, ScheduleName, resolve_sampler

EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None")
MAX_SIDE = 4096
# Largest input picture img2img accepts by default (a 4096×4096 photo); requests may lower or raise it.
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
INPAINTING_FILLS = ("fill", "original", "latent noise", "latent nothing")


# torch seeds a generator with any 64-bit value; A1111 fails beyond that, so such seeds are refused (422).
# A1111 v1.10.1 does not wrap: get_fixed_seed (modules/processing.py) passes any int through, and
# rng.create_generator calls torch.Generator.manual_seed(int(seed)), which raises "Overflow when unpacking long long"
# for 2^64 and above (and below -2^63).
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


def known_emphasis(value: str) -> str:
    """`value` if it is one of EMPHASIS_MODES; the ValueError lists them."""
    if value not in EMPHASIS_MODES:
        raise ValueError(f"unknown emphasis mode {value!r}; use one of {', '.join(EMPHASIS_MODES)}")
    return value


def _checked_prompt(value: str) -> str:
    """A prompt within the documented limits (webui/prompts/limits.py); the message names the limit."""
    problem = prompt_problem(value)
    if problem:
        raise ValueError(f"the prompt {problem}")
    return value


class ResizeMode(IntEnum):
    """img2img resize mode, with A1111's values (its API and UI send these integers); labels in RESIZE_MODES."""

    JUST_RESIZE = 0
    CROP_AND_RESIZE = 1
    RESIZE_AND_FILL = 2
    LATENT_UPSCALE = 3


class InpaintingFill(IntEnum):
    """What the masked area starts from ("Masked content"), A1111's values; labels in INPAINTING_FILLS."""

    FILL = 0
    ORIGINAL = 1
    LATENT_NOISE = 2
    LATENT_NOTHING = 3


class MaskMode(IntEnum):
    """`inpainting_mask_invert`: which side of the mask is repainted."""

    INPAINT_MASKED = 0
    INPAINT_NOT_MASKED = 1


def _multiple_of_8(value: int) -> int:
    if value % 8:
        lower = value - value % 8
        raise ValueError(f"must be a multiple of 8 (got {value}; try {lower} or {lower + 8})")
    return value


class GenerationRequest(BaseModel):
    """The fields txt2img and img2img share, so the UI and API build both from one set of controls."""

    # allow_inf_nan: `s_noise: Infinity` and friends are refused here instead of failing deep in sampling.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    # (sampler_name, scheduler) -> resolved pair, filled by validation; `model_copy(update=...)` skips validation,
    # so a copy with other names resolves them on first use instead of keeping the old sampler.
    _resolved: dict[tuple[str, str], tuple[SamplerName, ScheduleName]] = PrivateAttr(default_factory=dict)

    prompt: str = ""
    negative_prompt: str = ""
    steps: int = Field(20, ge=1, le=500)
    sampler_name: str = "DPM++ 2M"
    scheduler: str = "Automatic"
    cfg_scale: float = Field(7.0, ge=0.0, le=100.0)
    width: int = Field(512, ge=64, le=MAX_SIDE)
    height: int = Field(512, ge=64, le=MAX_SIDE)
    seed: int = Field(-1, ge=SEED_MIN, le=SEED_MAX)
    subseed: int = Field(-1, ge=SEED_MIN, le=SEED_MAX)
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
    def _sizes_multiple_of_8(cls, value: int) -> int:
        return _multiple_of_8(value)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _within_prompt_limits(cls, value: str) -> str:
        return _checked_prompt(value)

    @field_validator("emphasis")
    @classmethod
    def _known_emphasis(cls, value: str) -> str:
        return known_emphasis(value)

    @model_validator(mode="after")
    def _known_sampler(self) -> "GenerationRequest":
        # The one place a request's sampler names are resolved; processing reads `sampler` and `schedule`.
        self._resolve(self.sampler_name, self.scheduler)  # UnknownSamplerError is a ValueError
        return self

    @model_validator(mode="after")
    def _seeds_fit_64_bits(self) -> "GenerationRequest":
        # Image i is seeded with seed + i (+ ENSD), its variation with subseed + i: each must stay within torch's 64
        # bits, past which A1111's create_generator fails too (see SEED_MAX).
        more = self.batch_size * self.n_iter - 1
        variation = self.subseed_strength > 0
        if self.seed != -1 and self.seed + (0 if variation else more) + self.eta_noise_seed_delta > SEED_MAX:
            raise ValueError(f"seed {self.seed} + {more} more images (+ ENSD {self.eta_noise_seed_delta}) goes past "
                             f"{SEED_MAX} (2^64 - 1), the largest seed; use a smaller seed")
        if variation and self.subseed != -1 and self.subseed + more > SEED_MAX:
            raise ValueError(f"subseed {self.subseed} + {more} more images goes past {SEED_MAX} (2^64 - 1), the "
                             f"largest seed; use a smaller variation seed")
        return self

    def _resolve(self, sampler_name: str, scheduler: str) -> tuple[SamplerName, ScheduleName]:
        key = (sampler_name, scheduler)
        if key not in self._resolved:
            self._resolved[key] = resolve_sampler(sampler_name, scheduler)
        return self._resolved[key]

    @property
    def sampler(self) -> SamplerName:
        return self._resolve(self.sampler_name, self.scheduler)[0]

    @property
    def schedule(self) -> ScheduleName:
        return self._resolve(self.sampler_name, self.scheduler)[1]


class Txt2ImgRequest(GenerationRequest):
    """Everything that decides a txt2img result; same request + same machine = same pixels."""

    enable_hr: bool = False
    hr_scale: float = Field(2.0, ge=1.0, le=8.0)
    hr_upscaler: str = "Latent"
    hr_second_pass_steps: int = Field(0, ge=0, le=500)  # 0: the first pass's steps
    hr_resize_x: int = Field(0, ge=0, le=MAX_SIDE * 2)  # 0 and 0: use hr_scale; one 0: keep the aspect
    hr_resize_y: int = Field(0, ge=0, le=MAX_SIDE * 2)
    denoising_strength: float = Field(0.7, ge=0.0, le=1.0)  # the hires pass's (A1111 UI default)
    hr_prompt: str = ""  # "": the first pass's prompt
    hr_negative_prompt: str = ""
    hr_sampler_name: str = ""  # "": the first pass's sampler
    hr_scheduler: str = ""  # "": the first pass's schedule type

    @field_validator("hr_prompt", "hr_negative_prompt")
    @classmethod
    def _hires_prompt_limits(cls, value: str) -> str:
        return _checked_prompt(value)

    @model_validator(mode="after")
    def _known_hires_sampler(self) -> "Txt2ImgRequest":
        self._resolve(self.hr_sampler_name or self.sampler_name, self.hr_scheduler or self.scheduler)
        return self

    @property
    def hires_sampler(self) -> SamplerName:
        """The second pass's sampler; empty hr names mean "the first pass's"."""
        return self._resolve(self.hr_sampler_name or self.sampler_name, self.hr_scheduler or self.scheduler)[0]

    @property
    def hires_schedule(self) -> ScheduleName:
        return self._resolve(self.hr_sampler_name or self.sampler_name, self.hr_scheduler or self.scheduler)[1]


class Img2ImgRequest(GenerationRequest):
    """img2img and inpainting, with A1111's field names and its UI defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    init_images: list[Image.Image]
    resize_mode: ResizeMode = ResizeMode.JUST_RESIZE  # the API keeps sending A1111's integers
    denoising_strength: float = Field(0.75, ge=0.0, le=1.0)
    image_cfg_scale: float | None = Field(None, ge=0.0, le=100.0)  # only instruct-pix2pix models use it
    initial_noise_multiplier: float = Field(1.0, ge=0.0, le=2.0)
    mask: Image.Image | None = None  # white = repaint
    mask_blur: int = Field(4, ge=0, le=64)
    inpainting_fill: InpaintingFill = InpaintingFill.ORIGINAL
    inpaint_full_res: bool = False  # "Inpaint area: Only masked"
    inpaint_full_res_padding: int = Field(32, ge=0, le=256)
    inpainting_mask_invert: MaskMode = MaskMode.INPAINT_MASKED
    max_input_pixels: int = Field(DEFAULT_MAX_INPUT_PIXELS, ge=64 * 64)

    @field_validator("init_images")
    @classmethod
    def _some_images(cls, value: list[Image.Image]) -> list[Image.Image]:
        if not value:
            raise ValueError("give at least one init image")
        return value

    @model_validator(mode="after")
    def _within_limits(self) -> "Img2ImgRequest":
        pictures = [(f"init image {i + 1}", image) for i, image in enumerate(self.init_images)]
        if self.mask is not None:
            pictures.append(("mask", self.mask))
        for name, image in pictures:
            pixels = image.width * image.height
            if pixels > self.max_input_pixels:
                raise ValueError(f"{name} is {image.width}x{image.height} = {pixels:,} pixels, above the limit of "
                                 f"{self.max_input_pixels:,} pixels (max_input_pixels); make it smaller first")
        if len(self.init_images) > 1 and len(self.init_images) > self.batch_size:
            raise ValueError(f"{len(self.init_images)} init images need a batch size of at least "
                             f"{len(self.init_images)} (got {self.batch_size})")
        return self


def describe_validation_errors(errors: Iterable[Mapping[str, Any]], default_place: str = "request") -> str:
    """pydantic's error list as `field: message; ...`: the one wording the UI, the API and the CLI show."""
    parts = []
    for item in errors:
        # "body" is FastAPI's prefix for fields of the JSON body; the field name alone is what the user wrote.
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or default_place
        parts.append(f"{where}: {str(item.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "; ".join(parts)


def make_request(cls: type[BaseModel], data: dict[str, Any]) -> Any:
    """Build a request, turning pydantic's report into one readable UserInputError."""
    try:
        return cls(**data)
    except ValidationError as error:
        raise UserInputError("Invalid request: " + describe_validation_errors(error.errors())) from None
