"""Checkpoint merger (A1111's): weighted sum, add difference or A alone, streamed one tensor at a time to a file."""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

import torch
from tqdm import tqdm

from webui.errors import UserInputError
from webui.files import atomic_target
from webui.models.architectures import Architecture
from webui.models.checkpoint_io import load_tensors
from webui.models.hashing import sha256_of_file
from webui.models.ldm_convert import UNET_PREFIX, is_ignored_key, normalise_legacy_key, vae_file_to_ldm
from webui.models.loader import resolve_architecture
from webui.models.merge_recipe import ModelRef, copy_sidecar, merge_metadata
from webui.models.tensor_stream import DTYPE_NAMES, FLOAT_NAMES, SafetensorsStreamWriter, TensorSource

# The UNet's first conv: an inpainting A (9 input channels) merges only its first 4 with a normal B/C.
CONV_IN = UNET_PREFIX + "input_blocks.0.0.weight"
OnTensor = Callable[[int, int, str], None]


class MergeMethod(str, Enum):
    """A1111's "Interpolation Method" choices (the values are its labels)."""

    NO_INTERPOLATION = "No interpolation"
    WEIGHTED_SUM = "Weighted sum"
    ADD_DIFFERENCE = "Add difference"


class Precision(str, Enum):
    """Output tensor type: as in A ("keep"), or every float tensor as fp16 / fp32."""

    KEEP = "keep"
    FP16 = "fp16"
    FP32 = "fp32"


class ConfigSource(str, Enum):
    """A1111's "Copy config from": whose architecture sidecar (.json/.yaml) goes next to the result."""

    FIRST = "A, B or C"
    B = "B"
    C = "C"
    NONE = "Don't"


class IncompatibleModelsError(UserInputError):
    """The models cannot be merged: different families, or tensors of different shapes."""


@dataclass(frozen=True)
class MergeRequest:
    """Everything one merge needs; `secondary` for the interpolating methods, `tertiary` for add difference."""

    primary: ModelRef
    out: Path
    method: MergeMethod = MergeMethod.WEIGHTED_SUM
    secondary: ModelRef | None = None
    tertiary: ModelRef | None = None
    multiplier: float = 0.3
    precision: Precision = Precision.KEEP
    vae: Path | None = None
    config_from: ConfigSource = ConfigSource.FIRST
    discard: str = ""
    save_metadata: bool = True
    copy_metadata: bool = True
    overwrite: bool = False


@dataclass
class MergeReport:
    """What a merge wrote: the file, how many tensors came from each source, the sidecar copied, the metadata."""

    out: Path
    tensors_written: int = 0
    merged: int = 0
    kept_from_a: int = 0
    from_vae: int = 0
    discarded: int = 0
    sidecar: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def require_same_family(models: list[tuple[str, Path, Architecture]]) -> None:
    """Refuse models of different families (or a normal A with an inpainting B/C, which A1111 refuses too)."""
    first_label, first_path, first = models[0]
    for label, path, arch in models[1:]:
        if arch.family != first.family:
            raise IncompatibleModelsError(
                f"{label} ({path.name}) is a {arch.family} model but {first_label} ({first_path.name}) is "
                f"{first.family}: only models of the same family can be combined")
        if arch.inpainting and not first.inpainting:
            raise IncompatibleModelsError(
                f"{label} ({path.name}) is an inpainting model and {first_label} is not; to merge an inpainting "
                f"model with a normal one, make the inpainting model {first_label}")


def default_name(request: MergeRequest) -> str:
    """A1111's file name for an unnamed merge (ours adds the precision for "No interpolation", never A's own name)."""
    a = request.primary.path.stem
    m = round(request.multiplier, 2)
    if request.method is MergeMethod.WEIGHTED_SUM and request.secondary:
        return f"{round(1 - request.multiplier, 2)}({a}) + {m}({request.secondary.path.stem})"
    if request.method is MergeMethod.ADD_DIFFERENCE and request.secondary and request.tertiary:
        return f"{a} + {m}({request.secondary.path.stem} - {request.tertiary.path.stem})"
    return f"{a}-{request.precision.value}" + ("-vae" if request.vae else "")


