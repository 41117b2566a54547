"""networks layer: LoRA/LyCORIS file formats, name resolution and the in-place weight patcher."""
from webui.networks.errors import LoraApplyError, LoraFileError, LoraNotFoundError
from webui.networks.keymap import ModelNames, guess_model_family
from webui.networks.layers import FullPatch, Ia3Patch, LayerPatch, LohaPatch, LokrPatch, LoraPatch, NormPatch
from webui.networks.library import LoraEntry, LoraInfo, LoraLibrary, UserMetadata
from webui.networks.lora_file import LoraFile, file_hash, parse_lora, read_lora, read_metadata
from webui.networks.patcher import ApplyReport, LoraPatcher

__all__ = [
    "ApplyReport", "FullPatch", "Ia3Patch", "LayerPatch", "LohaPatch", "LokrPatch", "LoraApplyError", "LoraEntry",
    "LoraFile", "LoraFileError", "LoraInfo", "LoraLibrary", "LoraNotFoundError", "LoraPatch", "LoraPatcher",
    "ModelNames", "NormPatch", "UserMetadata", "file_hash", "guess_model_family", "parse_lora", "read_lora",
    "read_metadata",
]
