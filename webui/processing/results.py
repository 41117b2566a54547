"""What processing returns: one record per image (picture, infotext, seeds, prompt, file, parameters) and the job."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass
class ImageResult:
    """One finished picture and everything known about it, so no adapter has to re-parse its infotext."""

    image: Image.Image
    infotext: str
    seed: int
    subseed: int
    prompt: str
    negative_prompt: str = ""
    path: str | None = None  # where it was saved; None when saving was off
    parameters: dict[str, Any] = field(default_factory=dict)  # the infotext's values, unformatted (None: absent)


@dataclass
class GenerationResult:
    """A generation job's outcome: its image records in order, the grid, and messages for the user.

    `images`, `infotexts`, `seeds`, `subseeds` and `paths` are read-only views of the records (the seeds of the
    images actually returned, so a skip or an interrupt never misaligns them); add images with `add`.
    """

    items: list[ImageResult] = field(default_factory=list)
    grid: Image.Image | None = None
    grid_infotext: str | None = None  # a script's grid has its own (None: the first image's)
    grid_path: str | None = None  # where a script saved its grid
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def images(self) -> list[Image.Image]:
        return [item.image for item in self.items]

    @property
    def infotexts(self) -> list[str]:
        return [item.infotext for item in self.items]

    @property
    def seeds(self) -> list[int]:
        return [item.seed for item in self.items]

    @property
    def subseeds(self) -> list[int]:
        return [item.subseed for item in self.items]

    @property
    def paths(self) -> list[str]:
        """Files written, in image order (images that were not saved have none)."""
        return [item.path for item in self.items if item.path is not None]

    def add(self, item: ImageResult) -> None:
        self.items.append(item)

    def extend(self, other: GenerationResult) -> None:
        """Append another job's images and warnings (batch img2img gathers one result per input picture)."""
        self.items += other.items
        self.warnings += other.warnings
        self.interrupted = self.interrupted or other.interrupted
