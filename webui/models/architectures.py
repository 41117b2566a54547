"""Supported model architectures: shipped JSON specs, sidecar overrides, and detection from tensor names/shapes."""
from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from webui.errors import ModelFileError
from webui.models import ldm_detect
from webui.models.ldm_sidecar import YamlConfigError, yaml_overrides
from webui.models.ldm_unet import expected_transformer_depths, input_block_count

CONFIG_DIR = Path(__file__).parent / "configs"
ARCHITECTURE_NAMES: tuple[str, ...] = (
    "sd1", "sd1-inpaint", "sd2", "sd2-v", "sd2-inpaint", "sdxl", "sdxl-inpaint", "sdxl-refiner",
)
FAMILIES: tuple[str, ...] = ("sd1", "sd2", "sdxl", "sdxl-refiner")
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample")
TEXT_ENCODER_SLOTS: tuple[str, ...] = ("text_encoder", "text_encoder_2")
TEXT_ENCODER_KINDS: tuple[str, ...] = ("clip_l", "open_clip")
TEXT_ENCODER_CLASSES: tuple[str, ...] = ("CLIPTextModel", "CLIPTextModelWithProjection")

# (family, inpainting) from the UNet's cross-attention width and SDXL's added-embedding input width.
_UNET_SIGNATURES: dict[tuple[int | None, int | None], str] = {
    (768, None): "sd1", (1024, None): "sd2", (2048, 2816): "sdxl", (1280, 2560): "sdxl-refiner"
}


# The side an SD1/SD2 model is trained at: the default when a checkpoint does not say its own.
FALLBACK_NATIVE_SIZE = 512


class UnsupportedModelError(ModelFileError):
    """A checkpoint (or sidecar) whose architecture we cannot identify or do not support."""


