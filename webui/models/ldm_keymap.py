"""Generic, invertible module-prefix key map between an LDM state dict and a diffusers/transformers one."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

# Tensor transforms a rename may need; each has an exact inverse so round trips are bit-identical.
SAME = ""
CONV1X1 = "conv1x1"  # LDM stores a 1x1 conv (C_out, C_in, 1, 1) where diffusers has a Linear (C_out, C_in)
TRANSPOSE = "transpose"  # OpenCLIP keeps x @ P, a Linear keeps P.T as its weight
SPLIT3 = "split3"  # OpenCLIP fuses q/k/v into one in_proj tensor along dim 0


@dataclass(frozen=True)
class Part:
    """A rename below a module prefix: `ldm` and `diffusers` are dotted sub-paths (or whole leaf names)."""

    ldm: str
    diffusers: str | tuple[str, str, str]
    transform: str = SAME


@dataclass(frozen=True)
class ModuleMap:
    """One module (or one bare parameter when `exact`) that lives at `ldm` in LDM and at `diffusers` in diffusers.

    With no `parts`, names below the prefix are identical on both sides; with `parts`, every key below the
    prefix must match one of them, so a stray tensor is reported instead of silently renamed.
    """

    ldm: str
    diffusers: str
    parts: tuple[Part, ...] = ()
    transform: str = SAME
    exact: bool = False


def _forward(tensor: torch.Tensor, transform: str, key: str) -> torch.Tensor:
    if transform == CONV1X1 and key.endswith("weight") and tensor.ndim == 4:
        # A view, not a copy: the values stay bit-identical and no memory is spent.
        return tensor.reshape(tensor.shape[0], tensor.shape[1])
    if transform == TRANSPOSE:
        return tensor.t().contiguous()
    return tensor


def _backward(tensor: torch.Tensor, transform: str, key: str) -> torch.Tensor:
    if transform == CONV1X1 and key.endswith("weight") and tensor.ndim == 2:
        return tensor.reshape(tensor.shape[0], tensor.shape[1], 1, 1)
    if transform == TRANSPOSE:
        return tensor.t().contiguous()
    return tensor


def _prefixes(key: str) -> Iterable[tuple[str, str]]:
    """Yield (prefix, rest) splits of a dotted key, longest prefix first (the whole key, rest "", included)."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        yield ".".join(parts[:i]), ".".join(parts[i:])


class KeyMap:
    """Both directions of one component's mapping, built once from its `ModuleMap` list."""

    def __init__(self, modules: Iterable[ModuleMap]) -> None:
        self._by_ldm: dict[str, ModuleMap] = {}
        self._by_diffusers: dict[str, ModuleMap] = {}
        for module in modules:
            if module.ldm in self._by_ldm or module.diffusers in self._by_diffusers:
                raise ValueError(f"duplicate module in key map: {module.ldm} / {module.diffusers}")
            self._by_ldm[module.ldm] = module
            self._by_diffusers[module.diffusers] = module

    def to_diffusers(self, state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
        """Map LDM keys (component prefix already removed); returns (converted, keys that matched nothing)."""
        out: dict[str, torch.Tensor] = {}
        unmapped: list[str] = []
        for key, tensor in state_dict.items():
            mapped = self._one_to_diffusers(key, tensor)
            if mapped is None:
                unmapped.append(key)
            else:
                out.update(mapped)
        return out, unmapped

    def to_ldm(self, state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
        """Map diffusers keys to LDM keys; fused q/k/v pieces are concatenated once all three are seen."""
        out: dict[str, torch.Tensor] = {}
        unmapped: list[str] = []
        pending: dict[str, list[torch.Tensor | None]] = {}
        pending_sources: dict[str, list[str]] = {}
        for key, tensor in state_dict.items():
            found = self._locate_diffusers(key)
            if found is None:
                unmapped.append(key)
                continue
            ldm_key, transform, index = found
            if transform == SPLIT3:
                pending.setdefault(ldm_key, [None, None, None])[index] = tensor
                pending_sources.setdefault(ldm_key, []).append(key)
            else:
                out[ldm_key] = _backward(tensor, transform, ldm_key)
        for ldm_key, pieces in pending.items():
            if any(piece is None for piece in pieces):
                # Without all of q, k and v the fused tensor cannot be rebuilt; report what was there.
                unmapped.extend(pending_sources[ldm_key])
            else:
                out[ldm_key] = torch.cat(pieces, dim=0)  # type: ignore[arg-type]
        return out, unmapped

    def _one_to_diffusers(self, key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor] | None:
        for prefix, rest in _prefixes(key):
            module = self._by_ldm.get(prefix)
            if module is None:
                continue
            if module.exact or rest == "":
                if not (module.exact and rest == ""):
                    return None
                return {module.diffusers: _forward(tensor, module.transform, module.diffusers)}
            if not module.parts:
                return {f"{module.diffusers}.{rest}": tensor}
            for part in module.parts:
                if part.transform == SPLIT3:
                    if rest == part.ldm:
                        names = part.diffusers
                        chunks = tensor.chunk(3, dim=0)
                        return {f"{module.diffusers}.{name}": chunk for name, chunk in zip(names, chunks, strict=True)}
                elif rest.startswith(part.ldm + "."):
                    new = f"{module.diffusers}.{part.diffusers}{rest[len(part.ldm):]}"
                    return {new: _forward(tensor, part.transform, new)}
            return None
        return None

    def _locate_diffusers(self, key: str) -> tuple[str, str, int] | None:
        """Find (LDM key, transform, q/k/v index) for one diffusers key."""
        for prefix, rest in _prefixes(key):
            module = self._by_diffusers.get(prefix)
            if module is None:
                continue
            if module.exact or rest == "":
                if not (module.exact and rest == ""):
                    return None
                return module.ldm, module.transform, 0
            if not module.parts:
                return f"{module.ldm}.{rest}", SAME, 0
            for part in module.parts:
                if part.transform == SPLIT3:
                    if rest in part.diffusers:
                        return f"{module.ldm}.{part.ldm}", SPLIT3, part.diffusers.index(rest)
                elif isinstance(part.diffusers, str) and rest.startswith(part.diffusers + "."):
                    return f"{module.ldm}.{part.ldm}{rest[len(part.diffusers):]}", part.transform, 0
            return None
        return None
