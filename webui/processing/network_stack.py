"""Turns a prompt's extra-network tags into a merged LoRA stack on the loaded model, with messages for the user."""
from __future__ import annotations

from dataclasses import dataclass, field

from webui.models.manager import LoadedModel
from webui.networks import LoraFileError, LoraLibrary, LoraNotFoundError
from webui.prompts import ExtraNetworkTag


@dataclass
class NetworkActivation:
    """What activating the tags did: warnings for the user and the `Lora hashes` infotext value."""

    warnings: list[str] = field(default_factory=list)
    lora_hashes: str | None = None
    applied: list[str] = field(default_factory=list)


def activate_networks(model: LoadedModel, library: LoraLibrary, tags: tuple[ExtraNetworkTag, ...]) -> NetworkActivation:
    """Merge the requested LoRAs (missing or unusable ones are reported and skipped; generation goes on).

    An empty list restores the pristine weights, so a prompt without tags never sees a previous stack.
    """
    result = NetworkActivation()
    stack = []
    for tag in tags:
        if tag.kind != "lora":
            result.warnings.append(f"<{tag.kind}:{tag.name}> is not supported and was ignored")
            continue
        try:
            lora = library.load(tag.name, model.lora_names())
        except (LoraNotFoundError, LoraFileError) as error:
            result.warnings.append(str(error))
            continue
        stack.append((lora, float(tag.te_weight), float(tag.unet_weight)))
    report = model.lora_patcher().apply(stack)
    result.warnings += [f"LoRA {name} skipped: {reason}" for name, reason in report.rejected.items()]
    result.warnings += report.warnings
    used = [lora for lora, _, _ in stack if lora.name in report.applied]
    result.applied = [lora.name for lora in used]
    if used:
        result.lora_hashes = ", ".join(f"{lora.name.replace(':', '').replace(',', '')}: {lora.short_hash}"
                                       for lora in used)
    return result
