"""kohya's DreamBooth folder layout (`10_sks dog/`) and `--dataset_config` TOML -> checked images, captions, counts."""
from __future__ import annotations

import json
import math
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from PIL import Image, UnidentifiedImageError

from webui.errors import UserInputError
from webui.training.buckets import (
    BucketSettings,
    Size,
    assign_bucket,
    bucket_info_json,
    bucket_resolutions,
    histogram,
    parse_resolution,
)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_FOLDER_NAME = re.compile(r"^(\d+)_(.*)$")
MIN_IMAGE_SIDE = 8


class DatasetError(UserInputError):
    """A dataset that cannot be trained on (empty, mis-laid, unreadable TOML); the message says how to fix it."""


@dataclass(frozen=True)
class Subset:
    """One image folder: how often it repeats per epoch, the class tokens used when a caption is missing."""

    image_dir: Path
    num_repeats: int = 1
    class_tokens: str = ""
    is_reg: bool = False
    caption_extension: str = ".txt"
    keep_tokens: int | None = None
    shuffle_caption: bool | None = None
    flip_aug: bool | None = None
    caption_dropout_rate: float | None = None


@dataclass(frozen=True)
class ImageItem:
    """One usable training image with its caption and the bucket it trains in."""

    path: Path
    caption: str
    size: Size
    subset: Subset
    bucket: Size = (0, 0)


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, and why."""

    path: Path
    reason: str


@dataclass
class DatasetPlan:
    """Everything known before training starts: images, skipped files, counts and buckets."""

    subsets: list[Subset]
    items: list[ImageItem]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    buckets: BucketSettings = field(default_factory=BucketSettings)

    @property
    def train_items(self) -> list[ImageItem]:
        return [item for item in self.items if not item.subset.is_reg]

    @property
    def reg_items(self) -> list[ImageItem]:
        return [item for item in self.items if item.subset.is_reg]

    @property
    def num_train_images(self) -> int:
        """Images × repeats over the training subsets (kohya's `ss_num_train_images`)."""
        return sum(item.subset.num_repeats for item in self.train_items)

    @property
    def num_reg_images(self) -> int:
        return sum(item.subset.num_repeats for item in self.reg_items)

    def epoch_entries(self) -> list[ImageItem]:
        """One epoch in a fixed order: each training image `repeats` times, then as many regularisation images
        (cycled) as there are training entries, as kohya balances them."""
        entries = [item for item in self.train_items for _ in range(item.subset.num_repeats)]
        regs = [item for item in self.reg_items for _ in range(item.subset.num_repeats)]
        if regs:
            entries += [regs[i % len(regs)] for i in range(len(entries))]
        return entries

    def bucket_counts(self) -> dict[Size, int]:
        entries = self.epoch_entries()
        return histogram((item.bucket, 1) for item in entries)

    def batches_per_epoch(self, batch_size: int) -> int:
        """A batch never mixes buckets, so each bucket rounds up on its own."""
        return sum(math.ceil(n / batch_size) for n in self.bucket_counts().values())

    def total_steps(self, batch_size: int, grad_accum: int, epochs: int) -> int:
        return math.ceil(self.batches_per_epoch(batch_size) / grad_accum) * epochs

    def mean_ar_error(self) -> float:
        errors = [abs(i.size[0] / i.size[1] - i.bucket[0] / i.bucket[1]) for i in self.items]
        return sum(errors) / len(errors) if errors else 0.0

    def bucket_info(self) -> str:
        return bucket_info_json(self.bucket_counts(), self.mean_ar_error())

    def tag_frequency(self) -> dict[str, dict[str, int]]:
        """`ss_tag_frequency`: per folder name, how many captions carry each comma-separated tag (lower case)."""
        result: dict[str, Counter[str]] = {}
        for item in self.train_items:
            counts = result.setdefault(item.subset.image_dir.name, Counter())
            counts.update({tag.strip().lower() for tag in item.caption.split(",") if tag.strip()})
        return {folder: dict(counts) for folder, counts in result.items()}

    def dataset_dirs(self, is_reg: bool = False) -> dict[str, dict[str, int]]:
        """`ss_dataset_dirs`: per folder, its repeats and image count."""
        out: dict[str, dict[str, int]] = {}
        for subset in self.subsets:
            if subset.is_reg == is_reg:
                count = sum(1 for item in self.items if item.subset is subset)
                out[subset.image_dir.name] = {"n_repeats": subset.num_repeats, "img_count": count}
        return out

    def summary(self, batch_size: int, grad_accum: int, epochs: int) -> str:
        lines = [f"{s.image_dir.name}: {sum(1 for i in self.items if i.subset is s)} images x {s.num_repeats} "
                 f"repeats{' (regularisation)' if s.is_reg else ''}" for s in self.subsets]
        per_epoch = self.batches_per_epoch(batch_size)
        lines.append(f"{self.num_train_images} images x repeats, {per_epoch} batches of {batch_size} per epoch, "
                     f"{self.total_steps(batch_size, grad_accum, epochs)} steps for {epochs} epochs")
        lines += [f"skipped {p.path.name}: {p.reason}" for p in self.problems]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def folder_subsets(train_data_dir: Path, reg_data_dir: Path | None = None,
                   caption_extension: str = ".txt") -> tuple[list[Subset], list[str]]:
    """`<repeats>_<class tokens>` folders under the given parents; other folders are ignored with a warning."""
    root = Path(train_data_dir)
    if not root.is_dir():
        raise DatasetError(f"train_data_dir {root} does not exist or is not a folder")
    warnings: list[str] = []
    subsets: list[Subset] = []
    for parent, is_reg in ((root, False), (Path(reg_data_dir) if reg_data_dir else None, True)):
        if parent is None:
            continue
        if not parent.is_dir():
            raise DatasetError(f"reg_data_dir {parent} does not exist or is not a folder")
        for folder in sorted(p for p in parent.iterdir() if p.is_dir()):
            match = _FOLDER_NAME.match(folder.name)
            if match is None:
                warnings.append(f"ignored folder {folder.name!r}: its name must be '<repeats>_<class tokens>', "
                                "e.g. '10_sks dog'")
                continue
            repeats = int(match.group(1))
            if repeats < 1:
                warnings.append(f"ignored folder {folder.name!r}: repeats must be at least 1")
                continue
            subsets.append(Subset(folder, repeats, match.group(2), is_reg, caption_extension))
    if not any(not s.is_reg for s in subsets):
        raise DatasetError(_no_data_message(root))
    return subsets, warnings


def _no_data_message(root: Path) -> str:
    """kohya's hint for the classic mistake of pointing at the `10_x/` folder itself."""
    hint = "train_data_dir must be the parent of folders with images named '<repeats>_<class tokens>'"
    has_images = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in root.iterdir() if p.is_file())
    if _FOLDER_NAME.match(root.name) or has_images:
        return (f"No data found in {root}: {hint}. It looks like you chose the image folder itself; "
                f"choose its parent {root.parent} instead.")
    return f"No data found in {root}: {hint} (e.g. {root / '10_sks dog'})."