def _sources(request: MergeRequest) -> list[tuple[str, ModelRef]]:
    refs: list[tuple[str, ModelRef | None]] = [("A", request.primary)]
    if request.method is not MergeMethod.NO_INTERPOLATION:
        refs.append(("B", request.secondary))
    if request.method is MergeMethod.ADD_DIFFERENCE:
        refs.append(("C", request.tertiary))
    missing = [label for label, ref in refs if ref is None]
    if missing:
        raise UserInputError(f"{request.method.value} needs model {' and '.join(missing)}")
    return [(label, ref) for label, ref in refs if ref is not None]


def _check_paths(request: MergeRequest, sources: list[tuple[str, ModelRef]]) -> None:
    out = Path(request.out)
    if out.suffix.lower() != ".safetensors":
        raise UserInputError(f"{out.name}: merged checkpoints are written as .safetensors only")
    for label, ref in sources:
        if not ref.path.is_file():
            raise UserInputError(f"model {label}: no such file {ref.path}")
        if ref.path.resolve() == out.resolve():
            raise UserInputError(f"the output would replace model {label} ({ref.path.name}); choose another name")
    if request.vae is not None and not Path(request.vae).is_file():
        raise UserInputError(f"VAE: no such file {request.vae}")
    if out.exists() and not request.overwrite:
        raise UserInputError(f"{out.name} already exists; choose another name (or overwrite it)")
    if not math.isfinite(request.multiplier):
        raise UserInputError("the multiplier must be a finite number")


def _discard_pattern(text: str) -> re.Pattern[str] | None:
    if not text.strip():
        return None
    try:
        return re.compile(text)
    except re.error as error:
        raise UserInputError(f"discard weights: {text!r} is not a valid regular expression ({error})") from None


def _output_dtype(source_dtype: str, precision: Precision) -> str:
    if source_dtype not in FLOAT_NAMES or precision is Precision.KEEP:
        return source_dtype
    return "F16" if precision is Precision.FP16 else "F32"


def _to_dtype(tensor: torch.Tensor, name: str) -> torch.Tensor:
    wanted = next(dtype for dtype, known in DTYPE_NAMES.items() if known == name)
    return tensor.to(wanted)


@dataclass(frozen=True)
class _Step:
    """How one output tensor is made: copied from A, merged (maybe only its first `channels` inputs), or the VAE's."""

    key: str
    kind: str  # "copy" | "merge" | "vae"
    dtype: str
    shape: tuple[int, ...]
    others: tuple[str, ...] = ()  # the key in B (and C), which may be spelled differently (old CLIP layout)
    channels: int | None = None


def _plan(request: MergeRequest, opened: list[TensorSource], vae: dict[str, torch.Tensor],
          discard: re.Pattern[str] | None, report: MergeReport) -> list[_Step]:
    primary, others = opened[0], opened[1:]
    indexes = [{normalise_legacy_key(key): key for key in source.shapes} for source in others]
    steps: list[_Step] = []
    for key in sorted(primary.shapes):
        if discard is not None and discard.search(key):
            report.discarded += 1
            continue
        shape, dtype = primary.shapes[key], primary.dtypes[key]
        out_dtype = _output_dtype(dtype, request.precision)
        if key in vae:
            if tuple(vae[key].shape) != shape:
                raise IncompatibleModelsError(f"VAE tensor {key} has shape {tuple(vae[key].shape)} but the model's "
                                              f"has {shape}: the VAE does not fit this model")
            steps.append(_Step(key, "vae", out_dtype, shape))
            continue
        names = tuple(index.get(normalise_legacy_key(key), "") for index in indexes)
        if not others or dtype not in FLOAT_NAMES or is_ignored_key(key) or not all(names):
            steps.append(_Step(key, "copy", out_dtype, shape))
            continue
        channels = None
        for name, source, label in zip(names, others, "BC", strict=False):
            theirs = source.shapes[name]
            if theirs == shape:
                continue
            partial = key == CONV_IN and len(theirs) == 4 and theirs[0] == shape[0] and theirs[1] < shape[1]
            if not partial or (channels is not None and channels != theirs[1]):
                raise IncompatibleModelsError(f"{key} has shape {shape} in A but {theirs} in {label}: the models "
                                              "are not the same architecture")
            channels = theirs[1]
        steps.append(_Step(key, "merge", out_dtype, shape, names, channels))
    unknown = sorted(set(vae) - set(primary.shapes))
    if unknown:
        raise IncompatibleModelsError(f"the VAE has {len(unknown)} tensors this model lacks (e.g. {unknown[0]})")
    return steps


