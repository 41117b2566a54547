"""The one owner of mutable model state: which checkpoint is loaded, and the lock that serialises its use."""
from __future__ import annotations

import contextlib
import gc
import logging
import threading
from dataclasses import dataclass, field
from typing import Iterator

import torch

from webui.errors import ModelFileError, UserInputError
from webui.models.architectures import FALLBACK_NATIVE_SIZE
from webui.models.device import DeviceConfig
from webui.models.loader import LoadedComponents, load_components, resolve_architecture
from webui.models.registry import BUNDLED_DEMO_STEM, CheckpointInfo, CheckpointRegistry, VaeInfo
from webui.networks import LoraPatcher, ModelNames

log = logging.getLogger(__name__)

VAE_AUTOMATIC = "Automatic"
VAE_NONE = "None"


@dataclass
class LoadedModel:
    """A loaded checkpoint: its file, its modules, which VAE is in use, and the LoRA patcher bound to it."""

    checkpoint: CheckpointInfo
    components: LoadedComponents
    vae: VaeInfo | None
    short_hash: str | None
    keep_lora_backups: bool = False  # --lora-keep-backups: pristine copies outlive a restore (A1111's behaviour)
    _patcher: LoraPatcher | None = field(default=None, repr=False)
    _lora_names: ModelNames | None = field(default=None, repr=False)

    @property
    def architecture(self):
        return self.components.architecture

    def _network_targets(self) -> dict[str, torch.nn.Module]:
        targets: dict[str, torch.nn.Module] = {"unet": self.components.unet}
        targets.update({encoder.slot: encoder.model for encoder in self.components.text_encoders})
        return targets

    @property
    def lora_family(self) -> str | None:
        family = self.architecture.family
        return family if family in ("sd1", "sd2", "sdxl") else None

    def lora_names(self) -> ModelNames:
        """Module-name tables LoRA keys are matched against (built once per loaded model)."""
        if self._lora_names is None:
            self._lora_names = ModelNames.from_models(self._network_targets(), self.lora_family)
        return self._lora_names

    def lora_patcher(self) -> LoraPatcher:
        """One patcher per loaded model, so the merged stack survives between generations (near-free reuse)."""
        if self._patcher is None:
            self._patcher = LoraPatcher(self._network_targets(), self.lora_family, keep_backups=self.keep_lora_backups)
        return self._patcher


class ModelManager:
    """Loads checkpoints on demand; all generation happens inside `use()`, one job at a time."""

    def __init__(self, registry: CheckpointRegistry, device: DeviceConfig) -> None:
        self.registry = registry
        self.device = device
        self._lock = threading.RLock()
        self._loaded: LoadedModel | None = None
        self.loading: str | None = None  # the checkpoint being read from disk right now, for progress displays

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    @contextlib.contextmanager
    def use(self, checkpoint: str | None = None, vae: str = VAE_AUTOMATIC) -> Iterator[LoadedModel]:
        """Hold the model lock, make sure the wanted checkpoint and VAE are loaded, and yield them."""
        with self._lock:
            yield self._ensure(checkpoint, vae)

    def load(self, checkpoint: str | None = None, vae: str = VAE_AUTOMATIC) -> LoadedModel:
        with self._lock:
            return self._ensure(checkpoint, vae)

    def install(self, info: CheckpointInfo, components: LoadedComponents) -> LoadedModel:
        """Make components built elsewhere the loaded model for `info` (the device benchmark builds full-size
        random weights straight on the GPU instead of reading a multi-GB file)."""
        with self._lock:
            self._free()
            self._loaded = LoadedModel(info, components, None, None, self.device.lora_keep_backups)
            return self._loaded

    def native_size(self, checkpoint: str | None = None) -> int:
        """The training side (px) of the checkpoint a job would use, read from the loaded model or the file's
        sidecar/header without loading it; FALLBACK_NATIVE_SIZE when there is no checkpoint or it cannot be read."""
        try:
            info = self._pick_checkpoint(checkpoint)
            current = self._loaded
            if current is not None and current.checkpoint == info:
                return current.architecture.native_size
            return resolve_architecture(info.path).native_size
        except (UserInputError, ModelFileError, OSError) as error:
            log.debug("native size unknown (%s); using %d", error, FALLBACK_NATIVE_SIZE)
            return FALLBACK_NATIVE_SIZE

    def is_bundled_demo(self, checkpoint: str | None = None) -> bool:
        """Whether a job would run on the bundled demo checkpoint (the user has none of their own, or chose it)."""
        try:
            return self._pick_checkpoint(checkpoint).stem == BUNDLED_DEMO_STEM
        except UserInputError:
            return False

    def unload(self) -> None:
        with self._lock:
            self._free()

    def _ensure(self, checkpoint: str | None, vae: str) -> LoadedModel:
        info = self._pick_checkpoint(checkpoint)
        vae_info = self._pick_vae(info, vae)
        current = self._loaded
        if current is not None and current.checkpoint == info and current.vae == vae_info:
            return current
        # Check the new file before dropping the old model, so a bad choice leaves the app as it was.
        resolve_architecture(info.path)
        # Only the names: holding the LoadedModel would keep its weights alive while the new ones load.
        previous = (current.checkpoint, current.vae) if current else None
        self._free()
        self.loading = info.name
        try:
            components = load_components(info.path, self.device, vae_info.path if vae_info else None)
        except Exception:
            if previous is not None:
                self._reload_previous(*previous)
            raise
        finally:
            self.loading = None
        self._loaded = LoadedModel(info, components, vae_info, self.registry.short_hash(info),
                                   self.device.lora_keep_backups)
        log.info("Loaded %s (%s)%s", info.name, components.architecture.name,
                 f" with VAE {vae_info.name}" if vae_info else "")
        return self._loaded

    def _reload_previous(self, info: CheckpointInfo, vae_info: VaeInfo | None) -> None:
        try:
            components = load_components(info.path, self.device, vae_info.path if vae_info else None)
            self._loaded = LoadedModel(info, components, vae_info, self.registry.short_hash(info),
                                       self.device.lora_keep_backups)
        except (ModelFileError, OSError) as error:  # the old file changed on disk meanwhile
            log.error("Could not reload %s after a failed switch: %s", info.name, error)

    def _pick_checkpoint(self, query: str | None) -> CheckpointInfo:
        if query:
            return self.registry.find(query)
        if self._loaded is not None:
            return self._loaded.checkpoint
        chosen = self.registry.default_checkpoint()
        if chosen is None:
            raise UserInputError(f"No checkpoint found. Put a .safetensors model into {self.registry.checkpoint_dir}")
        return chosen

    def _pick_vae(self, info: CheckpointInfo, choice: str) -> VaeInfo | None:
        if choice in (None, "", VAE_AUTOMATIC):
            return self.registry.automatic_vae(info)
        if choice == VAE_NONE:
            return None
        return self.registry.find_vae(choice)

    def _free(self) -> None:
        if self._loaded is None:
            return
        self._loaded = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

