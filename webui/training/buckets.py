"""kohya's aspect-ratio buckets: the same bucket list for the same settings, image assignment and a histogram."""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from webui.errors import UserInputError

Size = tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class BucketSettings:
    """`--resolution`, `--enable_bucket`, `--min/max_bucket_reso`, `--bucket_reso_steps`, `--bucket_no_upscale`."""

    resolution: Size = (512, 512)
    enable_bucket: bool = False
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    bucket_reso_steps: int = 64
    bucket_no_upscale: bool = False

    def checked(self) -> "BucketSettings":
        """min/max rounded to multiples of the step (as kohya does), and the resolution inside them."""
        step = self.bucket_reso_steps
        if step <= 0 or step % 8:
            raise UserInputError(f"bucket_reso_steps must be a positive multiple of 8, not {step}")
        low = (self.min_bucket_reso // step) * step
        high = (self.max_bucket_reso // step) * step
        if self.enable_bucket and (min(self.resolution) < low or max(self.resolution) > high):
            raise UserInputError(f"resolution {self.resolution[0]},{self.resolution[1]} must lie within "
                                 f"min_bucket_reso {low} and max_bucket_reso {high}")
        return BucketSettings(self.resolution, self.enable_bucket, low, high, step, self.bucket_no_upscale)


def parse_resolution(text: str | int | Sequence[int]) -> Size:
    """kohya's `--resolution`: "512" or "512,768" (width,height)."""
    if isinstance(text, int):
        return (text, text)
    if not isinstance(text, str):
        values = [int(v) for v in text]
    else:
        try:
            values = [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
        except ValueError as error:
            raise UserInputError(f"resolution must be 'W' or 'W,H', not {text!r}") from error
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 8:
        raise UserInputError(f"resolution must be 'W' or 'W,H' with sizes >= 8, not {text!r}")
    return (values[0], values[1])


def bucket_resolutions(resolution: Size, min_size: int = 256, max_size: int = 1024, step: int = 64) -> list[Size]:
    """kohya's bucket list: the square of the same area, then every width in steps with the tallest height that
    keeps the area, plus its transpose; sorted."""
    area = resolution[0] * resolution[1]
    found: set[Size] = set()
    side = int(math.sqrt(area) // step) * step
    found.add((side, side))
    width = min_size
    while width <= max_size:
        height = min(max_size, int((area // width) // step) * step)
        if height >= min_size:
            found.add((width, height))
            found.add((height, width))
        width += step
    return sorted(found)


def assign_bucket(size: Size, settings: BucketSettings, buckets: Sequence[Size]) -> Size:
    """The bucket an image of `size` trains in: the nearest aspect ratio, or (no-upscale) its own size shrunk to
    the max area and rounded down to the step; without buckets, the training resolution."""
    if not settings.enable_bucket:
        return settings.resolution
    width, height = size
    if settings.bucket_no_upscale:
        area = settings.resolution[0] * settings.resolution[1]
        scale = min(1.0, math.sqrt(area / (width * height)))
        step = settings.bucket_reso_steps
        return (max(step, int(width * scale) // step * step), max(step, int(height * scale) // step * step))
    ratio = width / height
    return min(buckets, key=lambda b: abs(b[0] / b[1] - ratio))


def crop_box(size: Size, bucket: Size) -> tuple[Size, tuple[int, int, int, int]]:
    """Scale to cover `bucket`, then the centred crop box: (resized size, (left, top, right, bottom))."""
    width, height = size
    scale = max(bucket[0] / width, bucket[1] / height)
    resized = (max(bucket[0], round(width * scale)), max(bucket[1], round(height * scale)))
    left = (resized[0] - bucket[0]) // 2
    top = (resized[1] - bucket[1]) // 2
    return resized, (left, top, left + bucket[0], top + bucket[1])


def histogram(assigned: Iterable[tuple[Size, int]]) -> dict[Size, int]:
    """Images per bucket, each image counted `repeats` times (what one epoch trains)."""
    counts: Counter[Size] = Counter()
    for bucket, repeats in assigned:
        counts[bucket] += repeats
    return dict(sorted(counts.items()))


def bucket_info_json(counts: dict[Size, int], mean_ar_error: float) -> str:
    """`ss_bucket_info` as kohya writes it."""
    buckets = {str(i): {"resolution": [w, h], "count": n} for i, ((w, h), n) in enumerate(sorted(counts.items()))}
    return json.dumps({"buckets": buckets, "mean_img_ar_error": mean_ar_error})


def format_histogram(counts: dict[Size, int]) -> str:
    """One line per bucket with a bar, for the CLI and the Train tab."""
    if not counts:
        return "(no images)"
    top = max(counts.values())
    return "\n".join(f"{w:>5}x{h:<5} {n:>6}  {'#' * max(1, round(30 * n / top))}"
                     for (w, h), n in sorted(counts.items()))
