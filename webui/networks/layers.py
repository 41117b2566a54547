"""Typed per-layer patches (LoRA/LoCon/Tucker, LoHa, LoKr, IA3, full, norm, DoRA) and their weight deltas."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterator

import torch
from torch import Tensor


def _f32(tensor: Tensor, device: torch.device) -> Tensor:
    return tensor.to(device=device, dtype=torch.float32)


def _cp_rebuild(core: Tensor, left: Tensor, right: Tensor) -> Tensor:
    """Tucker/CP rebuild `Σ_a Σ_b left[a, o]·core[a, b, h, w]·right[b, i]` → [o, i, h, w] (LyCORIS factor layout)."""
    return torch.einsum("abhw,ao,bi->oihw", core, left, right.flatten(1))


@dataclass(frozen=True, eq=False)
class LayerPatch:
    """One file's change to one layer; subclasses supply `dense` (γ·ΔW, fp32) and optionally a bias delta.

    Deltas are always computed in float32 on the weight's device, so the patcher can sum several and round once.
    """

    alpha: float | None = None
    scale: float | None = None
    dora_scale: Tensor | None = None

    kind: ClassVar[str] = "base"

    def rank(self) -> int | None:
        """The rank used for γ = alpha / rank (None where the type has no rank)."""
        return None

    def gamma(self) -> float:
        """Per-module scale: the file's `scale`, else alpha/rank, else 1 (a missing alpha means γ = 1)."""
        if self.scale is not None:
            return float(self.scale)
        rank = self.rank()
        if self.alpha is not None and rank:
            return float(self.alpha) / rank
        return 1.0

    def tensors(self) -> Iterator[Tensor]:
        """Every tensor this patch holds (for byte counts and finiteness checks)."""
        for value in self.__dict__.values():
            if isinstance(value, Tensor):
                yield value

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def delta_numel(self) -> int:
        """Number of elements of ΔW this patch produces (checked against the target weight before writing)."""
        raise NotImplementedError

    def delta_rows(self) -> int | None:
        """Output rows of ΔW when the type fixes them (must equal the weight's dim 0), else None."""
        return None

    def check(self, weight_shape: torch.Size, bias_shape: torch.Size | None) -> str | None:
        """A readable reason this patch cannot apply to a weight of this shape, or None when it fits."""
        numel = 1
        for size in weight_shape:
            numel *= size
        if self.delta_numel() != numel:
            return (
                f"{self.kind} delta has {self.delta_numel()} elements, layer weight {tuple(weight_shape)} has {numel}"
            )
        rows = self.delta_rows()
        if rows is not None and rows != weight_shape[0]:
            return f"{self.kind} delta has {rows} output rows, layer weight {tuple(weight_shape)} has {weight_shape[0]}"
        if self.dora_scale is not None and len(weight_shape) > 1 and self.dora_scale.numel() != weight_shape[1]:
            return f"dora_scale has {self.dora_scale.numel()} entries, layer has {weight_shape[1]} input columns"
        bias = self.bias_delta_tensor()
        if bias is not None and (bias_shape is None or bias.numel() != bias_shape.numel()):
            layer_bias = None if bias_shape is None else tuple(bias_shape)
            return f"bias delta {tuple(bias.shape)} does not fit layer bias {layer_bias}"
        return None

    def dense(self, weight: Tensor) -> Tensor:
        """γ·ΔW as float32 shaped like `weight` (`weight` is the current fp32 weight; only IA3 reads its values)."""
        raise NotImplementedError

    def bias_delta_tensor(self) -> Tensor | None:
        return None

    def is_low_rank(self) -> bool:
        """True when ΔW = up·down with no weight dependence, so it can be concatenated with other LoRAs."""
        return False

    def delta(self, weight: Tensor, multiplier: float) -> tuple[Tensor, Tensor | None]:
        """(m·γ·ΔW, m·Δbias) in float32, or the DoRA-decomposed delta when `dora_scale` is present."""
        dense = self.dense(weight)
        if self.dora_scale is not None:
            dense = _dora_delta(weight, dense, _f32(self.dora_scale, weight.device))
        bias = self.bias_delta_tensor()
        bias_delta = None if bias is None else _f32(bias, weight.device).flatten() * multiplier
        return dense * multiplier, bias_delta


def _dora_delta(weight: Tensor, dense: Tensor, dora_scale: Tensor) -> Tensor:
    """A1111's DoRA: V = W + γΔW, W_dora = dora_scale·V/‖V‖ with the norm per input column; returns W_dora − W."""
    merged = weight + dense
    # Norm over every axis except dim 1 (the input axis), as A1111 and kohya-trained files expect.
    columns = merged.transpose(0, 1).reshape(merged.shape[1], -1).norm(dim=1)
    view = [1, merged.shape[1]] + [1] * (merged.dim() - 2)
    magnitude = dora_scale.reshape(view)
    return merged * (magnitude / columns.reshape(view)) - weight


