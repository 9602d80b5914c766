"""Deferred import of torch, the optional dependency of :mod:`autometa.metalearn`."""

from __future__ import annotations

import importlib
from types import ModuleType

from autometa.exceptions import AutometaError

__all__ = ["TORCH_INSTALL_HINT", "MissingDependencyError", "require_torch"]

TORCH_INSTALL_HINT = "pip install torch==2.13.0"


class MissingDependencyError(AutometaError, ImportError):
    """An optional dependency needed by the requested feature is not installed."""


def require_torch() -> ModuleType:
    """Return the torch module, or raise :class:`MissingDependencyError` with the install hint.

    Raises
    ------
    MissingDependencyError
        torch cannot be imported. Install the pinned CPU build first
        (``pip install torch==2.13.0``; an unpinned install may pull a multi-GB CUDA
        build), or ``pip install 'autometa[nas]'``.
    """
    try:
        return importlib.import_module("torch")
    except ImportError as error:
        raise MissingDependencyError(
            f"autometa.metalearn needs torch, which could not be imported ({error}): "
            f"{TORCH_INSTALL_HINT} (or pip install 'autometa[nas]')."
        ) from error
