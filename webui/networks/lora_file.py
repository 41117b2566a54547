"""Read a LoRA/LyCORIS file, group its keys per layer, map them onto our modules and build typed patches."""
from __future__ import annotations

import hashlib
import math
import re
import struct
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, TypedDict

import torch
from safetensors import safe_open

from webui.errors import ModelFileError
from webui.networks.errors import LoraFileError
from webui.networks.family import lora_family
from webui.networks.keymap import ModelNames
from webui.networks.layers import FullPatch, Ia3Patch, LayerPatch, LohaPatch, LokrPatch, LoraPatch, NormPatch
from webui.safetensors_header import read_safetensors_header

LORA_EXTENSIONS = (".safetensors", ".pt", ".ckpt")
_KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
# Suffix spellings seen in the wild → our canonical name (kohya spelling, or the LyCORIS tensor name).
_SUFFIXES = MappingProxyType({
    "lora_down.weight": "down", "lora_up.weight": "up", "lora_mid.weight": "mid",
    "lora_A.weight": "down", "lora_B.weight": "up", "lora.down.weight": "down", "lora.up.weight": "up",
    "lora_linear_layer.down.weight": "down", "lora_linear_layer.up.weight": "up",
    "alpha": "alpha", "scale": "scale", "dora_scale": "dora_scale",
    "hada_w1_a": "hada_w1_a", "hada_w1_b": "hada_w1_b", "hada_w2_a": "hada_w2_a", "hada_w2_b": "hada_w2_b",
    "hada_t1": "hada_t1", "hada_t2": "hada_t2",
    "lokr_w1": "lokr_w1", "lokr_w1_a": "lokr_w1_a", "lokr_w1_b": "lokr_w1_b",
    "lokr_w2": "lokr_w2", "lokr_w2_a": "lokr_w2_a", "lokr_w2_b": "lokr_w2_b", "lokr_t2": "lokr_t2",
    "weight": "ia3_weight", "on_input": "on_input", "diff": "diff", "diff_b": "diff_b",
    "w_norm": "w_norm", "b_norm": "b_norm",
})
# Dotted (diffusers/PEFT) keys: only these endings are LoRA tensors; a bare `.weight` there is never IA3.
_DOTTED_SUFFIXES = tuple(sorted((s for s in _SUFFIXES if s not in ("weight", "on_input", "scale")),
                               key=len, reverse=True))
_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$")