@dataclass(frozen=True, eq=False)
class LoraPatch(LayerPatch):
    """LoRA / LoCon: ΔW = up·down reshaped to W; with `mid` (Tucker) ΔW[o,i,h,w] = Σ up[o,a]·mid[a,b,h,w]·down[b,i]."""

    up: Tensor = None  # type: ignore[assignment]
    down: Tensor = None  # type: ignore[assignment]
    mid: Tensor | None = None

    kind: ClassVar[str] = "lora"

    def rank(self) -> int | None:
        return int(self.down.shape[0])

    def delta_numel(self) -> int:
        if self.mid is not None:
            return self.up.shape[0] * self.down[0].numel() * self.mid[0, 0].numel()
        return self.up.shape[0] * self.down[0].numel()

    def delta_rows(self) -> int | None:
        return int(self.up.shape[0])

    def check(self, weight_shape: torch.Size, bias_shape: torch.Size | None) -> str | None:
        inner = self.up[0].numel()
        if self.mid is not None and (self.mid.shape[0] != inner or self.mid.shape[1] != self.down.shape[0]):
            shapes = f"up {tuple(self.up.shape)} / down {tuple(self.down.shape)}"
            return f"lora_mid {tuple(self.mid.shape)} does not fit {shapes}"
        if self.mid is None and inner != self.down.shape[0]:
            return f"lora_up {tuple(self.up.shape)} and lora_down {tuple(self.down.shape)} have different ranks"
        return super().check(weight_shape, bias_shape)

    def is_low_rank(self) -> bool:
        return self.mid is None and self.dora_scale is None

    def factors(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """(up as [out, r], down as [r, in·kh·kw]) in float32, unscaled: ΔW = γ·up·down.

        Views of the stored tensors when they are already fp32 on `device` (the parser stores fp32), so the
        patcher's matmul reads them without a copy.
        """
        return _f32(self.up, device).flatten(1), _f32(self.down, device).flatten(1)

    def dense(self, weight: Tensor) -> Tensor:
        device = weight.device
        if self.mid is not None:
            up = _f32(self.up, device).flatten(1)
            delta = _cp_rebuild(_f32(self.mid, device), up.t(), _f32(self.down, device))
        else:
            up, down = self.factors(device)
            delta = up @ down
        return delta.reshape(weight.shape) * self.gamma()


@dataclass(frozen=True, eq=False)
class LohaPatch(LayerPatch):
    """LoHa: ΔW = (w1_a·w1_b) ⊙ (w2_a·w2_b); with Tucker cores t1/t2 each factor is rebuilt from core and matrices."""

    w1_a: Tensor = None  # type: ignore[assignment]
    w1_b: Tensor = None  # type: ignore[assignment]
    w2_a: Tensor = None  # type: ignore[assignment]
    w2_b: Tensor = None  # type: ignore[assignment]
    t1: Tensor | None = None
    t2: Tensor | None = None

    kind: ClassVar[str] = "loha"

    def rank(self) -> int | None:
        return int(self.w1_b.shape[0])

    def _shape(self) -> tuple[int, int]:
        # Tucker files store w_a transposed ([r, out]) because the rebuild contracts it on its first axis.
        if self.t1 is not None:
            return int(self.w1_a.shape[1]), int(self.w1_b[0].numel() * self.t1[0, 0].numel())
        return int(self.w1_a.shape[0]), int(self.w1_b[0].numel())

    def delta_numel(self) -> int:
        rows, cols = self._shape()
        return rows * cols

    def delta_rows(self) -> int | None:
        return self._shape()[0]

    def _factor(self, a: Tensor, b: Tensor, core: Tensor | None, device: torch.device) -> Tensor:
        if core is not None:
            return _cp_rebuild(_f32(core, device), _f32(a, device), _f32(b, device)).flatten(1)
        return _f32(a, device) @ _f32(b, device).flatten(1)

    def dense(self, weight: Tensor) -> Tensor:
        device = weight.device
        product = self._factor(self.w1_a, self.w1_b, self.t1, device) * self._factor(
            self.w2_a, self.w2_b, self.t2, device
        )
        return product.reshape(weight.shape) * self.gamma()


@dataclass(frozen=True, eq=False)
class LokrPatch(LayerPatch):
    """LoKr: ΔW = kron(W1, W2), each side full or a product of two factors (W2 optionally Tucker with t2)."""

    w1: Tensor | None = None
    w1_a: Tensor | None = None
    w1_b: Tensor | None = None
    w2: Tensor | None = None
    w2_a: Tensor | None = None
    w2_b: Tensor | None = None
    t2: Tensor | None = None

    kind: ClassVar[str] = "lokr"

    def rank(self) -> int | None:
        # The rank comes from whichever side is decomposed; with neither, alpha is ignored (γ = 1).
        if self.w2_b is not None:
            return int(self.w2_b.shape[0])
        if self.w1_b is not None:
            return int(self.w1_b.shape[0])
        return None

    def gamma(self) -> float:
        if self.scale is None and self.rank() is None:
            return 1.0
        return super().gamma()

    def _factors(self, side: int) -> tuple[Tensor, Tensor]:
        """The (a, b) pair of a side that is not stored whole; build_patch only builds complete sides."""
        a, b = (self.w1_a, self.w1_b) if side == 1 else (self.w2_a, self.w2_b)
        if a is None or b is None:
            raise ValueError(f"LoKr w{side} has neither a full matrix nor both factors")
        return a, b

    def _w1(self, device: torch.device) -> Tensor:
        if self.w1 is not None:
            return _f32(self.w1, device)
        a, b = self._factors(1)
        return _f32(a, device) @ _f32(b, device)

    def _w2(self, device: torch.device) -> Tensor:
        if self.w2 is not None:
            return _f32(self.w2, device).flatten(1)
        a, b = self._factors(2)
        if self.t2 is not None:
            return _cp_rebuild(_f32(self.t2, device), _f32(a, device), _f32(b, device)).flatten(1)
        return _f32(a, device) @ _f32(b, device).flatten(1)

    def _sizes(self) -> tuple[int, int, int, int]:
        if self.w1 is not None:
            w1_rows, w1_cols = self.w1.shape[0], self.w1.shape[1]
        else:
            a1, b1 = self._factors(1)
            w1_rows, w1_cols = a1.shape[0], b1.shape[1]
        if self.w2 is not None:
            w2_rows, w2_cols = self.w2.shape[0], self.w2[0].numel()
        else:
            a2, b2 = self._factors(2)
            if self.t2 is not None:
                w2_rows, w2_cols = a2.shape[1], b2[0].numel() * self.t2[0, 0].numel()
            else:
                w2_rows, w2_cols = a2.shape[0], b2[0].numel()
        return int(w1_rows), int(w1_cols), int(w2_rows), int(w2_cols)

    def delta_numel(self) -> int:
        a, b, c, d = self._sizes()
        return a * b * c * d

    def delta_rows(self) -> int | None:
        a, _, c, _ = self._sizes()
        return a * c

    def dense(self, weight: Tensor) -> Tensor:
        # A 2-D kron with W2 flattened to [c, d·kh·kw] equals the 4-D kron of [a,b,1,1] and [c,d,kh,kw] after reshape.
        device = weight.device
        return torch.kron(self._w1(device), self._w2(device)).reshape(weight.shape) * self.gamma()


@dataclass(frozen=True, eq=False)
class Ia3Patch(LayerPatch):
    """(IA)³: ΔW = W ⊙ w, scaling output rows (or input columns when `on_input`); merged W' = W ⊙ (1 + m·w)."""

    weight: Tensor = None  # type: ignore[assignment]
    on_input: bool = False

    kind: ClassVar[str] = "ia3"

    def delta_numel(self) -> int:
        return -1  # checked by shape in `check`

    def check(self, weight_shape: torch.Size, bias_shape: torch.Size | None) -> str | None:
        axis = 1 if self.on_input else 0
        if len(weight_shape) < 2 or self.weight.numel() != weight_shape[axis]:
            return f"ia3 vector of {self.weight.numel()} does not fit axis {axis} of layer weight {tuple(weight_shape)}"
        return None

    def dense(self, weight: Tensor) -> Tensor:
        vector = _f32(self.weight, weight.device).flatten()
        view = [1, -1] if self.on_input else [-1, 1]
        view += [1] * (weight.dim() - 2)
        return weight * vector.reshape(view) * self.gamma()


@dataclass(frozen=True, eq=False)
class FullPatch(LayerPatch):
    """Full difference: ΔW = diff, Δbias = diff_b."""

    diff: Tensor = None  # type: ignore[assignment]
    diff_b: Tensor | None = None

    kind: ClassVar[str] = "full"

    def delta_numel(self) -> int:
        return self.diff.numel()

    def delta_rows(self) -> int | None:
        return int(self.diff.shape[0]) if self.diff.dim() > 1 else None

    def dense(self, weight: Tensor) -> Tensor:
        return _f32(self.diff, weight.device).reshape(weight.shape) * self.gamma()

    def bias_delta_tensor(self) -> Tensor | None:
        return self.diff_b


@dataclass(frozen=True, eq=False)
class NormPatch(LayerPatch):
    """LayerNorm/GroupNorm: Δweight = w_norm, Δbias = b_norm."""

    w_norm: Tensor = None  # type: ignore[assignment]
    b_norm: Tensor | None = None

    kind: ClassVar[str] = "norm"

    def delta_numel(self) -> int:
        return self.w_norm.numel()

    def dense(self, weight: Tensor) -> Tensor:
        return _f32(self.w_norm, weight.device).reshape(weight.shape) * self.gamma()

    def bias_delta_tensor(self) -> Tensor | None:
        return self.b_norm