# The --dataset_config keys this trainer applies; any other kohya key (random_crop, color_aug, caption_prefix, …) is
# named in a warning rather than silently dropped.
SUBSET_KEYS = frozenset({"image_dir", "num_repeats", "class_tokens", "is_reg", "caption_extension", "keep_tokens",
                         "shuffle_caption", "flip_aug", "caption_dropout_rate"})
DATASET_KEYS = frozenset({"resolution", "batch_size", "enable_bucket", "min_bucket_reso", "max_bucket_reso",
                          "bucket_reso_steps", "bucket_no_upscale"})


def toml_subsets(config_path: Path) -> tuple[list[Subset], dict[str, Any], list[str]]:
    """`--dataset_config`: [general] < [[datasets]] < [[datasets.subsets]]; returns the subsets, the dataset-level
    options (resolution, batch_size, bucket settings) of the first dataset, and warnings for keys it ignores."""
    try:
        data = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise DatasetError(f"cannot read dataset_config {config_path}: {error}") from error
    general = dict(data.get("general", {}))
    datasets = data.get("datasets") or []
    if not datasets:
        raise DatasetError(f"dataset_config {config_path} has no [[datasets]] table")
    subsets: list[Subset] = []
    dataset_options: dict[str, Any] = {}
    ignored: set[str] = set()
    for index, dataset in enumerate(datasets):
        merged = {**general, **{k: v for k, v in dataset.items() if k != "subsets"}}
        if index == 0:
            dataset_options = merged
        for raw in dataset.get("subsets") or []:
            options = {**merged, **raw}
            ignored.update(key for key in options if key not in SUBSET_KEYS | DATASET_KEYS)
            if "image_dir" not in options:
                raise DatasetError(f"dataset_config {config_path}: a subset has no image_dir")
            subsets.append(Subset(
                image_dir=Path(options["image_dir"]), num_repeats=int(options.get("num_repeats", 1)),
                class_tokens=str(options.get("class_tokens", "")), is_reg=bool(options.get("is_reg", False)),
                caption_extension=str(options.get("caption_extension", ".txt")),
                keep_tokens=options.get("keep_tokens"), shuffle_caption=options.get("shuffle_caption"),
                flip_aug=options.get("flip_aug"), caption_dropout_rate=options.get("caption_dropout_rate")))
    for subset in subsets:
        if not subset.image_dir.is_dir():
            raise DatasetError(f"dataset_config {config_path}: image_dir {subset.image_dir} is not a folder")
    warnings = [f"dataset_config: not supported, ignored: {', '.join(sorted(ignored))}"] if ignored else []
    return subsets, dataset_options, warnings


