"""Versions of Python and of the packages a saved model or a run depends on."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["VERSIONED_PACKAGES", "package_versions"]

#: The packages whose versions a run records and a saved model is checked against.
VERSIONED_PACKAGES = ("autometa", "scikit-learn", "numpy", "pandas", "scipy", "ConfigSpace", "smac", "optuna", "joblib")


def package_versions() -> dict[str, str]:
    """Versions of Python and of :data:`VERSIONED_PACKAGES` ("not installed" when absent)."""
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
