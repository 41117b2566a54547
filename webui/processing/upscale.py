"""A1111's upscalers: latent interpolation modes for hires fix, and None/Lanczos/Nearest/model upscalers for images."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from webui.errors import UserInputError
from webui.models.upscalers import UpscalerLibrary

# name → (torch interpolate mode, antialias), as A1111's shared.latent_upscale_modes.
LATENT_UPSCALE_MODES: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
BUILTIN_UPSCALERS = ("None", "Lanczos", "Nearest")
MAX_MODEL_PASSES = 3  # A1111 runs a model at most three times to reach the target size
MAX_SIDE = 16384  # beyond this PIL and the models' memory give out; refuse early with a message


def upscale_latents(latents: torch.Tensor, mode_name: str, height: int, width: int) -> torch.Tensor:
    """Interpolate (B, C, h, w) latents to (B, C, height, width) with one of LATENT_UPSCALE_MODES."""
    if mode_name not in LATENT_UPSCALE_MODES:
        raise UserInputError(f"Unknown latent upscale mode {mode_name!r}; use one of: "
                             f"{', '.join(LATENT_UPSCALE_MODES)}")
    if height < 1 or width < 1:
        raise UserInputError(f"latent size must be positive, got {width}x{height}")
    mode, antialias = LATENT_UPSCALE_MODES[mode_name]
    # torch only accepts align_corners / antialias for the (bi)linear and bicubic modes.
    options: dict[str, bool] = {}
    if mode in ("bilinear", "bicubic"):
        options = {"antialias": antialias, "align_corners": False}
    dtype = latents.dtype
    # bicubic/antialias kernels are missing for half precision on some devices; interpolate in fp32.
    result = F.interpolate(latents.float(), size=(height, width), mode=mode, **options)
    return result.to(dtype)


def upscaler_names(library: UpscalerLibrary | None) -> list[str]:
    """None, Lanczos, Nearest, then every model file by name (A1111's /upscalers order)."""
    return [*BUILTIN_UPSCALERS, *(library.names() if library is not None else [])]


def canonical_upscaler_name(name: str, library: UpscalerLibrary | None, *, latent: bool = True) -> str:
    """The listed spelling of any name hires fix or Extras accepts (a latent mode when `latent`, a built-in,
    or a model by display name, stem or other case), e.g. for the infotext; else an error listing them all."""
    if latent and name in LATENT_UPSCALE_MODES:
        return name
    if name in BUILTIN_UPSCALERS:
        return name
    if library is not None:
        try:
            return library.resolve(name).name
        except UserInputError:
            pass
    known = [*(LATENT_UPSCALE_MODES if latent else ()), *upscaler_names(library)]
    raise UserInputError(f"Unknown upscaler {name!r}; known upscalers: {', '.join(known)}")


def upscaler_list(library: UpscalerLibrary | None) -> list[dict[str, object]]:
    """A1111's GET /upscalers rows. Like A1111, `scale` is the nominal 4 (the real one is known once loaded)."""
    rows: list[dict[str, object]] = [
        {"name": name, "model_name": None, "model_path": None, "model_url": None, "scale": 4}
        for name in BUILTIN_UPSCALERS
    ]
    for entry in library.entries() if library is not None else []:
        rows.append({"name": entry.name, "model_name": entry.kind, "model_path": str(entry.path),
                     "model_url": None, "scale": 4})
    return rows


def _known_names(library: UpscalerLibrary | None) -> str:
    return ", ".join(upscaler_names(library))


def _check_size(width: int, height: int) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise UserInputError(f"target size {width}x{height} is out of range (1 to {MAX_SIDE} per side)")


def _resize(image: Image.Image, width: int, height: int, resample: Image.Resampling) -> Image.Image:
    if image.size == (width, height):
        return image.copy()
    return image.resize((width, height), resample)


def _pil_to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def _tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    # In place: at 8192² a float copy of the output is 800 MB; only the uint8 result is allocated anew.
    # inference_mode lets the in-place ops touch the model's output (an inference tensor when untiled).
    with torch.inference_mode():
        array = tensor.squeeze(0).clamp_(0, 1).mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


def _run_model(image: Image.Image, name: str, width: int, height: int, library: UpscalerLibrary,
               at_least_once: bool, check: Callable[[], None] | None = None) -> Image.Image:
    """Run the model (its own scale each pass) until the image covers width×height, at most 3 passes."""
    model = library.load(name)
    current = image.convert("RGB")
    for index in range(MAX_MODEL_PASSES):
        if current.width >= width and current.height >= height and (index > 0 or not at_least_once):
            break
        if current.width * model.scale > MAX_SIDE or current.height * model.scale > MAX_SIDE:
            break  # another pass would only be thrown away by the Lanczos step; stop before it eats memory
        before = current.size
        output = model.upscale_tensor(_pil_to_tensor(current), library.tile, library.overlap, check)
        current = _tensor_to_pil(output)
        if current.size == before:
            break  # a 1x (restoration) model: running it again would not get closer
    return current


def _require_model(name: str, library: UpscalerLibrary | None) -> UpscalerLibrary:
    """The library holding model `name`, or an error listing every upscaler the user can pick."""
    if library is not None:
        try:
            library.resolve(name)
            return library
        except UserInputError:
            pass
    raise UserInputError(f"Unknown upscaler {name!r}; known upscalers: {_known_names(library)}")


def upscale_image(image: Image.Image, upscaler_name: str, width: int, height: int,
                  library: UpscalerLibrary | None, check: Callable[[], None] | None = None) -> Image.Image:
    """Upscale to exactly width×height (A1111's images.resize_image with an upscaler name).

    "None" is a plain Lanczos resize. When the target is not larger (scale ≤ 1) every upscaler is a
    Lanczos resize, as in A1111. Otherwise "Lanczos"/"Nearest" resize with that filter, and a model
    runs (tiled) until the picture covers the target, then Lanczos gives the exact size.
    """
    _check_size(width, height)
    name = upscaler_name or "None"
    if name in LATENT_UPSCALE_MODES:
        raise UserInputError(f"{name!r} works on latents, not images; use one of: {_known_names(library)}")
    if name not in BUILTIN_UPSCALERS:
        library = _require_model(name, library)
    scale = max(width / image.width, height / image.height)
    if name == "None" or scale <= 1.0:
        return _resize(image, width, height, Image.Resampling.LANCZOS)
    if name == "Lanczos":
        return _resize(image, width, height, Image.Resampling.LANCZOS)
    if name == "Nearest":
        return _resize(image, width, height, Image.Resampling.NEAREST)
    assert library is not None  # _require_model checked it
    upscaled = _run_model(image, name, width, height, library, at_least_once=False, check=check)
    return _resize(upscaled, width, height, Image.Resampling.LANCZOS)


def upscale_by(image: Image.Image, upscaler_name: str, scale: float,
               library: UpscalerLibrary | None, check: Callable[[], None] | None = None) -> Image.Image:
    """Extras' "Scale by": A1111's Upscaler.upscale — the target is (size × scale) rounded down to a multiple
    of 8, a model runs at least once even at scale 1 (restoration models), the rest is a Lanczos resize.
    `check` runs before every model tile and may raise to stop (the job's Interrupt)."""
    if scale <= 0:
        raise UserInputError(f"upscale factor must be positive, got {scale}")
    width = int(image.width * scale // 8 * 8)
    height = int(image.height * scale // 8 * 8)
    if width < 8 or height < 8:
        raise UserInputError(f"{image.width}x{image.height} scaled by {scale} is below 8 pixels on a side")
    _check_size(width, height)
    name = upscaler_name or "None"
    if name in BUILTIN_UPSCALERS or name in LATENT_UPSCALE_MODES:
        return upscale_image(image, name, width, height, library, check)
    upscaled = _run_model(image, name, width, height, _require_model(name, library),
                          at_least_once=scale == 1, check=check)
    return _resize(upscaled, width, height, Image.Resampling.LANCZOS)
