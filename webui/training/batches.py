"""Per-step inputs: caption processing (shuffle, keep_tokens, dropout), image loading, latent caching, batches."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from webui.files import atomic_target
from webui.training.buckets import Size, crop_box
from webui.training.dataset import DatasetError, ImageItem


@dataclass(frozen=True)
class CaptionOptions:
    shuffle_caption: bool = False
    keep_tokens: int = 0
    caption_dropout_rate: float = 0.0


def process_caption(caption: str, options: CaptionOptions, generator: torch.Generator) -> str:
    """kohya's order: whole-caption dropout, then shuffle the comma tags after the first `keep_tokens`."""
    if options.caption_dropout_rate > 0 and torch.rand((), generator=generator).item() < options.caption_dropout_rate:
        return ""
    if not options.shuffle_caption:
        return caption
    tags = [tag.strip() for tag in caption.split(",") if tag.strip()]
    fixed, rest = tags[:options.keep_tokens], tags[options.keep_tokens:]
    order = torch.randperm(len(rest), generator=generator).tolist()
    return ", ".join(fixed + [rest[i] for i in order])


def flip_aug_of(item: ImageItem, default: bool) -> bool:
    """A subset's `flip_aug` from --dataset_config wins over the global flag (kohya's per-subset option)."""
    return default if item.subset.flip_aug is None else bool(item.subset.flip_aug)


def draw_flips(batch: list[ImageItem], default: bool, generator: torch.Generator) -> list[bool]:
    """Mirror each image with probability 1/2 where its subset flips; a coin is drawn only for those, so runs
    without flip_aug consume no random numbers."""
    return [bool(flip_aug_of(item, default) and torch.rand((), generator=generator).item() < 0.5) for item in batch]


def load_pixels(path: Path, bucket: Size) -> torch.Tensor:
    """RGB in [-1, 1], [3, H, W]: scaled to cover the bucket (area filter down, Lanczos up), centre-cropped."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    resized, box = crop_box(rgb.size, bucket)
    shrinking = resized[0] < rgb.size[0]
    rgb = rgb.resize(resized, Image.Resampling.BOX if shrinking else Image.Resampling.LANCZOS).crop(box)
    array = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def latent_cache_path(item: ImageItem) -> Path:
    """kohya's on-disk cache name: `<stem>_<WWWW>x<HHHH>_sd.npz` next to the image."""
    return item.path.with_name(f"{item.path.stem}_{item.bucket[0]:04d}x{item.bucket[1]:04d}_sd.npz")


class LatentSource:
    """Latents per (image, flipped): encoded on demand or cached in memory / on disk before training."""

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], flip_aug: bool, cache: bool,
                 to_disk: bool) -> None:
        self.encode = encode
        self.flip_aug = flip_aug
        self.cache = cache or to_disk
        self.to_disk = to_disk
        self._memory: dict[tuple[Path, bool], torch.Tensor] = {}

    def fill_cache(self, items: list[ImageItem], should_stop: Callable[[], bool],
                   report: Callable[[int, int], None] | None = None) -> None:
        """Encode every image once (and its mirror with flip_aug); a stop request ends it with a clear message."""
        if not self.cache:
            return
        for index, item in enumerate(items):
            if should_stop():
                raise DatasetError("stopped while caching latents; nothing was trained and no LoRA was written")
            self._memory.update(self._cached(item))
            if report is not None:
                report(index + 1, len(items))

    def _cached(self, item: ImageItem) -> dict[tuple[Path, bool], torch.Tensor]:
        disk = latent_cache_path(item)
        if self.to_disk and disk.is_file():
            try:
                with np.load(disk) as data:
                    found = {(item.path, False): torch.from_numpy(data["latents"])}
                    if "latents_flipped" in data:
                        found[(item.path, True)] = torch.from_numpy(data["latents_flipped"])
                if not flip_aug_of(item, self.flip_aug) or (item.path, True) in found:
                    return found
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is simply rebuilt
        pixels = load_pixels(item.path, item.bucket)
        flips = flip_aug_of(item, self.flip_aug)
        found = {(item.path, False): self.encode(pixels[None])[0]}
        if flips:
            found[(item.path, True)] = self.encode(pixels.flip(-1)[None])[0]
        if self.to_disk:
            arrays = {"latents": found[(item.path, False)].numpy()}
            if flips:
                arrays["latents_flipped"] = found[(item.path, True)].numpy()
            with atomic_target(disk) as partial, open(partial, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]
        return found

    def latents(self, item: ImageItem, flipped: bool) -> torch.Tensor:
        key = (item.path, flipped)
        if key in self._memory:
            return self._memory[key]
        pixels = load_pixels(item.path, item.bucket)
        return self.encode((pixels.flip(-1) if flipped else pixels)[None])[0]


def epoch_batches(entries: list[ImageItem], batch_size: int, seed: int, epoch: int) -> list[list[ImageItem]]:
    """Batches of one epoch: shuffled within each bucket, batch order shuffled, a function of (seed, epoch) only
    so that a resumed run walks the same batches."""
    generator = torch.Generator().manual_seed(seed * 1000003 + epoch)
    by_bucket: dict[Size, list[ImageItem]] = {}
    for item in entries:
        by_bucket.setdefault(item.bucket, []).append(item)
    batches: list[list[ImageItem]] = []
    for bucket in sorted(by_bucket):
        group = by_bucket[bucket]
        order = torch.randperm(len(group), generator=generator).tolist()
        shuffled = [group[i] for i in order]
        batches += [shuffled[i:i + batch_size] for i in range(0, len(shuffled), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def steps_per_epoch(batch_count: int, grad_accum: int) -> int:
    return math.ceil(batch_count / grad_accum)