def _freeze(value: Any) -> Any:
    """Read-only copy of JSON data, so a shared Architecture cannot be changed through its dicts."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Plain mutable JSON-style copy (dicts and lists), what diffusers/transformers config classes expect."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class TextEncoderSpec:
    """One text encoder: pipeline slot, LDM layout kind, transformers class name, CLIPTextConfig kwargs."""

    slot: str
    kind: str
    class_name: str
    config: Mapping[str, Any]
    ldm_prefix: str

    def config_dict(self) -> dict[str, Any]:
        """Mutable kwargs for `transformers.CLIPTextConfig(**...)`."""
        return _thaw(self.config)

    def __hash__(self) -> int:
        # The generated hash would fail on the read-only config mapping; hash its JSON form instead.
        config = json.dumps(self.config_dict(), sort_keys=True)
        return hash((self.slot, self.kind, self.class_name, self.ldm_prefix, config))


@dataclass(frozen=True)
class Architecture:
    """Everything a loader needs to build empty components and map an LDM checkpoint onto them."""

    name: str
    family: str
    inpainting: bool
    prediction_type: str
    unet: Mapping[str, Any]
    vae: Mapping[str, Any]
    text_encoders: tuple[TextEncoderSpec, ...]
    scheduler: Mapping[str, Any]

    def unet_config(self) -> dict[str, Any]:
        """Mutable config for `UNet2DConditionModel.from_config`."""
        return _thaw(self.unet)

    def vae_config(self) -> dict[str, Any]:
        """Mutable config for `AutoencoderKL.from_config`."""
        return _thaw(self.vae)

    def scheduler_config(self) -> dict[str, Any]:
        """Training-noise schedule plus prediction type, ready to merge into a diffusers scheduler config."""
        return {**_thaw(self.scheduler), "prediction_type": self.prediction_type}

    @property
    def native_size(self) -> int:
        """The side in pixels the model was trained at: the VAE config's `sample_size` (diffusers' convention;
        512 for SD1/SD2, 768 for SD2-v, 1024 for SDXL, 64 for the bundled demo)."""
        size = self.vae.get("sample_size")
        return int(size) if isinstance(size, int) and size >= 8 else FALLBACK_NATIVE_SIZE

    def text_encoder(self, slot: str) -> TextEncoderSpec | None:
        """The encoder in `slot` ("text_encoder" / "text_encoder_2"), or None when the family has none there."""
        return next((spec for spec in self.text_encoders if spec.slot == slot), None)

    def __hash__(self) -> int:
        # Lets an Architecture key a cache; equal architectures have equal specs.
        return hash(json.dumps(self.to_spec(), sort_keys=True))

    def to_spec(self) -> dict[str, Any]:
        """The complete JSON spec (the shipped-config / complete-sidecar format)."""
        return {
            "name": self.name,
            "family": self.family,
            "inpainting": self.inpainting,
            "prediction_type": self.prediction_type,
            "unet": self.unet_config(),
            "vae": self.vae_config(),
            "text_encoders": [
                {"slot": t.slot, "kind": t.kind, "class": t.class_name, "config": t.config_dict(),
                 "ldm_prefix": t.ldm_prefix}
                for t in self.text_encoders
            ],
            "scheduler": _thaw(self.scheduler),
        }


def _default_ldm_prefix(family: str, kind: str, index: int, count: int) -> str:
    """Where LDM/SGM checkpoints keep this encoder: SD1/SD2 use `cond_stage_model.`, SDXL its embedders list."""
    leaf = "transformer." if kind == "clip_l" else "model."
    if family in ("sdxl", "sdxl-refiner") or count > 1:
        return f"conditioner.embedders.{index}.{leaf}"
    return f"cond_stage_model.{leaf}"


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise UnsupportedModelError(f"{where}: {message}")


def architecture_from_spec(spec: Mapping[str, Any], where: str = "architecture spec") -> Architecture:
    """Build and validate an Architecture from a complete spec dict (no `base`); `where` names it in errors."""
    for key in ("family", "prediction_type", "unet", "vae", "text_encoders", "scheduler"):
        _check(key in spec, where, f"missing `{key}`")
    family = spec["family"]
    _check(family in FAMILIES, where, f"family {family!r} is not one of {FAMILIES}")
    _check(spec["prediction_type"] in PREDICTION_TYPES, where, f"prediction_type {spec['prediction_type']!r} unknown")
    unet, vae = spec["unet"], spec["vae"]
    _check(isinstance(unet, Mapping) and isinstance(vae, Mapping), where, "unet and vae must be objects")
    _check(isinstance(spec["text_encoders"], list) and all(isinstance(e, Mapping) for e in spec["text_encoders"]),
           where, "text_encoders must be a list of objects")
    for key in ("down_block_types", "up_block_types", "block_out_channels"):
        _check(key in unet, where, f"unet config lacks `{key}`")
    _check("block_out_channels" in vae, where, "vae config lacks `block_out_channels`")
    entries = sorted(spec["text_encoders"], key=lambda e: TEXT_ENCODER_SLOTS.index(e.get("slot"))
                     if e.get("slot") in TEXT_ENCODER_SLOTS else len(TEXT_ENCODER_SLOTS))
    encoders = []
    for index, entry in enumerate(entries):
        _check(entry.get("slot") in TEXT_ENCODER_SLOTS, where, f"text encoder slot {entry.get('slot')!r} unknown")
        _check(entry.get("kind") in TEXT_ENCODER_KINDS, where, f"text encoder kind {entry.get('kind')!r} unknown")
        _check(entry.get("class") in TEXT_ENCODER_CLASSES, where, f"text encoder class {entry.get('class')!r} unknown")
        _check("num_hidden_layers" in entry.get("config", {}), where, f"{entry['slot']} config lacks num_hidden_layers")
        prefix = entry.get("ldm_prefix") or _default_ldm_prefix(family, entry["kind"], index, len(entries))
        encoders.append(TextEncoderSpec(entry["slot"], entry["kind"], entry["class"], _freeze(entry["config"]), prefix))
    _check(len({e.slot for e in encoders}) == len(encoders), where, "two text encoders share a slot")
    return Architecture(
        name=str(spec.get("name") or family),
        family=family,
        # Inpainting UNets take latents + mask + masked-image latents: 4 + 1 + 4 input channels.
        inpainting=bool(spec.get("inpainting", int(unet.get("in_channels", 4)) == 9)),
        prediction_type=spec["prediction_type"],
        unet=_freeze(unet),
        vae=_freeze(vae),
        text_encoders=tuple(encoders),
        scheduler=_freeze(spec["scheduler"]),
    )


def load_architecture(name: str) -> Architecture:
    """One of the shipped architectures (`ARCHITECTURE_NAMES`), read from `webui/models/configs/<name>.json`."""
    if name not in ARCHITECTURE_NAMES:
        raise UnsupportedModelError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURE_NAMES)}")
    path = CONFIG_DIR / f"{name}.json"
    return architecture_from_spec(json.loads(path.read_text(encoding="utf-8")), where=str(path))


def merge_spec(base: Architecture, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply sidecar overrides to a base spec: component configs merge key by key, text encoders by slot."""
    spec = base.to_spec()
    # Derived fields follow the merged UNet unless the overrides set them explicitly.
    spec.pop("inpainting")
    for entry in spec["text_encoders"]:
        entry.pop("ldm_prefix")
    for key, value in overrides.items():
        if key == "base":
            continue
        if key in ("unet", "vae", "scheduler"):
            spec[key].update(copy.deepcopy(dict(value)))
        elif key == "text_encoders":
            by_slot = {entry["slot"]: entry for entry in spec["text_encoders"]}
            for change in value:
                slot = change.get("slot")
                if slot in by_slot:
                    current = by_slot[slot]
                    current["config"].update(copy.deepcopy(dict(change.get("config", {}))))
                    current.update({k: copy.deepcopy(v) for k, v in change.items() if k != "config"})
                else:
                    spec["text_encoders"].append(copy.deepcopy(dict(change)))
        else:
            spec[key] = copy.deepcopy(value)
    return spec