def _read_raw(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the string metadata of a .safetensors/.pt/.ckpt file, on the CPU."""
    try:
        if path.suffix.lower() == ".safetensors":
            read_safetensors_header(path)  # a clear reason for malformed headers, before the reader sees them
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                metadata = dict(handle.metadata() or {})
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            return tensors, metadata
        # weights_only refuses pickled code: a LoRA file must be plain tensors.
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except ModelFileError as error:
        raise LoraFileError(str(error)) from error
    except Exception as error:  # every reader failure (truncated, garbage, pickle) means the same to the user
        raise LoraFileError(f"cannot read LoRA file {path.name}: {error}") from error
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise LoraFileError(f"LoRA file {path.name} does not hold a dictionary of tensors")
    return {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}, {}


def read_header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The tensor shapes and string metadata of a .safetensors header (cheap: no tensor is read); empty for
    pickle formats or unreadable files."""
    if path.suffix.lower() != ".safetensors":
        return {}, {}
    try:
        parsed = read_safetensors_header(path)
    except (OSError, ModelFileError):
        return {}, {}
    return dict(parsed.shapes), dict(parsed.metadata)


def read_metadata(path: Path) -> dict[str, str]:
    """Only the safetensors header metadata (cheap: no tensor is read); {} for pickle formats or bad files."""
    return read_header(path)[1]


def scan_header(path: Path) -> tuple[dict[str, str], str]:
    """One read of a LoRA's header for the folder scan: its metadata, and why the file cannot be used ("" when
    it looks fine). Pickle formats have no header to judge: ({}, "")."""
    if path.suffix.lower() != ".safetensors":
        return {}, ""
    try:
        return dict(read_safetensors_header(path).metadata), ""
    except ModelFileError as error:
        return {}, str(error)
    except OSError as error:
        return {}, f"cannot read {path.name}: {error.strerror or error}"


def file_hash(path: Path) -> str:
    """A1111's LoRA hash: sha256 of a safetensors file after its header (or of the whole pickle file), full hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if path.suffix.lower() == ".safetensors":
            (length,) = struct.unpack("<Q", handle.read(8))
            handle.seek(8 + length)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class LoraFile:
    """One parsed LoRA, bound to a model's layer names: patches per (target, module name) plus what didn't fit."""

    name: str
    path: Path | None
    metadata: Mapping[str, str]
    family: str
    modules: Mapping[tuple[str, str], LayerPatch]
    unmatched_keys: tuple[str, ...] = ()
    unsupported_keys: tuple[str, ...] = ()
    bundled_embeddings: tuple[str, ...] = ()
    identity: str = field(default_factory=lambda: uuid.uuid4().hex)

    @cached_property
    def sha256(self) -> str:
        """Full A1111 hash (computed on first use); `sshs_model_hash` in the metadata is trusted, as A1111 does."""
        trusted = self.metadata.get("sshs_model_hash")
        if trusted:
            return trusted
        if self.path is None:
            return ""
        return file_hash(self.path)

    @cached_property
    def peak_delta(self) -> float:
        """An upper estimate of the largest weight change at multiplier 1: γ·rank·Π max|tensor| over each patch.

        Real files stay far below 100; a file with weights near 1e30 gives inf here, and its merge would give
        NaN/Inf weights and black pictures.
        """
        peak = 0.0
        for patch in self.modules.values():
            product = abs(patch.gamma()) * (patch.rank() or 1)
            for tensor in patch.tensors():
                if tensor is not patch.dora_scale and tensor.numel():
                    product *= float(tensor.abs().max())
            peak = max(peak, product)
        return peak

    @property
    def short_hash(self) -> str:
        """The 12-hex form used in `Lora hashes:` infotext."""
        return self.sha256[:12]

    def nbytes(self) -> int:
        return sum(patch.nbytes() for patch in self.modules.values())


def _split_key(key: str) -> tuple[str, str] | None:
    """(layer base name, canonical suffix), or None for a key in no known spelling."""
    if key.startswith(_KOHYA_PREFIXES):
        base, _, suffix = key.partition(".")
        return (base, _SUFFIXES[suffix]) if suffix in _SUFFIXES else None
    key = key.removeprefix("base_model.model.")
    match = _PROCESSOR.search(key)
    if match:
        # Old attention-processor files: `attn1.processor.to_q_lora.down.weight` patches `attn1.to_q`.
        layer = match.group(1) if match.group(1) != "to_out" else "to_out.0"
        return key[: match.start()] + "." + layer, match.group(2)
    for suffix in _DOTTED_SUFFIXES:
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], _SUFFIXES[suffix]
    return None


def _resolve(base: str, names: ModelNames) -> tuple[str, str] | None:
    if base in names.kohya:
        return names.kohya[base]
    if base in names.dotted:
        return names.dotted[base]
    # Some diffusers files drop the component prefix for UNet-only LoRAs.
    return names.dotted.get("unet." + base)


def _scalar(tensor: torch.Tensor | None) -> float | None:
    return None if tensor is None else float(tensor.float().flatten()[0])


class _CommonParts(TypedDict):
    """Tensors every patch type may carry besides its own."""

    alpha: float | None
    scale: float | None
    dora_scale: torch.Tensor | None


def build_patch(parts: Mapping[str, torch.Tensor]) -> LayerPatch | None:
    """The typed patch for one layer's tensors (canonical suffix → tensor), or None when no type matches."""
    common = _CommonParts(alpha=_scalar(parts.get("alpha")), scale=_scalar(parts.get("scale")),
                          dora_scale=parts.get("dora_scale"))
    if "up" in parts and "down" in parts:
        return LoraPatch(up=parts["up"], down=parts["down"], mid=parts.get("mid"), **common)
    if all(k in parts for k in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")):
        return LohaPatch(w1_a=parts["hada_w1_a"], w1_b=parts["hada_w1_b"], w2_a=parts["hada_w2_a"],
                         w2_b=parts["hada_w2_b"], t1=parts.get("hada_t1"), t2=parts.get("hada_t2"), **common)
    has_w1 = "lokr_w1" in parts or ("lokr_w1_a" in parts and "lokr_w1_b" in parts)
    has_w2 = "lokr_w2" in parts or ("lokr_w2_a" in parts and "lokr_w2_b" in parts)
    if has_w1 and has_w2:
        return LokrPatch(w1=parts.get("lokr_w1"), w1_a=parts.get("lokr_w1_a"), w1_b=parts.get("lokr_w1_b"),
                         w2=parts.get("lokr_w2"), w2_a=parts.get("lokr_w2_a"), w2_b=parts.get("lokr_w2_b"),
                         t2=parts.get("lokr_t2"), **common)
    if "diff" in parts:
        return FullPatch(diff=parts["diff"], diff_b=parts.get("diff_b"), **common)
    if "w_norm" in parts:
        return NormPatch(w_norm=parts["w_norm"], b_norm=parts.get("b_norm"), **common)
    if "ia3_weight" in parts:
        on_input = bool(_scalar(parts.get("on_input")) or 0.0)
        return Ia3Patch(weight=parts["ia3_weight"], on_input=on_input, **common)
    return None


def parse_lora(name: str, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str], names: ModelNames,
               path: Path | None = None, identity: str | None = None) -> LoraFile:
    """Group `tensors` per layer, build patches and bind them to `names`; raises LoraFileError for unusable files."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    unsupported: list[str] = []
    bundled: set[str] = set()
    for key, tensor in tensors.items():
        if key.startswith("bundle_emb."):
            bundled.add(key.split(".")[1])
            continue
        split = _split_key(key)
        if split is None:
            unsupported.append(key)
            continue
        if tensor.is_floating_point():
            # Merges are computed in fp32: widen (exactly) once here, not on every apply of a cached file.
            tensor = tensor.float()
            # Any NaN/Inf makes the fp32 sum non-finite; the sum is one fast pass with no temporary, and only a
            # non-finite sum (or, never in real files, an overflowing one) pays for the exact element check.
            if not math.isfinite(float(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
                raise LoraFileError(f"LoRA {name}: tensor {key} contains NaN or Inf values")
        grouped.setdefault(split[0], {})[split[1]] = tensor
    patches: dict[str, LayerPatch] = {}
    for base, parts in grouped.items():
        patch = build_patch(parts)
        if patch is None:
            unsupported.extend(f"{base}.{suffix}" for suffix in parts)
        else:
            patches[base] = patch
    if not patches:
        shown = ", ".join(sorted(unsupported)[:5]) or "no tensors"
        raise LoraFileError(f"LoRA {name}: no key is in a known LoRA/LyCORIS format ({shown})")
    modules: dict[tuple[str, str], LayerPatch] = {}
    unmatched: list[str] = []
    for base, patch in patches.items():
        target = _resolve(base, names)
        if target is None or target in modules:
            unmatched.append(base)
        else:
            modules[target] = patch
    shapes = {key: tuple(tensor.shape) for key, tensor in tensors.items()}
    return LoraFile(name=name, path=path, metadata=dict(metadata), family=lora_family(shapes, metadata),
                    modules=modules, unmatched_keys=tuple(sorted(unmatched)),
                    unsupported_keys=tuple(sorted(unsupported)), bundled_embeddings=tuple(sorted(bundled)),
                    identity=identity or uuid.uuid4().hex)


def read_lora(path: Path, names: ModelNames, name: str | None = None) -> LoraFile:
    """Read and parse one file for the models described by `names`."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise LoraFileError(f"cannot read LoRA file {path.name}: {error}") from error
    tensors, metadata = _read_raw(path)
    identity = f"{path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}"
    return parse_lora(name or path.stem, tensors, metadata, names, path=path, identity=identity)
