"""Extract a kohya LoRA from two checkpoints (tuned − base): loads them here, factors in webui.networks.lora_extract."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from webui.errors import UserInputError
from webui.files import atomic_target
from webui.models.bake import network_targets
from webui.models.device import device_config
from webui.models.loader import load_components, resolve_architecture
from webui.models.merge import require_same_family
from webui.networks import ModelNames
from webui.networks.lora_extract import ExtractSettings, OnLayer, extract_lora, kohya_metadata, kohya_targets

log = logging.getLogger(__name__)
SAVE_PRECISIONS = {"float": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class ExtractReport:
    """What an extraction wrote: the file, the layers it covers, target layers left out as unchanged."""

    out: Path
    layers: int
    unchanged: int
    family: str


def _target_weights(path: Path, conv: bool) -> tuple[dict, dict, ModelNames, str, bool]:
    """Load one checkpoint; keep only the weights of the LoRA target layers (the rest is freed at once)."""
    components = load_components(path, device_config(device="cpu"))
    arch = components.architecture
    targets = network_targets(components)
    names = ModelNames.from_models(targets, arch.family if arch.family in ("sd1", "sd2", "sdxl") else None)
    layers = kohya_targets(targets, conv)
    weights = {}
    for key in layers:
        weight = getattr(names.modules.get(key), "weight", None)
        if isinstance(weight, torch.Tensor):
            weights[key] = weight.detach()
    return weights, layers, names, arch.family, arch.prediction_type == "v_prediction"


def extract_lora_file(base: Path, tuned: Path, out: Path, settings: ExtractSettings, *, overwrite: bool = False,
                      on_layer: OnLayer | None = None) -> ExtractReport:
    """Write `out`, a kohya LoRA whose delta approximates `tuned − base` at rank `settings.dim`.

    Raises UserInputError (or a subclass) for anything the user can fix; the file appears only when complete.
    """
    base, tuned, out = Path(base), Path(tuned), Path(out)
    if out.suffix.lower() != ".safetensors":
        raise UserInputError(f"{out.name}: the LoRA is written as .safetensors only")
    for label, path in (("base", base), ("tuned", tuned)):
        if not path.is_file():
            raise UserInputError(f"{label} model: no such file {path}")
    if out.exists() and not overwrite:
        raise UserInputError(f"{out.name} already exists; choose another name (or overwrite it)")
    if settings.dim < 1 or (settings.conv_dim is not None and settings.conv_dim < 0):
        raise UserInputError("the LoRA rank (dim) must be at least 1")
    if not 0.0 < settings.clamp_quantile <= 1.0:
        raise UserInputError("the clamp quantile must be in (0, 1]")
    require_same_family([("the base model", base, resolve_architecture(base)),
                         ("the tuned model", tuned, resolve_architecture(tuned))])
    conv = bool(settings.conv_dim)
    log.info("loading %s", base.name)
    base_weights, layers, names, family, v_prediction = _target_weights(base, conv)
    log.info("loading %s", tuned.name)
    tuned_weights = _target_weights(tuned, conv)[0]
    with torch.no_grad():
        extracted = extract_lora(base_weights, tuned_weights, names, layers, settings, on_layer)
    if not extracted.layers:
        raise UserInputError(f"{tuned.name} does not differ from {base.name} in any LoRA target layer")
    metadata = kohya_metadata(settings, family, v_prediction, out.stem,
                              comment=f"extracted from {tuned.name} minus {base.name}")
    with atomic_target(out) as partial:
        save_file(extracted.tensors, str(partial), metadata=metadata)
    return ExtractReport(out, len(extracted.layers), len(extracted.unchanged), family)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m webui.networks.extract",
        description="Extract a kohya LoRA from the difference of two checkpoints (SVD per layer).")
    parser.add_argument("--base", "--model_org", dest="base", required=True, type=Path, help="original model")
    parser.add_argument("--tuned", "--model_tuned", dest="tuned", required=True, type=Path, help="fine-tuned model")
    parser.add_argument("--out", "--save_to", dest="out", required=True, type=Path, help="output .safetensors")
    parser.add_argument("--dim", type=int, default=4, help="rank for linear and 1x1 conv layers (kohya default 4)")
    parser.add_argument("--conv_dim", type=int, default=None, help="rank for 3x3 convs of resnets (LoCon); off")
    parser.add_argument("--clamp_quantile", type=float, default=1.0,
                        help="clip factor entries beyond this quantile (kohya uses 0.99); 1 = exact factors")
    parser.add_argument("--min_diff", type=float, default=0.0, help="leave out layers that changed at most this")
    parser.add_argument("--save_precision", choices=sorted(SAVE_PRECISIONS), default="float")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 for a user error, with a one-line message)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    settings = ExtractSettings(dim=args.dim, conv_dim=args.conv_dim, clamp_quantile=args.clamp_quantile,
                               min_diff=args.min_diff, dtype=SAVE_PRECISIONS[args.save_precision])
    with tqdm(desc="extracting", unit="layer", disable=args.quiet) as bar:
        def advance(done: int, total: int, name: str) -> None:
            bar.total = total
            bar.update(done - bar.n)
        try:
            report = extract_lora_file(args.base, args.tuned, args.out, settings, overwrite=args.overwrite,
                                       on_layer=advance)
        except UserInputError as error:
            bar.close()
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"wrote {report.out} ({report.layers} layers at dim {args.dim}; {report.unchanged} unchanged left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