def _json_sidecar(path: Path) -> Architecture | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsupportedModelError(f"cannot read architecture sidecar {path}: {exc}") from exc
    # A1111 keeps per-model user metadata in the same-name .json; only a spec with these keys is ours.
    if not isinstance(data, dict) or not ("base" in data or "unet" in data):
        return None
    if "base" not in data:
        return architecture_from_spec(data, where=str(path))
    base = load_architecture(str(data["base"]))
    merged = merge_spec(base, data)
    if "name" not in data:
        merged["name"] = base.name if set(data) == {"base"} else f"{base.name}+{path.stem}"
    return architecture_from_spec(merged, where=str(path))


def _yaml_sidecar(path: Path) -> Architecture:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        base_name, overrides = yaml_overrides(doc)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, YamlConfigError) as exc:
        raise UnsupportedModelError(f"cannot use LDM config {path}: {exc}") from exc
    base = load_architecture(base_name)
    merged = merge_spec(base, overrides)
    changed = architecture_from_spec({**merged, "name": base.name}, where=str(path)) != base
    merged["name"] = f"{base.name}+{path.stem}" if changed else base.name
    return architecture_from_spec(merged, where=str(path))


def architecture_from_sidecar(path: str | Path) -> Architecture | None:
    """The architecture a sidecar next to checkpoint `path` describes, or None when there is none.

    Looks for `<stem>.json` (ours; wins) then `<stem>.yaml` / `<stem>.yml` (A1111 LDM config). `path` may
    also be the sidecar itself. A `.json` without `base` or `unet` is A1111 user metadata and is skipped.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return _json_sidecar(path) if path.is_file() else None
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_sidecar(path) if path.is_file() else None
    json_path = path.with_suffix(".json")
    if json_path.is_file():
        found = _json_sidecar(json_path)
        if found is not None:
            return found
    for suffix in (".yaml", ".yml"):
        if path.with_suffix(suffix).is_file():
            return _yaml_sidecar(path.with_suffix(suffix))
    return None


def _describe(facts: ldm_detect.UNetFacts | None, encoders: Mapping[str, str]) -> str:
    unet = "no UNet" if facts is None else (
        f"UNet with {facts.in_channels} input channels, {facts.model_channels} base channels, "
        f"cross-attention width {facts.context_dim}, added-embedding input {facts.adm_in_channels}"
    )
    text = ", ".join(f"{kind} at {root}" for root, kind in encoders.items()) or "no text encoder"
    return f"{unet}; {text}"


def _check_structure(arch: Architecture, facts: ldm_detect.UNetFacts, found: str) -> None:
    """Reject a file that shares a family's signature but not its block layout (e.g. distilled SDXL variants)."""
    unet = arch.unet
    problems = []
    if facts.model_channels != unet["block_out_channels"][0]:
        problems.append(f"base channels {facts.model_channels} != {unet['block_out_channels'][0]}")
    if facts.input_blocks != input_block_count(unet):
        problems.append(f"{facts.input_blocks} input blocks != {input_block_count(unet)}")
    expected = expected_transformer_depths(unet)
    if facts.transformer_depths != expected:
        diff = sorted(k for k in set(expected) | set(facts.transformer_depths)
                      if expected.get(k) != facts.transformer_depths.get(k))
        problems.append("transformer depth differs at " + ", ".join(
            f"{k} ({facts.transformer_depths.get(k, 0)} vs {expected.get(k, 0)})" for k in diff[:4]))
    if problems:
        raise UnsupportedModelError(
            f"looks like {arch.name} but its UNet layout differs ({'; '.join(problems)}); found {found}. "
            "Describe it with a same-name .json sidecar."
        )


