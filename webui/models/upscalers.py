"""Upscaler model files (ESRGAN, RealESRGAN, SwinIR, DAT …): scanning, safe loading through spandrel, tiled runs."""
from __future__ import annotations

import difflib
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from webui.errors import ModelFileError, UserInputError
from webui.models.checkpoint_io import load_tensors
from webui.models.device import DeviceConfig, device_config
from webui.models.spandrel_import import import_spandrel
from webui.paths import model_files

UPSCALER_EXTENSIONS = (".pth", ".pt", ".safetensors")
# A1111's ESRGAN_tile / ESRGAN_tile_overlap defaults: tiles of 192 px keep a 4x model's activations small.
DEFAULT_TILE = 192
DEFAULT_OVERLAP = 8
# A1111 lists the RealESRGAN/SwinIR/DAT files it knows under display names, and infotexts carry those names
# ("Hires upscaler: R-ESRGAN 4x+"); the same files answer to them here (and to their stems). Keys: lower stems.
A1111_NAMES = {
    "realesrgan_x4plus": "R-ESRGAN 4x+",
    "realesrgan_x4plus_anime_6b": "R-ESRGAN 4x+ Anime6B",
    "realesrgan_x2plus": "R-ESRGAN 2x+",
    "realesr-general-x4v3": "R-ESRGAN General 4xV3",
    "realesr-general-wdn-x4v3": "R-ESRGAN General WDN 4xV3",
    "realesr-animevideov3": "R-ESRGAN AnimeVideo",
    "swinir_4x": "SwinIR 4x",
    "003_realsr_bsrgan_dfo_s64w8_swinir-m_x4_gan": "SwinIR 4x",
    "dat_x2": "DAT x2",
    "dat_x3": "DAT x3",
    "dat_x4": "DAT x4",
}


@dataclass(frozen=True)
class UpscalerEntry:
    """One model file found in an upscaler folder; `name` is A1111's name for it: its stem, or a known
    display name (A1111_NAMES); the stem always works for look-ups too."""

    name: str
    path: Path
    kind: str  # the folder it came from: ESRGAN, RealESRGAN, SwinIR, DAT …