def _combine(method: MergeMethod, m: float, a: torch.Tensor, rest: list[torch.Tensor]) -> torch.Tensor:
    """The merge formula in fp32: (1-M)·A + M·B, or A + M·(B − C); M=0 and M=1 give A and B exactly."""
    a = a.float()
    if method is MergeMethod.WEIGHTED_SUM:
        return a * (1.0 - m) + rest[0].float() * m
    return a + (rest[0].float() - rest[1].float()) * m


def _merged_tensor(step: _Step, request: MergeRequest, opened: list[TensorSource]) -> torch.Tensor:
    a = opened[0].get(step.key)
    rest = [source.get(name) for source, name in zip(opened[1:], step.others, strict=True)]
    if step.channels is None:
        return _combine(request.method, request.multiplier, a, rest)
    merged = a.float().clone()
    width = step.channels
    merged[:, :width] = _combine(request.method, request.multiplier, a[:, :width], rest)
    return merged


def _recipe(request: MergeRequest, hashes: Mapping[str, str | None], inpainting: bool) -> dict[str, object]:
    """A1111's `sd_merge_recipe` fields for this merge."""
    return {
        "type": "webui", "primary_model_hash": hashes.get("A"), "secondary_model_hash": hashes.get("B"),
        "tertiary_model_hash": hashes.get("C"), "interp_method": request.method.value,
        "multiplier": request.multiplier, "save_as_half": request.precision is Precision.FP16,
        "custom_name": request.out.stem, "config_source": request.config_from.value,
        "bake_in_vae": request.vae.name if request.vae else "None", "discard_weights": request.discard,
        "is_inpainting": inpainting, "is_instruct_pix2pix": False,
    }


_CONFIG_ORDER = {ConfigSource.FIRST: "ABC", ConfigSource.B: "B", ConfigSource.C: "C", ConfigSource.NONE: ""}


