"""Error types for mistakes a user can make; the UI and API turn them into readable messages."""
from __future__ import annotations


class UserInputError(ValueError):
    """Bad input from the user (a prompt, a size, a name); the app keeps serving and nothing was changed."""


class ModelFileError(UserInputError):
    """A model file that cannot be used: corrupt, truncated, unsafe pickle, or of an unknown architecture."""


class PathOutsideRootError(UserInputError):
    """A user-given path that would leave the folder it must stay in."""
