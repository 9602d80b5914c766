"""Deferred import of torch for :mod:`autometa.nas`, through the guard of :mod:`autometa.metalearn`."""

from __future__ import annotations

from autometa.exceptions import AutometaError

__all__ = ["require_torch_for_nas"]


def require_torch_for_nas() -> None:
    """Import torch, or raise the metalearn guard's ``MissingDependencyError`` naming ``autometa.nas``.

    :mod:`autometa.metalearn` checks for torch as it is imported; its error (an
    :class:`~autometa.exceptions.AutometaError` and an ``ImportError`` carrying the pinned
    install hint) is re-raised here with this package's name in the message.

    Raises
    ------
    MissingDependencyError
        torch cannot be imported.
    """
    try:
        from autometa.metalearn._imports import require_torch
    except ImportError as error:
        if isinstance(error, AutometaError):
            raise type(error)(str(error).replace("autometa.metalearn", "autometa.nas", 1)) from error.__cause__
        raise
    require_torch()
