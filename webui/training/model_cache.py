"""Keeps the last captioning model of a kind loaded, so a folder of images or repeated requests load it once."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from webui.errors import UserInputError
from webui.paths import resolve_inside

Model = TypeVar("Model")


class LastLoaded(Generic[Model]):
    """Models of one kind (taggers, BLIP) in one folder; `get` loads by folder name and keeps the last one."""

    def __init__(self, kind: str, folder: Path, list_names: Callable[[Path], list[str]],
                 load: Callable[[Path], Model], hint: Callable[[Path], str]) -> None:
        self.kind = kind
        self.folder = folder
        self._list_names = list_names
        self._load = load
        self._hint = hint
        self._loaded: tuple[str, Model] | None = None

    def names(self) -> list[str]:
        return self._list_names(self.folder)

    def hint(self) -> str:
        return self._hint(self.folder)

    def get(self, name: str) -> Model:
        if self._loaded is not None and self._loaded[0] == name:
            return self._loaded[1]
        available = self.names()
        if not name or name not in available:
            raise UserInputError(f"{self.kind} {name!r} not found. " +
                                 (f"Available: {', '.join(available)}" if available else self.hint()))
        self._loaded = None  # free the previous model before loading the next
        model = self._load(resolve_inside(self.folder, name))
        self._loaded = (name, model)
        return model