@dataclass
class LoadedUpscaler:
    """A spandrel image model ready to run; `scale` is what the architecture reports (1, 2, 4 …)."""

    name: str
    path: Path
    descriptor: Any  # spandrel.ImageModelDescriptor
    dtype: torch.dtype

    @property
    def scale(self) -> int:
        return int(self.descriptor.scale)

    @property
    def architecture(self) -> str:
        return str(self.descriptor.architecture.name)

    def upscale_tensor(self, image: torch.Tensor, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                       check: Callable[[], None] | None = None) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] on the CPU → (1, 3, H·s, W·s) on the CPU; `tile` 0 runs the whole image.

        `check` runs before every tile and may raise to stop (the job's Interrupt).
        """
        device = self.descriptor.device

        def run(part: torch.Tensor) -> torch.Tensor:
            if check is not None:
                check()
            out = self.descriptor(part.to(device=device, dtype=self.dtype))
            return out.float().cpu()

        tiling = str(getattr(self.descriptor.tiling, "name", "SUPPORTED"))
        if tile <= 0 or tiling == "INTERNAL":
            return run(image)  # INTERNAL: the model tiles by itself and needs the whole picture
        return run_tiled(run, image, self.scale, tile, overlap)


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride tile-overlap, the last one flush with the end."""
    if size <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """Per-pixel weights along one tile axis for blending with its neighbours.

    On an edge shared with a neighbour the weight is 0 over the outer quarter of the overlap (pixels that
    saw the tile's zero padding), rises linearly over the middle half and is 1 beyond; the neighbour's
    mirror-image ramp makes the two sum to exactly 1 across an overlap of `overlap` pixels.
    """
    weights = torch.ones(length)
    width = min(overlap, length // 2)
    if width > 0:
        index = torch.arange(width, dtype=torch.float32) + 0.5
        rising = ((index - width / 4) / (width / 2)).clamp(0.0, 1.0)
        if ramp_start:
            weights[:width] = rising
        if ramp_end:
            weights[length - width:] = rising.flip(0)
    return weights


def run_tiled(run: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, scale: int, tile: int,
              overlap: int) -> torch.Tensor:
    """Run `run` on overlapping tiles of `image` (1, C, H, W) and blend the scaled outputs with linear ramps."""
    _, _, height, width = image.shape
    if height <= tile and width <= tile:
        return run(image)
    overlap = max(0, min(overlap, tile // 2))  # a stride of at least half a tile keeps the tile count sane
    ys, xs = _tile_starts(height, tile, overlap), _tile_starts(width, tile, overlap)
    output: torch.Tensor | None = None
    # The tiles form a grid and each weight is a row ramp times a column ramp, so the summed weights are
    # the outer product of two 1-D sums: no full-size weight image is needed (it would be 1/3 of the output).
    sum_y = torch.zeros(height * scale)
    sum_x = torch.zeros(width * scale)
    for row, y in enumerate(ys):
        for x in xs:
            part = image[:, :, y:y + tile, x:x + tile]
            result = run(part)
            if output is None:
                output = torch.zeros(1, result.shape[1], height * scale, width * scale)
            h, w = result.shape[-2:]
            wy = _ramp(h, overlap * scale, y > 0, y + part.shape[-2] < height)
            wx = _ramp(w, overlap * scale, x > 0, x + part.shape[-1] < width)
            oy, ox = y * scale, x * scale
            output[:, :, oy:oy + h, ox:ox + w] += result * (wy[:, None] * wx[None, :])
            if row == 0:
                sum_x[ox:ox + w] += wx
        sum_y[y * scale:y * scale + h] += wy
    assert output is not None
    output /= sum_y[:, None]
    output /= sum_x[None, :]
    return output


def _load_pickle(path: Path) -> dict:
    try:
        # weights_only refuses pickled code; spandrel's own loader would use a looser unpickler.
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ModelFileError(f"{path.name} was refused: its pickle holds more than plain tensors "
                             f"({str(error).splitlines()[0][:200]}); convert it to .safetensors") from error
    except Exception as error:  # a damaged pickle can fail in the unpickler with almost any error type
        raise ModelFileError(f"{path.name} is corrupt or not a PyTorch weights file: "
                             f"{(str(error).splitlines() or [type(error).__name__])[0][:200]}") from error
    if not isinstance(loaded, dict):
        raise ModelFileError(f"{path.name} does not contain a state dict")
    return loaded


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The model's tensors, unwrapped the way spandrel expects (params_ema, module. prefixes …)."""
    spandrel = import_spandrel()
    raw: dict = load_tensors(path) if path.suffix.lower() == ".safetensors" else _load_pickle(path)
    state = spandrel.canonicalize_state_dict(raw)
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelFileError(f"{path.name} contains no tensors")
    return tensors


class UpscalerLibrary:
    """The upscaler files under the given folders; keeps the most recently used model loaded."""

    def __init__(self, folders: Sequence[Path], device: DeviceConfig | None = None,
                 tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> None:
        self.folders = [Path(folder) for folder in folders]
        self.device = device
        self.tile = tile
        self.overlap = overlap
        self._lock = threading.RLock()
        self._entries: dict[str, UpscalerEntry] | None = None
        self._loaded: tuple[tuple, LoadedUpscaler] | None = None

    def refresh(self) -> list[UpscalerEntry]:
        """Walk the folders again (recursively); files whose real location leaves the folder are ignored."""
        entries: dict[str, UpscalerEntry] = {}
        for root in self.folders:
            for path in model_files(root, UPSCALER_EXTENSIONS):
                name = A1111_NAMES.get(path.stem.lower(), path.stem)
                entries.setdefault(name, UpscalerEntry(name, path, root.name))  # first folder wins
        with self._lock:
            self._entries = entries
        return self.entries()

    def entries(self) -> list[UpscalerEntry]:
        """All files, sorted case-insensitively by name (A1111's order after None/Lanczos/Nearest)."""
        with self._lock:
            if self._entries is None:
                self.refresh()
            assert self._entries is not None
            return sorted(self._entries.values(), key=lambda entry: entry.name.lower())

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries()]

    def resolve(self, name: str) -> UpscalerEntry:
        """Look `name` up among scanned files only (never joined to a path, so `../x` cannot escape)."""
        with self._lock:
            for attempt in range(2):
                if attempt or self._entries is None:
                    self.refresh()
                assert self._entries is not None
                if name in self._entries:
                    return self._entries[name]
                for key, entry in sorted(self._entries.items()):
                    if name.casefold() in (key.casefold(), entry.path.stem.casefold()):
                        return entry
            known = sorted(self._entries or {}, key=str.lower)
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UserInputError(f"Unknown upscaler model {name!r}.{hint} Upscaler models found: "
                                 f"{', '.join(known) or 'none'} (put files in "
                                 f"{', '.join(str(folder) for folder in self.folders)})")

    def load(self, name: str) -> LoadedUpscaler:
        """The model for `name`, kept loaded until another one is asked for (or the file changes)."""
        with self._lock:
            entry = self.resolve(name)
            try:
                stat = entry.path.stat()
            except OSError as error:
                raise ModelFileError(f"{entry.path.name} can no longer be read: {error}") from error
            key = (str(entry.path), stat.st_mtime_ns, stat.st_size)
            if self._loaded is not None and self._loaded[0] == key:
                return self._loaded[1]
            self._loaded = None  # free the previous model before the next one is read
            loaded = self._load_entry(entry)
            self._loaded = (key, loaded)
            return loaded

    def unload(self) -> None:
        with self._lock:
            self._loaded = None

    def _load_entry(self, entry: UpscalerEntry) -> LoadedUpscaler:
        spandrel = import_spandrel()
        state = read_state_dict(entry.path)
        try:
            descriptor = spandrel.ModelLoader(torch.device("cpu")).load_from_state_dict(state)
        except spandrel.UnsupportedModelError as error:
            raise ModelFileError(f"{entry.path.name} is not an upscaler model spandrel recognises "
                                 f"(ESRGAN, RealESRGAN, SwinIR, DAT, SPAN, …)") from error
        except (KeyError, RuntimeError, ValueError, IndexError, AssertionError) as error:
            raise ModelFileError(f"{entry.path.name} looks like an upscaler but its weights do not fit the "
                                 f"architecture: {(str(error).splitlines() or [''])[0][:200]}") from error
        if not isinstance(descriptor, spandrel.ImageModelDescriptor):
            raise ModelFileError(f"{entry.path.name} is a {descriptor.architecture.name} model "
                                 f"({descriptor.purpose}), not an image upscaler")
        if descriptor.purpose == "FaceSR":
            raise ModelFileError(f"{entry.path.name} is a face restoration model ({descriptor.architecture.name}), "
                                 f"not an upscaler")
        if (descriptor.input_channels, descriptor.output_channels) != (3, 3):
            raise ModelFileError(f"{entry.path.name} works on {descriptor.input_channels}-channel images; "
                                 f"only RGB (3-channel) upscalers are supported")
        config = self.device or device_config()
        dtype = config.dtype if descriptor.supports_half or config.dtype == torch.float32 else torch.float32
        if dtype == torch.bfloat16 and not descriptor.supports_bfloat16:
            dtype = torch.float32
        descriptor.to(config.device).to(dtype).eval()
        return LoadedUpscaler(entry.name, entry.path, descriptor, dtype)
