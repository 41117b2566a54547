"""Merge a stack of LoRAs into model weights in place (fp32, one rounding), re-merging only changed layers."""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Protocol, Sequence, cast

import torch
from torch import Tensor

from webui.networks.errors import LoraApplyError
from webui.networks.keymap import TEXT_TARGETS, guess_model_family
from webui.networks.layers import LayerPatch, LoraPatch
from webui.networks.lora_file import LoraFile
from webui.networks.overflow import low_rank_cannot_overflow, nonfinite_layers, overflowing_loras

LayerKey = tuple[str, str]
StackEntry = tuple[LoraFile, float, float]
# Keep this much device memory free when deciding whether pristine copies may stay on the accelerator.
_DEVICE_HEADROOM = 1 << 30
# fp32 elements per block of a half-precision merge: 8 MiB, small enough to stay in a GPU's or CPU's L2/L3 cache.
_ROUNDED_BLOCK_ELEMENTS = 1 << 21
_FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass
class ApplyReport:
    """What one `apply` did: LoRAs merged, LoRAs refused (name → reason), warnings and layer counts."""

    applied: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    layers_written: int = 0
    layers_restored: int = 0


_LowRank = tuple[Tensor, Tensor, float]


class _WeightedLayer(Protocol):
    """What the patcher reads and writes on a Linear, Conv or norm layer."""

    weight: torch.nn.Parameter
    bias: torch.nn.Parameter | None


def _low_rank_sum(pending: Sequence[tuple[LoraPatch, float]], device: torch.device) -> _LowRank:
    """(up, down, α) with Σᵢ mᵢγᵢ·upᵢ·downᵢ = α·up·down: one adapter as is (its scale in α), several
    concatenated along the rank axis as [m₁γ₁up₁ | m₂γ₂up₂ | …] @ [down₁; down₂; …] so a layer is one matmul."""
    if len(pending) == 1:
        patch, multiplier = pending[0]
        up, down = patch.factors(device)
        return up, down, multiplier * patch.gamma()
    ups, downs = [], []
    for patch, multiplier in pending:
        up, down = patch.factors(device)
        ups.append(up * (multiplier * patch.gamma()))
        downs.append(down)
    return torch.cat(ups, dim=1), torch.cat(downs, dim=0), 1.0


@dataclass
class _Backup:
    weight: Tensor
    bias: Tensor | None = None


