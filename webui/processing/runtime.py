"""What a processing call needs besides its request: the model manager, libraries, settings and the queue."""
from __future__ import annotations

from dataclasses import dataclass, field

from webui.conditioning.embedding_library import EmbeddingLibrary
from webui.models.device import DeviceConfig, device_config
from webui.models.hashing import HashCache
from webui.models.manager import ModelManager
from webui.models.registry import CheckpointRegistry
from webui.models.upscalers import UpscalerLibrary
from webui.networks import LoraLibrary
from webui.paths import Folders
from webui.processing.queue import GenerationQueue
from webui.processing.settings import SettingsStore


@dataclass
class Runtime:
    """Built once at start-up by the app; passed explicitly to every processing call (no globals)."""

    folders: Folders
    models: ModelManager
    embeddings: EmbeddingLibrary
    loras: LoraLibrary
    settings: SettingsStore
    upscalers: UpscalerLibrary
    queue: GenerationQueue = field(default_factory=GenerationQueue)

    @property
    def registry(self) -> CheckpointRegistry:
        return self.models.registry


def build_runtime(folders: Folders, device: DeviceConfig | None = None, *, hashing: bool = True) -> Runtime:
    cache = HashCache(folders.data / "cache.json")
    registry = CheckpointRegistry(folders.checkpoints, folders.vae, cache, hashing=hashing)
    manager = ModelManager(registry, device or device_config())
    return Runtime(
        folders,
        manager,
        EmbeddingLibrary(folders.embeddings),
        LoraLibrary(list(folders.lora)),
        SettingsStore(folders.data / "config.json"),
        UpscalerLibrary(list(folders.upscalers), manager.device),
    )
