"""Optional dependencies: deferred imports that fail with an install hint.

torch (with the glyph fonts, the ``nas`` extra) is only needed by
:mod:`autometa.metalearn` and :mod:`autometa.nas`; importing :mod:`autometa` never
imports it. Those subpackages call :func:`require_torch` as they are imported, so a
missing torch is one :class:`MissingDependencyError` naming the subpackage and the
pinned install command, not a bare ``ModuleNotFoundError`` from deep inside. ::

    from autometa.extras import require_torch

    torch = require_torch("autometa.checkpoint")
"""

from __future__ import annotations

import importlib
from types import ModuleType

from autometa.exceptions import AutometaError

__all__ = ["DISTRIBUTED_INSTALL_HINT", "TORCH_INSTALL_HINT", "MissingDependencyError", "require_distributed", "require_torch"]

TORCH_INSTALL_HINT = "pip install torch==2.13.0"
DISTRIBUTED_INSTALL_HINT = "pip install 'autometa[distributed]'"


class MissingDependencyError(AutometaError, ImportError):
    """An optional dependency needed by the requested feature is not installed."""


def require_torch(feature: str = "autometa.metalearn") -> ModuleType:
    """Return the torch module, or raise :class:`MissingDependencyError` with the install hint.

    Parameters
    ----------
    feature : str
        What needs torch, named in the error message (a subpackage such as
        ``"autometa.nas"``).

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
            f"{feature} needs torch, which could not be imported ({error}): "
            f"{TORCH_INSTALL_HINT} (or pip install 'autometa[nas]')."
        ) from error


def require_distributed(feature: str = "parallel tuning") -> ModuleType:
    """Return the ``distributed`` module (Dask), or raise :class:`MissingDependencyError`.

    Parameters
    ----------
    feature : str
        What needs Dask, named in the error message (e.g. ``"tune(n_workers=...)"``).
    """
    try:
        return importlib.import_module("distributed")
    except ImportError as error:
        raise MissingDependencyError(
            f"{feature} needs Dask distributed, which could not be imported ({error}): {DISTRIBUTED_INSTALL_HINT}."
        ) from error
