"""What a processing call needs besides its request: the model manager, libraries, settings and the queue."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from webui.conditioning.embedding_library import EmbeddingLibrary
from webui.models.device import DeviceConfig, device_config
from webui.models.hashing import HashCache
from webui.models.manager import ModelManager
from webui.models.registry import CheckpointRegistry
from webui.models.upscalers import UpscalerLibrary
from webui.networks import LoraLibrary
from webui.paths import Folders
from webui.processing.jobs import JobState
from webui.processing.previews import LatentPreviewer
from webui.processing.queue import GenerationQueue
from webui.processing.settings import Settings, SettingsStore
from webui.processing.styles import StyleStore

T = TypeVar("T")
STYLES_FILE = "styles.csv"  # in the data folder: the file A1111's style editor (and ours) writes


@dataclass
class Runtime:
    """Built once at start-up by the app; passed explicitly to every processing call (no globals)."""

    folders: Folders
    models: ModelManager
    embeddings: EmbeddingLibrary
    loras: LoraLibrary
    settings: SettingsStore
    upscalers: UpscalerLibrary
    styles: StyleStore
    previewer: LatentPreviewer = field(default_factory=LatentPreviewer)
    queue: GenerationQueue = field(default_factory=GenerationQueue)
    # Long-lived services of the layers above processing (the trainer, the tagger cache), one per app, so the UI
    # and the API share them; this layer never looks inside (it cannot import those layers).
    _services: dict[str, Any] = field(default_factory=dict, repr=False)
    _services_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def service(self, name: str, build: Callable[[], T]) -> T:
        """The app's one `name` service, built by `build` on first use."""
        with self._services_lock:
            if name not in self._services:
                self._services[name] = build()
            return cast(T, self._services[name])

    @property
    def registry(self) -> CheckpointRegistry:
        return self.models.registry

    def default_size(self, checkpoint: str | None = None, settings: Settings | None = None) -> tuple[int, int]:
        """(width, height) a form or API body starts with: the Settings defaults, where 0 means the native size
        of the checkpoint the job would use."""
        settings = settings or self.settings.current
        width, height = settings.default_width, settings.default_height
        if width and height:
            return width, height
        native = self.models.native_size(checkpoint if checkpoint is not None else settings.sd_model_checkpoint)
        return width or native, height or native

    def new_job(self, settings: Settings | None = None) -> JobState:
        """The one job factory for UI, API and scripts: a live preview every N steps, as `settings` say."""
        settings = settings or self.settings.current
        job = JobState()
        if settings.live_previews_enable and settings.show_progress_every_n_steps > 0:
            job.preview_every = settings.show_progress_every_n_steps
            # Looked up at preview time, on the generating thread that holds the model lock: the job's own model.
            job.make_preview = lambda latents: self.previewer.render(self.models.loaded, self.models.device, latents)
        return job


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
        StyleStore(folders.data / STYLES_FILE),
    )
