"""Resumable runs: one checkpoint file holding a run's state and the settings that made it.

The meta-learning trainer (:func:`autometa.metalearn.fit_meta`), the DARTS search
(:meth:`autometa.nas.DARTSSearch.search`) and MetaNAS (:meth:`autometa.nas.MetaNAS.meta_train`)
resume through it: each names the settings a resumed run must share (algorithm, step
sizes, seed, a fingerprint of the data, ...), saves its state every so often and, when
started again on the same file, continues from the saved state, or refuses with
:class:`~autometa.exceptions.ResumeError` naming the settings that differ. ::

    ckpt = Checkpoint("run/checkpoint.pt", {"algo": "maml", "seed": 0})
    state = ckpt.load()                     # None: nothing saved yet
    done = state["iterations"] if state else 0
    ...
    ckpt.save({"iterations": done, "model": model.state_dict()})

torch is needed (files are ``torch.save`` pickles) and imported only when a file is read
or written. Load only checkpoints you wrote yourself: unpickling runs code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autometa.exceptions import InputError, ResumeError
from autometa.extras import require_torch

__all__ = ["Checkpoint"]

_MISSING = object()


class Checkpoint:
    """The checkpoint file of one resumable run.

    The file is a ``torch.save`` pickle of a dict: the entry ``"settings"`` and the state
    entries given to :meth:`save`. :meth:`load` returns the state only when the saved
    settings equal this run's, so a run never continues from a run configured otherwise.
    Settings are plain data compared with ``==`` (numbers, strings, tuples, lists, dicts,
    frozen dataclasses); what a resumed run may change, such as the total number of
    iterations, does not belong in them. :meth:`save` writes a temporary file beside
    ``path`` and renames it over ``path``, so an interrupted save leaves the previous
    checkpoint intact. Not thread-safe: one run, one file.

    Parameters
    ----------
    path : path-like
        The checkpoint file; its directory is created by :meth:`save`.
    settings : mapping of str to object
        What must match for a saved run to be resumed.
    legacy_key : str, optional
        For files written before this class existed, which held one settings string under
        ``"key"`` instead of ``"settings"``: such a file is resumed when its key equals
        ``legacy_key`` (and refused otherwise).
    """

    def __init__(
        self, path: str | os.PathLike[str], settings: Mapping[str, Any], *, legacy_key: str | None = None
    ) -> None:
        if not isinstance(settings, Mapping):
            raise InputError(f"The 'settings' parameter of Checkpoint must be a mapping; got {type(settings).__name__}.")
        self.path = Path(path)
        self.settings = dict(settings)
        self.legacy_key = legacy_key

    def load(self, *, map_location: Any = None) -> dict[str, Any] | None:
        """The saved state, or None when there is no file.

        Parameters
        ----------
        map_location : optional
            Passed to ``torch.load`` (such as the run's device).

        Returns
        -------
        dict or None
            The entries given to :meth:`save` (without ``"settings"``).

        Raises
        ------
        ResumeError
            The file holds a run with other settings (the message names each differing
            setting with both values), holds no settings, or cannot be read.
        """
        if not self.path.is_file():
            return None
        torch = require_torch("autometa.checkpoint")
        try:
            saved = torch.load(self.path, weights_only=False, map_location=map_location)
        except Exception as exc:  # a truncated or foreign file: unpickling can raise anything
            raise ResumeError(
                f"The checkpoint '{self.path}' cannot be read ({type(exc).__name__}: {exc}); remove it or choose "
                "another output directory."
            ) from None
        if not isinstance(saved, dict):
            raise ResumeError(f"The checkpoint '{self.path}' holds no autometa run (a {type(saved).__name__}); "
                              "remove it or choose another output directory.")
        if "settings" not in saved:
            if self.legacy_key is not None and saved.get("key") == self.legacy_key:
                return {k: v for k, v in saved.items() if k != "key"}
            what = "a run with other settings" if "key" in saved else "no settings of an autometa run"
            raise ResumeError(f"The checkpoint '{self.path}' holds {what}; remove it or choose another output directory.")
        differences = _differences(saved["settings"], self.settings)
        if differences:
            raise ResumeError(
                f"The checkpoint '{self.path}' holds a run with other settings: {'; '.join(differences)}; remove it "
                "or choose another output directory."
            )
        return {k: v for k, v in saved.items() if k != "settings"}

    def save(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` with the settings, atomically (a temporary file, then ``os.replace``).

        Parameters
        ----------
        state : mapping of str to object
            Anything ``torch.save`` pickles (tensors, state dicts, records); the key
            ``"settings"`` is reserved.
        """
        if "settings" in state:
            raise InputError("The 'state' parameter of Checkpoint.save must not hold the reserved key 'settings'.")
        torch = require_torch("autometa.checkpoint")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save({"settings": self.settings, **state}, tmp)
        os.replace(tmp, self.path)

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, {self.settings!r})"


def _differences(saved: Any, current: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``name (saved value in the file, value now)`` of every differing setting, nested dicts by dotted name."""
    if not isinstance(saved, Mapping):
        return [f"{prefix or 'settings'} ({_show(saved)} in the file, {_show(dict(current))} now)"]
    out: list[str] = []
    for key in sorted(set(saved) | set(current), key=str):
        before, now = saved.get(key, _MISSING), current.get(key, _MISSING)
        if isinstance(before, Mapping) and isinstance(now, Mapping):
            out += _differences(before, now, f"{prefix}{key}.")
        elif not _equal(before, now):
            out.append(f"{prefix}{key} ({_show(before)} in the file, {_show(now)} now)")
    return out


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an array-like whose == is elementwise
        return repr(a) == repr(b)


def _show(value: Any, limit: int = 60) -> str:
    if value is _MISSING:
        return "unset"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
