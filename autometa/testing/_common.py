"""What both contract suites share: a synthetic loss, a session cache and strict xfails."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pytest

from autometa.spaces import FAMILY_KEY, config_to_dict

__all__ = ["KnownViolations", "session_cached", "synthetic_loss"]

T = TypeVar("T")

_CACHE = pytest.StashKey[dict[tuple[Any, ...], Any]]()


def _unit(text: str) -> float:
    """A fixed number in [0, 1) for a string (CRC-32: the same on every machine and run)."""
    return zlib.crc32(text.encode()) / 2**32


def synthetic_loss(config: Mapping[str, Any]) -> float:
    """A deterministic loss of a configuration alone (lower is better), for contract tests.

    Each family and each categorical value adds a fixed pseudo-random amount (CRC-32 of
    ``name=value``), each numeric value ``0.1 * log(1 + |value|)``: the loss grows with
    every numeric hyperparameter, so the optimum of an integer one sits at its lower
    bound, a discrete corner (as kNN with one neighbour often is on real tables) where an
    optimizer is tempted to propose the same point again.
    """
    values = config_to_dict(config)
    loss = _unit(f"{FAMILY_KEY}={values.get(FAMILY_KEY, '')}")
    for name, value in values.items():
        if name == FAMILY_KEY:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            loss += 0.1 * math.log1p(abs(float(value)))
        else:
            loss += 0.1 * _unit(f"{name}={value}")
    return loss


def session_cached(request: pytest.FixtureRequest, key: tuple[Any, ...], build: Callable[[], T]) -> T:
    """``build()``, computed once per test session for ``key`` (kept in the pytest config's
    stash), so that every subclass of a contract shares it: a fixture defined in a base
    class is set up again for each subclass, whatever its scope."""
    cache = request.config.stash.setdefault(_CACHE, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]  # type: ignore[no-any-return]


class KnownViolations:
    """Mixin: ``known_violations`` maps a contract test's name to why the implementation
    fails it; that test is then marked ``xfail(strict=True)``, so it is reported, keeps
    running, and fails once the implementation is fixed (remove the entry then)."""

    #: Test name (without parameters) -> reason, e.g. ``{"test_no_configuration_is_asked_twice": "..."}``.
    known_violations: Mapping[str, str] = {}

    @pytest.fixture(autouse=True)
    def _mark_known_violations(self, request: pytest.FixtureRequest) -> None:
        reason = self.known_violations.get(request.function.__name__)
        if reason:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
