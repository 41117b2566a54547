"""What a processing call needs besides its request: the model manager, folders and output settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from webui.conditioning.embedding_library import EmbeddingLibrary
from webui.models.device import DeviceConfig, device_config
from webui.models.hashing import HashCache
from webui.models.manager import ModelManager
from webui.networks import LoraLibrary
from webui.models.registry import CheckpointRegistry
from webui.models.upscalers import UpscalerLibrary
from webui.processing.queue import GenerationQueue
from webui.processing.settings import SettingsStore
from webui.paths import Folders


@dataclass(frozen=True)
class OutputSettings:
    """Where and how results are written (A1111's defaults)."""

    root: Path
    save_to_dated_folders: bool = True
    image_format: str = "png"


@dataclass
class Runtime:
    """Built once at start-up by the app; passed explicitly to every processing call (no globals)."""

    folders: Folders
    models: ModelManager
    outputs: OutputSettings
    embeddings: EmbeddingLibrary
    loras: LoraLibrary
    settings: SettingsStore
    queue: GenerationQueue = field(default_factory=GenerationQueue)
    upscalers: UpscalerLibrary = field(default=None)  # type: ignore[assignment]  # filled from folders below

    def __post_init__(self) -> None:
        if self.upscalers is None:
            self.upscalers = UpscalerLibrary(list(self.folders.upscalers), getattr(self.models, "device", None))

    @property
    def registry(self) -> CheckpointRegistry:
        return self.models.registry


def build_runtime(folders: Folders, device: DeviceConfig | None = None, *, hashing: bool = True) -> Runtime:
    cache = HashCache(folders.data / "cache.json")
    registry = CheckpointRegistry(folders.checkpoints, folders.vae, cache, hashing=hashing)
    manager = ModelManager(registry, device or device_config())
    return Runtime(folders, manager, OutputSettings(folders.outputs), EmbeddingLibrary(folders.embeddings),
                   LoraLibrary(list(folders.lora)), SettingsStore(folders.data / "config.json"),
                   upscalers=UpscalerLibrary(list(folders.upscalers), manager.device))
