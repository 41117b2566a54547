"""Import spandrel where torchvision is missing or broken: only its inpainting/face archs need torchvision."""
from __future__ import annotations

import enum
import importlib
import importlib.util
import sys
import types
from typing import Any

from webui.errors import ModelFileError

_STUB_NAMES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


class _InterpolationMode(enum.Enum):
    # LaMa names these at import time only; the values are never used by the upscaler architectures.
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _needs_torchvision(*_args: Any, **_kwargs: Any) -> Any:
    raise ModelFileError("this model architecture (LaMa / RestoreFormer) needs torchvision, which is not installed; "
                         "only upscaler models are supported")


def _torchvision_works() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision.transforms.functional")
    except Exception:  # PyPI's torchvision beside a mismatched torch fails with RuntimeError on import
        for name in [key for key in sys.modules if key == "torchvision" or key.startswith("torchvision.")]:
            del sys.modules[name]  # leave no half-initialised package behind for other importers
        return False
    return True


def _stub_modules() -> dict[str, types.ModuleType]:
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = _InterpolationMode  # type: ignore[attr-defined]
    functional.rotate = _needs_torchvision  # type: ignore[attr-defined]
    functional.normalize = _needs_torchvision  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    return {"torchvision": root, "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional}


def import_spandrel() -> types.ModuleType:
    """The spandrel package; without a working torchvision, stand-ins are visible only while it imports."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    if importlib.util.find_spec("spandrel") is None:
        raise ModelFileError("the spandrel package is not installed; run the set-up script again "
                             "(it installs spandrel without its torchvision dependency)")
    if _torchvision_works():
        return importlib.import_module("spandrel")
    stubs = _stub_modules()
    sys.modules.update(stubs)
    try:
        return importlib.import_module("spandrel")
    finally:
        # Other libraries (transformers, diffusers) probe for torchvision: they must not find our stand-in.
        for name in _STUB_NAMES:
            if sys.modules.get(name) is stubs[name]:
                del sys.modules[name]
