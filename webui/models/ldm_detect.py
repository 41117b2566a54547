"""Structural facts read from LDM tensor names and shapes alone (works on a safetensors header or meta tensors)."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

UNET_PREFIX = "model.diffusion_model."

# Where each text-encoder layout puts its token embedding, relative to the encoder's LDM prefix.
_TOKEN_EMBEDDING = {
    "clip_l": "text_model.embeddings.token_embedding.weight",
    "open_clip": "token_embedding.weight",
}
_ROOT_PATTERN = re.compile(
    r"^(cond_stage_model\.(?:transformer|model)\.|conditioner\.embedders\.\d+\.(?:transformer|model)\.)"
)
_ATTN_DEPTH = re.compile(r"^((?:input_blocks|output_blocks)\.\d+\.1|middle_block\.1)\.transformer_blocks\.(\d+)\.")
_INPUT_BLOCK = re.compile(r"^input_blocks\.(\d+)\.")


@dataclass(frozen=True)
class UNetFacts:
    """What the UNet part of a checkpoint looks like; None where the file does not say."""

    in_channels: int
    model_channels: int
    context_dim: int | None
    adm_in_channels: int | None
    input_blocks: int
    transformer_depths: dict[str, int] = field(default_factory=dict)


def unet_facts(shapes: Mapping[str, tuple[int, ...]]) -> UNetFacts | None:
    """Read the UNet's channel counts, cross-attention width and per-attention transformer depth."""
    conv_in = shapes.get(UNET_PREFIX + "input_blocks.0.0.weight")
    if conv_in is None or len(conv_in) != 4:
        return None
    context: int | None = None
    depths: dict[str, int] = {}
    input_blocks: set[int] = set()
    for key, shape in shapes.items():
        if not key.startswith(UNET_PREFIX):
            continue
        rest = key[len(UNET_PREFIX):]
        if context is None and rest.endswith("attn2.to_k.weight") and len(shape) == 2:
            context = int(shape[1])
        match = _ATTN_DEPTH.match(rest)
        if match:
            depths[match.group(1)] = max(depths.get(match.group(1), 0), int(match.group(2)) + 1)
        match = _INPUT_BLOCK.match(rest)
        if match:
            input_blocks.add(int(match.group(1)))
    label = shapes.get(UNET_PREFIX + "label_emb.0.0.weight")
    return UNetFacts(
        in_channels=int(conv_in[1]),
        model_channels=int(conv_in[0]),
        context_dim=context,
        adm_in_channels=int(label[1]) if label is not None and len(label) == 2 else None,
        input_blocks=len(input_blocks),
        transformer_depths=depths,
    )


def text_encoder_layouts(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, str]:
    """LDM prefix -> text encoder layout ("clip_l" HF-style or "open_clip") for every encoder in the file."""
    roots = {m.group(1) for key in shapes if (m := _ROOT_PATTERN.match(key))}
    found: dict[str, str] = {}
    for root in sorted(roots):
        for kind, leaf in _TOKEN_EMBEDDING.items():
            if root + leaf in shapes:
                found[root] = kind
    # Pre-2022 SD1 files keep CLIP-L under `cond_stage_model.transformer.` without the `text_model.` level.
    if "cond_stage_model.transformer.embeddings.token_embedding.weight" in shapes:
        found["cond_stage_model.transformer."] = "clip_l"
    return found


def summarise_keys(keys: Mapping[str, object] | list[str]) -> str:
    """A short description of what a state dict holds, for error messages (top-level prefixes with counts)."""
    counts = Counter(".".join(key.split(".")[:2]) if key.count(".") >= 2 else key for key in keys)
    if not counts:
        return "no tensors"
    common = ", ".join(f"{prefix}.* ({n})" for prefix, n in counts.most_common(6))
    more = f" and {len(counts) - 6} more groups" if len(counts) > 6 else ""
    return f"{sum(counts.values())} tensors: {common}{more}"