def merge_checkpoints(request: MergeRequest, on_tensor: OnTensor | None = None) -> MergeReport:
    """Write `request.out` from A (and B, C); raises UserInputError (or a subclass) for anything the user can fix.

    Only the headers are read before writing starts; then each output tensor is read, combined in fp32, rounded
    once and written, so memory stays near the largest tensor, not the models. The file appears only when
    complete (temp file + rename); inputs are never written.
    """
    request = replace(request, out=Path(request.out))
    sources = _sources(request)
    _check_paths(request, sources)
    discard = _discard_pattern(request.discard)
    architectures = [(label, ref.path, resolve_architecture(ref.path)) for label, ref in sources]
    require_same_family(architectures)
    primary_arch = architectures[0][2]
    vae: dict[str, torch.Tensor] = {}
    if request.vae is not None:
        vae, unmapped = vae_file_to_ldm(load_tensors(Path(request.vae)), primary_arch)
        if unmapped:
            raise IncompatibleModelsError(f"{Path(request.vae).name} is not a VAE of this model (e.g. {unmapped[0]})")
    report = MergeReport(out=request.out)
    with ExitStack() as stack:
        opened = [stack.enter_context(TensorSource(ref.path)) for _, ref in sources]
        steps = _plan(request, opened, vae, discard, report)
        metadata: dict[str, str] = {"format": "pt"}
        if request.save_metadata:
            hashes = {label: ref.sha256 or sha256_of_file(ref.path) for label, ref in sources}
            metadata = merge_metadata(_recipe(request, hashes, primary_arch.inpainting), sources, hashes,
                                      [source.metadata for source in opened], request.copy_metadata)
        layout = {step.key: (step.dtype, step.shape) for step in steps}
        with atomic_target(request.out) as partial, open(partial, "wb") as handle:
            writer = SafetensorsStreamWriter(handle, layout, metadata)
            for index, step in enumerate(steps):
                if step.kind == "vae":
                    tensor = vae[step.key]
                    report.from_vae += 1
                elif step.kind == "merge":
                    tensor = _merged_tensor(step, request, opened)
                    report.merged += 1
                else:
                    tensor = opened[0].get(step.key)
                    report.kept_from_a += 1
                writer.write(step.key, _to_dtype(tensor, step.dtype))
                if on_tensor is not None:
                    on_tensor(index + 1, len(steps), step.key)
            writer.finish()
    report.tensors_written = len(steps)
    report.metadata = metadata
    by_label = dict(sources)
    wanted = [by_label[label] for label in _CONFIG_ORDER[request.config_from] if label in by_label]
    report.sidecar = copy_sidecar(request.out, wanted)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m webui.models.merge",
        description="Merge checkpoints as A1111's Checkpoint Merger does and save one .safetensors file.")
    parser.add_argument("--a", "--primary", dest="a", required=True, type=Path, help="primary model (A)")
    parser.add_argument("--b", "--secondary", dest="b", type=Path, help="secondary model (B)")
    parser.add_argument("--c", "--tertiary", dest="c", type=Path, help="tertiary model (C), for add difference")
    parser.add_argument("--method", choices=["weighted_sum", "add_difference", "none"], default="weighted_sum",
                        help="weighted sum (1-M)*A + M*B, add difference A + M*(B-C), or none (A alone)")
    parser.add_argument("--multiplier", "-m", type=float, default=0.3, help="M (default 0.3, as A1111)")
    parser.add_argument("--out", required=True, type=Path, help="output .safetensors path")
    parser.add_argument("--precision", choices=[p.value for p in Precision], default="keep",
                        help="float tensors as in A (keep), or all fp16 / fp32")
    parser.add_argument("--vae", type=Path, help="bake this VAE file into the result")
    parser.add_argument("--config-from", choices=["any", "b", "c", "none"], default="any",
                        help="copy the architecture sidecar of A, B or C (any: the first that has one)")
    parser.add_argument("--discard", default="", metavar="REGEX", help="leave out tensors whose name matches")
    parser.add_argument("--no-metadata", action="store_true", help="record no merge recipe in the file")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


_METHODS = {"weighted_sum": MergeMethod.WEIGHTED_SUM, "add_difference": MergeMethod.ADD_DIFFERENCE,
            "none": MergeMethod.NO_INTERPOLATION}
_CONFIG = {"any": ConfigSource.FIRST, "b": ConfigSource.B, "c": ConfigSource.C, "none": ConfigSource.NONE}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 for a user error, with a one-line message)."""
    args = build_parser().parse_args(argv)
    request = MergeRequest(
        primary=ModelRef(args.a), secondary=ModelRef(args.b) if args.b else None,
        tertiary=ModelRef(args.c) if args.c else None, method=_METHODS[args.method], multiplier=args.multiplier,
        out=args.out, precision=Precision(args.precision), vae=args.vae, config_from=_CONFIG[args.config_from],
        discard=args.discard, save_metadata=not args.no_metadata, overwrite=args.overwrite)
    with tqdm(desc="merging", unit="tensor", disable=args.quiet) as bar:
        def advance(done: int, total: int, key: str) -> None:
            bar.total = total
            bar.update(done - bar.n)
        try:
            report = merge_checkpoints(request, on_tensor=advance)
        except UserInputError as error:
            bar.close()
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"wrote {report.out} ({report.tensors_written} tensors: {report.merged} merged, {report.kept_from_a} "
          f"from A, {report.from_vae} from the VAE, {report.discarded} discarded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