def read_caption(image: Path, subset: Subset) -> str:
    """The first line of `<stem><caption_extension>`, else the class tokens; raises ValueError for a bad file."""
    caption_file = image.with_suffix(subset.caption_extension)
    if not caption_file.is_file():
        if not subset.class_tokens:
            raise ValueError(f"no {subset.caption_extension} caption and the folder has no class tokens")
        return subset.class_tokens
    try:
        text = caption_file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"caption {caption_file.name} is not UTF-8 text ({error.reason} at byte {error.start})") \
            from error
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"caption {caption_file.name} is empty")
    return lines[0]


def image_size(path: Path) -> Size:
    """Width and height after checking that the file decodes; raises ValueError for corrupt or tiny files."""
    try:
        with Image.open(path) as image:
            image.load()
            size = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"not a readable image ({type(error).__name__}: {error})") from error
    if min(size) < MIN_IMAGE_SIDE:
        raise ValueError(f"too small ({size[0]}x{size[1]})")
    return size


def scan(subsets: list[Subset], buckets: BucketSettings, warnings: list[str] | None = None,
         should_stop: Callable[[], bool] | None = None) -> DatasetPlan:
    """Read every image header and caption once; bad files become `problems`, never an exception."""
    settings = buckets.checked()
    resolutions = bucket_resolutions(settings.resolution, settings.min_bucket_reso, settings.max_bucket_reso,
                                     settings.bucket_reso_steps)
    plan = DatasetPlan(subsets=subsets, items=[], warnings=list(warnings or []), buckets=settings)
    for subset in subsets:
        images = sorted(p for p in subset.image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            plan.warnings.append(f"folder {subset.image_dir.name!r} has no images")
        captions = [p for p in images if p.with_suffix(subset.caption_extension).is_file()]
        if images and not captions:
            others = {q.suffix for p in images for q in p.parent.glob(p.stem + ".*")
                      if q.suffix in (".txt", ".caption")}
            note = f" (found {', '.join(sorted(others))} files: set caption_extension)" if others else ""
            plan.warnings.append(f"folder {subset.image_dir.name!r}: no {subset.caption_extension} captions, "
                                 f"using the class tokens {subset.class_tokens!r}{note}")
        for path in images:
            if should_stop is not None and should_stop():
                raise DatasetError("stopped while reading the dataset; nothing was trained")
            try:
                size = image_size(path)
                caption = read_caption(path, subset)
            except ValueError as error:
                plan.problems.append(Problem(path, str(error)))
                continue
            plan.items.append(ImageItem(path, caption, size, subset, assign_bucket(size, settings, resolutions)))
    if not plan.train_items:
        raise DatasetError("no usable training images: " + ("; ".join(f"{p.path.name}: {p.reason}"
                                                                       for p in plan.problems[:5]) or "none found"))
    return plan


def load_dataset(train_data_dir: Path | None, reg_data_dir: Path | None, dataset_config: Path | None,
                 buckets: BucketSettings, caption_extension: str = ".txt",
                 should_stop: Callable[[], bool] | None = None) -> tuple[DatasetPlan, dict[str, Any]]:
    """The dataset from a TOML (which wins, as in kohya) or the folder layout; plus the TOML's dataset options."""
    if dataset_config:
        subsets, options, warnings = toml_subsets(Path(dataset_config))
        return scan(subsets, _toml_buckets(buckets, options), warnings, should_stop), options
    if train_data_dir is None:
        raise DatasetError("give train_data_dir (a parent of '<repeats>_<class tokens>' folders) or dataset_config")
    subsets, warnings = folder_subsets(Path(train_data_dir), reg_data_dir, caption_extension)
    return scan(subsets, buckets, warnings, should_stop), {}


def _toml_buckets(base: BucketSettings, options: dict[str, Any]) -> BucketSettings:
    keys = ("enable_bucket", "min_bucket_reso", "max_bucket_reso", "bucket_reso_steps", "bucket_no_upscale")
    changes: dict[str, Any] = {key: options[key] for key in keys if key in options}
    if "resolution" in options:
        changes["resolution"] = parse_resolution(options["resolution"])
    return replace(base, **changes)


def dataset_json(plan: DatasetPlan) -> str:
    """`ss_datasets`-style description of the subsets (for TOML datasets)."""
    return json.dumps([{"subsets": [{"image_dir": s.image_dir.name, "num_repeats": s.num_repeats,
                                     "class_tokens": s.class_tokens, "is_reg": s.is_reg} for s in plan.subsets]}])