def detect_architecture(shapes: Mapping[str, tuple[int, ...]]) -> Architecture:
    """Pick the shipped architecture from LDM tensor names and shapes only.

    Rules: the UNet decides (cross-attention width 768 -> sd1, 1024 -> sd2, 2048 with a 2816-wide added
    embedding -> sdxl, 1280 with 2560 -> sdxl-refiner); 9 input channels select the `-inpaint` variant.
    Weights' names and shapes cannot tell SD2's epsilon from v-prediction (A1111 runs the UNet on a probe
    input to decide, which needs the real weights), so an SD2 non-inpainting UNet is taken as the 768-v
    model ("sd2-v", the common SD2.x release); a `.json` ({"base": "sd2"}) or `.yaml` sidecar overrides this.
    Text-encoder keys, when present, must be in the layout the family uses, and the UNet's block layout
    must match the shipped config.
    """
    facts = ldm_detect.unet_facts(shapes)
    encoders = ldm_detect.text_encoder_layouts(shapes)
    found = _describe(facts, encoders)
    if facts is None:
        raise UnsupportedModelError(
            f"no LDM UNet (model.diffusion_model.input_blocks.0.0.weight) in the file; it holds "
            f"{ldm_detect.summarise_keys(list(shapes))}. Is it a VAE, LoRA or embedding, or a diffusers-format file?"
        )
    family = _UNET_SIGNATURES.get((facts.context_dim, facts.adm_in_channels))
    if family is None:
        raise UnsupportedModelError(f"unrecognised UNet: found {found}")
    if facts.in_channels == 9 and family != "sdxl-refiner":
        name = f"{family}-inpaint"
    elif facts.in_channels == 4:
        name = "sd2-v" if family == "sd2" else family
    else:
        raise UnsupportedModelError(
            f"unsupported {family} variant with {facts.in_channels} UNet input channels "
            f"(8 is instruct-pix2pix); found {found}"
        )
    arch = load_architecture(name)
    expected_encoders = {spec.ldm_prefix: spec.kind for spec in arch.text_encoders}
    if encoders and encoders != expected_encoders:
        raise UnsupportedModelError(
            f"UNet looks like {family} but the text encoders do not match "
            f"(expected {expected_encoders}); found {found}"
        )
    _check_structure(arch, facts, found)
    return arch
