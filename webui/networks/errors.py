"""Errors of the networks layer, all user-facing (the app keeps serving and the model is unchanged)."""
from __future__ import annotations

from webui.errors import ModelFileError, UserInputError


class LoraNotFoundError(UserInputError):
    """No LoRA file answers to the requested name."""


class LoraFileError(ModelFileError):
    """A LoRA file that cannot be read or used at all (corrupt, truncated, NaN/Inf, no known keys)."""


class LoraApplyError(UserInputError):
    """A LoRA that does not fit the loaded model (wrong family or layer shapes); nothing from it was applied."""
