"""The candidates of ensemble selection: the best trials' out-of-fold predictions, bounded
in memory and on disk."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from autometa.exceptions import InputError

__all__ = ["Candidate", "OOFPool"]


@dataclass(frozen=True)
class Candidate:
    """One trial in the pool: its number, loss (lower is better) and out-of-fold predictions."""

    number: int
    loss: float
    oof: np.ndarray
    has_fold_models: bool


class OOFPool:
    """The out-of-fold predictions of the ``nbest`` best trials so far.

    Each added trial's predictions are written to ``<directory>/<trial>.npy`` (atomically:
    a temporary file, then a rename), beside ``trials.jsonl``, so that a resumed run
    selects its ensemble over the trials it did not redo; a trial that falls out of the
    best ``nbest`` is dropped from memory and its file removed (it can never come back:
    losses do not change). Fold models, when given, go to a private temporary directory
    under the same rule and are removed by :meth:`close`.

    Parameters
    ----------
    directory : path-like, optional
        Where the ``.npy`` files go; None keeps the predictions in memory only.
    nbest : int
        The most trials kept.

    Notes
    -----
    Not thread-safe: one writer (the thread that runs :func:`autometa.tune`).
    """

    def __init__(self, directory: str | os.PathLike[str] | None, *, nbest: int = 20) -> None:
        if isinstance(nbest, bool) or not isinstance(nbest, int) or nbest < 1:
            raise InputError(f"The 'nbest' parameter of OOFPool must be an integer of at least 1; got {nbest!r}.")
        self.directory = None if directory is None else Path(directory)
        self.nbest = nbest
        self._items: dict[int, tuple[float, np.ndarray]] = {}
        self._models_dir: Path | None = None
        self._models: set[int] = set()

    def __len__(self) -> int:
        return len(self._items)

    def _file(self, number: int) -> Path:
        return Path(self.directory or ".") / f"{number}.npy"

    def _model_file(self, number: int) -> Path:
        return Path(self._models_dir or ".") / f"{number}.joblib"

    def add(self, number: int, loss: float, oof: np.ndarray | None, fold_models: list[Any] | None = None) -> bool:
        """Offer a finished trial; returns whether it is among the best ``nbest`` (kept).

        A trial without predictions or with a non-finite loss is not kept.
        """
        if oof is None or not np.isfinite(loss):
            return False
        if len(self._items) >= self.nbest and (loss, number) >= self._worst():
            return False
        arr = np.asarray(oof, dtype=np.float32)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            _save_npy(self._file(number), arr)
        self._items[number] = (float(loss), arr)
        if fold_models:
            if self._models_dir is None:
                self._models_dir = Path(tempfile.mkdtemp(prefix="autometa-folds-"))
            tmp = self._model_file(number).with_suffix(".tmp")
            joblib.dump(list(fold_models), tmp)
            os.replace(tmp, self._model_file(number))
            self._models.add(number)
        while len(self._items) > self.nbest:
            self._drop(max(self._items, key=lambda n: (self._items[n][0], n)))
        return number in self._items

    def _worst(self) -> tuple[float, int]:
        n = max(self._items, key=lambda k: (self._items[k][0], k))
        return self._items[n][0], n

    def _drop(self, number: int) -> None:
        self._items.pop(number, None)
        if self.directory is not None:
            self._file(number).unlink(missing_ok=True)
        if number in self._models:
            self._model_file(number).unlink(missing_ok=True)
            self._models.discard(number)

    def restore(self, trials: Iterable[tuple[int, float]]) -> int:
        """Read back the predictions of finished trials ``(number, loss)`` of a resumed run
        from ``directory``; returns how many were found."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        found = 0
        for number, loss in sorted(trials, key=lambda t: (t[1], t[0])):
            if not np.isfinite(loss):
                continue
            try:
                arr = np.load(self._file(number), allow_pickle=False)
            except (OSError, ValueError):  # missing (dropped) or cut short: not a candidate
                continue
            if self.add(number, loss, arr):
                found += 1
        return found

    def candidates(self) -> list[Candidate]:
        """The trials kept, best first."""
        order = sorted(self._items, key=lambda n: (self._items[n][0], n))
        return [Candidate(n, self._items[n][0], self._items[n][1], n in self._models) for n in order]

    def fold_models(self, number: int) -> list[Any] | None:
        """The fold models of a kept trial, or None when there are none."""
        if number not in self._models:
            return None
        return list(joblib.load(self._model_file(number)))

    def fold_model_bytes(self, number: int) -> int:
        """Bytes on disk of a kept trial's fold models (0 when there are none)."""
        if number not in self._models:
            return 0
        try:
            return self._model_file(number).stat().st_size
        except OSError:
            return 0

    def close(self) -> None:
        """Remove the fold models (the predictions on disk stay, for a resume)."""
        if self._models_dir is not None:
            shutil.rmtree(self._models_dir, ignore_errors=True)
        self._models_dir = None
        self._models.clear()


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())  # on disk before the trial's line in trials.jsonl names it
    os.replace(tmp, path)
