"""Errors and warnings raised by autometa.

Every error autometa raises on purpose derives from :class:`AutometaError`, so a caller
can tell "autometa refused this input" apart from a bug. Messages are one line: they name
the parameter or input, state the constraint and quote what was received.
"""

from __future__ import annotations

__all__ = [
    "AutometaError",
    "InputError",
    "ModelVersionError",
    "ResumeError",
    "AutometaWarning",
]


class AutometaError(Exception):
    """Root of every error autometa raises on purpose."""


class InputError(AutometaError, ValueError):
    """The data, label or a setting given by the user cannot be used as it is."""


class ResumeError(AutometaError):
    """An output directory holds a run that does not match the run being started."""


class ModelVersionError(AutometaError):
    """A saved model was written by package versions other than the installed ones."""


class AutometaWarning(UserWarning):
    """Something in the input was repaired (rows dropped, columns dropped, folds reduced)."""