class LoraPatcher:
    """Owns the pristine copies of every weight it touched; `apply` makes the models equal W₀ + Σ mᵢγᵢΔWᵢ.

    Each layer carries the signature of what is merged into it, so a new stack rewrites only the layers whose
    contributions changed. Any exception (or interrupt) while writing restores every layer before re-raising,
    so the models are never left half-patched.

    `keep_backups` keeps the pristine copies after a restore (A1111's behaviour): the next apply then skips the
    backup copy, at the cost of holding `backup_bytes()` of extra memory while no LoRA is active.
    """

    def __init__(self, models: Mapping[str, torch.nn.Module], family: str | None = None,
                 backup_device: torch.device | str | None = None, keep_backups: bool = False) -> None:
        self.models = dict(models)
        self.family = family or guess_model_family(self.models)
        self.keep_backups = keep_backups
        self._backup_device = None if backup_device is None else torch.device(backup_device)
        self._backups: dict[LayerKey, _Backup] = {}
        # Layers whose live weight may differ from its pristine copy (set before the first write to a layer).
        self._dirty: set[LayerKey] = set()
        self._signatures: dict[LayerKey, tuple] = {}
        self._modules: dict[LayerKey, _WeightedLayer] = {}
        self._lock = threading.Lock()
        self.active: tuple[StackEntry, ...] = ()
        # Applies that rewrote or restored at least one layer (a re-merge); reusing the merged stack is not one.
        self.stack_changes = 0

    # -- public -----------------------------------------------------------------------------------------------

    def apply(self, stack: Sequence[StackEntry], strict: bool = False) -> ApplyReport:
        """Make the models carry exactly `stack` ((lora, te_weight, unet_weight), in order).

        LoRAs that do not fit (wrong family, wrong shapes, no matching layer) are skipped with a reason in the
        report, or raise LoraApplyError before anything is written when `strict`. A LoRA whose merge turns a
        weight into NaN/Inf is taken out again (its layers end bit-identical to before) and reported the same way.
        """
        with self._lock:
            overflowed: dict[str, str] = {}
            while True:
                report, wanted, written = self._apply(stack, strict)
                # A merge that overflowed (NaN/Inf) is undone by merging the stack again without the LoRAs to blame.
                broken = nonfinite_layers(self._modules, written)
                if not broken:
                    break
                blamed = overflowing_loras(broken, wanted, {k: self._backups[k].weight for k in broken},
                                           {k: self._modules[k].weight.dtype for k in broken})
                if not blamed:  # nothing in the stack to blame (never seen): stop rather than merge the same again
                    break
                overflowed.update(blamed)
                stack = [entry for entry in stack if entry[0].name not in blamed]
                if strict:
                    self._restore_all()
                    raise LoraApplyError("; ".join(f"LoRA {name}: {reason}" for name, reason in blamed.items()))
            report.rejected.update(overflowed)
            return report

    def _apply(self, stack: Sequence[StackEntry],
               strict: bool) -> tuple[ApplyReport, dict[LayerKey, list[tuple[LoraFile, LayerPatch, float]]],
                                      list[LayerKey]]:
        """One merge of `stack` (lock held): the report, each layer's patches and the written layers to check."""
        report = ApplyReport()
        written: list[LayerKey] = []
        wanted: dict[LayerKey, list[tuple[LoraFile, LayerPatch, float]]] = {}
        accepted: list[StackEntry] = []
        for lora, te_weight, unet_weight in stack:
            if te_weight == 0 and unet_weight == 0:
                continue
            reason = self._check(lora, report)
            if reason is not None:
                report.rejected[lora.name] = reason
                continue
            accepted.append((lora, te_weight, unet_weight))
            report.applied.append(lora.name)
            for key, patch in lora.modules.items():
                multiplier = te_weight if key[0] in TEXT_TARGETS else unet_weight
                if multiplier != 0:
                    wanted.setdefault(key, []).append((lora, patch, float(multiplier)))
        if strict and report.rejected:
            raise LoraApplyError("; ".join(report.rejected.values()))
        signatures = {key: tuple((lora.identity, m) for lora, _, m in entries) for key, entries in wanted.items()}
        try:
            for key in [k for k in self._signatures if k not in wanted]:
                self._restore_layer(key)
                report.layers_restored += 1
            for key, entries in wanted.items():
                if self._signatures.get(key) != signatures[key]:
                    if self._merge_layer(key, entries):
                        written.append(key)  # may hold NaN/Inf: checked once the stack is merged
                    self._signatures[key] = signatures[key]
                    report.layers_written += 1
            self.active = tuple(accepted)
            if report.layers_written or report.layers_restored:
                self.stack_changes += 1
        except BaseException:
            # Never leave a half-applied stack: put every touched layer back to its pristine weight.
            self._restore_all()
            raise
        return report, wanted, written

    def restore(self) -> int:
        """Write every pristine weight back (bit-identical) and free the copies unless `keep_backups`;
        returns the layers restored."""
        with self._lock:
            return self._restore_all()

    @contextlib.contextmanager
    def patched(self, stack: Sequence[StackEntry], strict: bool = False) -> Iterator[ApplyReport]:
        """Apply `stack` for the duration of the block and restore in `finally`, even when the body raises."""
        try:
            yield self.apply(stack, strict=strict)
        finally:
            self.restore()

    def __enter__(self) -> "LoraPatcher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def backup_bytes(self) -> int:
        """Bytes held in pristine copies (equals the bytes of the touched weights and biases; with
        `keep_backups`, of every weight touched since the patcher was made)."""
        return sum(b.weight.numel() * b.weight.element_size()
                   + (0 if b.bias is None else b.bias.numel() * b.bias.element_size())
                   for b in self._backups.values())

    @property
    def patched_layers(self) -> frozenset[LayerKey]:
        return frozenset(self._signatures)

    # -- checks -----------------------------------------------------------------------------------------------

    def _check(self, lora: LoraFile, report: ApplyReport) -> str | None:
        """A reason to refuse the whole LoRA, or None; runs before any weight is written."""
        if lora.family != "unknown" and self.family != "unknown" and lora.family != self.family:
            return (f"LoRA {lora.name} is for {lora.family.upper()} but the loaded model is "
                    f"{self.family.upper()}; skipped")
        if not lora.modules:
            hint = f" (it looks like a {lora.family.upper()} LoRA)" if lora.family != "unknown" else ""
            return f"LoRA {lora.name}: none of its {len(lora.unmatched_keys)} layers exist in this model{hint}; skipped"
        problems = []
        for key, patch in lora.modules.items():
            module = self._module(key)
            if module is None:
                problems.append(f"{key[0]}.{key[1]}: no such layer in this model")
                continue
            bias = getattr(module, "bias", None)  # some weighted layers (e.g. embeddings) have no bias at all
            message = patch.check(module.weight.shape, None if bias is None else bias.shape)
            if message is not None:
                problems.append(f"{key[0]}.{key[1]}: {message}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            return f"LoRA {lora.name} does not fit this model: " + "; ".join(problems[:3]) + more
        if lora.unmatched_keys:
            sample = ", ".join(lora.unmatched_keys[:3])
            report.warnings.append(f"LoRA {lora.name}: {len(lora.unmatched_keys)} layers match nothing in this "
                                   f"model and were ignored (e.g. {sample})")
        if lora.unsupported_keys:
            sample = ", ".join(lora.unsupported_keys[:3])
            report.warnings.append(f"LoRA {lora.name}: {len(lora.unsupported_keys)} keys of an unsupported type "
                                   f"were ignored (e.g. {sample})")
        return None

    def _module(self, key: LayerKey) -> _WeightedLayer | None:
        """The layer a LoRA key names, or None when the model has no such layer or it has no weight."""
        if key not in self._modules:
            model = self.models.get(key[0])
            if model is None:
                return None
            try:
                module = model.get_submodule(key[1])
            except AttributeError:
                return None
            if not isinstance(getattr(module, "weight", None), torch.Tensor):
                return None
            self._modules[key] = cast(_WeightedLayer, module)  # checked just above: it has a weight tensor
        return self._modules[key]

    # -- writing ----------------------------------------------------------------------------------------------

    def _storage_device(self, tensor: Tensor) -> torch.device:
        """Where a pristine copy lives: the weight's own device while memory allows, else the CPU."""
        if self._backup_device is not None:
            return self._backup_device
        if tensor.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(tensor.device)
            if free < tensor.numel() * tensor.element_size() + _DEVICE_HEADROOM:
                return torch.device("cpu")
        return tensor.device

    def _copy(self, tensor: Tensor) -> Tensor:
        device = self._storage_device(tensor)
        copy = torch.empty_like(tensor, device=device, pin_memory=device.type == "cpu" and tensor.is_cuda)
        copy.copy_(tensor.detach())
        return copy

    def _backup(self, key: LayerKey, want_bias: bool) -> _Backup:
        module = self._modules[key]
        backup = self._backups.get(key)
        if backup is None:
            backup = _Backup(weight=self._copy(module.weight.data))
            self._backups[key] = backup
        if want_bias and backup.bias is None and module.bias is not None:
            backup.bias = self._copy(module.bias.data)
        return backup

    def _write(self, target: Tensor, base: Tensor | None, low_rank: _LowRank | None = None) -> None:
        """The only place weights change, in place: `target = base (+ α·up·down)`, rounding once to its dtype.

        `base` None means `target` already holds the pristine weight (a layer's first merge), which saves a
        full-tensor copy; the low-rank term is only passed for fp32 targets, so `addmm_` is the fp32 sum itself.
        """
        if base is not None:
            target.copy_(base)
        if low_rank is not None:
            up, down, alpha = low_rank
            target.view(target.shape[0], -1).addmm_(up, down, alpha=alpha)

    def _write_rounded(self, target: Tensor, base: Tensor, low_rank: _LowRank) -> None:
        """`target = round(base + α·up·down)` for a half-precision target, summed in fp32 one block of rows at a
        time: each fp32 block stays in cache, so memory traffic is one read of `base` and one write of `target`
        (the bandwidth floor of a switch) instead of a full-size fp32 round trip. One rounding, as `_write`."""
        up, down, alpha = low_rank
        rows_out = target.view(target.shape[0], -1)
        rows_in = base.reshape(target.shape[0], -1)
        block = max(1, _ROUNDED_BLOCK_ELEMENTS // rows_out.shape[1])
        for start in range(0, rows_out.shape[0], block):
            end = start + block
            work = rows_in[start:end].to(device=target.device, dtype=torch.float32, non_blocking=True, copy=True)
            work.addmm_(up[start:end], down, alpha=alpha)
            rows_out[start:end].copy_(work)

    def _merge_layer(self, key: LayerKey, entries: list[tuple[LoraFile, LayerPatch, float]]) -> bool:
        """Write W₀ + the entries' deltas; True when the result may have overflowed and must be checked."""
        module = self._modules[key]
        param = module.weight
        pristine = key not in self._dirty  # the live weight still equals its pristine copy
        backup = self._backup(key, want_bias=any(p.bias_delta_tensor() is not None for _, p, _ in entries))
        self._dirty.add(key)
        target, device = param.data, param.device
        low_rank_only = all(isinstance(p, LoraPatch) and p.is_low_rank() for _, p, _ in entries)
        if low_rank_only and target.is_contiguous() and target.dtype in _FAST_DTYPES:
            # Fast paths (plain LoRAs): fp32 models get one copy of W₀ (none on a first merge) and one in-place
            # matmul-add over all adapters concatenated along the rank axis; half-precision models the same
            # sum in fp32 a cache-sized block of rows at a time. No full-size temporary either way.
            low_rank = _low_rank_sum([(p, m) for _, p, m in entries if isinstance(p, LoraPatch)], device)
            if target.dtype == torch.float32:
                self._write(target, None if pristine else backup.weight, low_rank)
            else:
                self._write_rounded(target, target if pristine else backup.weight, low_rank)
            if backup.bias is not None and module.bias is not None and not pristine:
                self._write(module.bias.data, backup.bias)  # an earlier stack may have changed the bias
            return not low_rank_cannot_overflow(*low_rank, target.dtype)
        shape = param.shape
        # A private fp32 working copy of W₀, updated in place; it is rounded once, by the final `_write`.
        weight = backup.weight.to(device=device, dtype=torch.float32, copy=True).reshape(shape[0], -1)
        bias = None if backup.bias is None else backup.bias.to(device=device, dtype=torch.float32, copy=True)
        pending: list[tuple[LoraPatch, float]] = []
        for _, patch, multiplier in entries:
            if isinstance(patch, LoraPatch) and patch.is_low_rank():
                pending.append((patch, multiplier))
                continue
            # Weight-dependent types (IA3, DoRA) see the weight as built so far, in stack order, like A1111.
            if pending:
                up, down, alpha = _low_rank_sum(pending, device)
                weight.addmm_(up, down, alpha=alpha)
                pending.clear()
            delta, bias_delta = patch.delta(weight.reshape(shape), multiplier)
            weight += delta.reshape(weight.shape)
            if bias_delta is not None and bias is not None:
                bias += bias_delta.reshape(bias.shape)
        if pending:
            up, down, alpha = _low_rank_sum(pending, device)
            weight.addmm_(up, down, alpha=alpha)
        self._write(target, weight.reshape(shape))
        if bias is not None and module.bias is not None:
            self._write(module.bias.data, bias)
        return True

    def _restore_layer(self, key: LayerKey) -> None:
        backup = self._backups.get(key)
        if backup is not None and key in self._dirty:
            module = self._modules[key]
            self._write(module.weight.data, backup.weight)
            if backup.bias is not None and module.bias is not None:
                self._write(module.bias.data, backup.bias)
        # Forget the state only once the pristine weight is back in place.
        self._signatures.pop(key, None)
        self._dirty.discard(key)
        if not self.keep_backups:
            self._backups.pop(key, None)

    def _restore_all(self) -> int:
        # Without keep_backups every copy belongs to a written layer; with it, clean layers need no copy back.
        keys = [key for key in self._backups if key in self._dirty or not self.keep_backups]
        # Restoring is copy-only, so an interrupt here is retried by the next restore; forget only after writing.
        for key in keys:
            backup = self._backups[key]
            module = self._modules[key]
            module.weight.data.copy_(backup.weight)
            if backup.bias is not None and module.bias is not None:
                module.bias.data.copy_(backup.bias)
            # Signature first: an interrupt between these lines must not leave a stale "merged" signature.
            self._signatures.pop(key, None)
            self._dirty.discard(key)
            if not self.keep_backups:
                del self._backups[key]
        self._signatures.clear()
        self.active = ()
        return len(keys)
