"""The public entry points: :func:`extract` for a Task, :func:`extract_frame` for a table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from autometa.exceptions import InputError
from autometa.metafeatures._catalog import GROUPS, feature_names
from autometa.metafeatures._info_theory import info_theory_features
from autometa.metafeatures._landmarking import landmarking_features
from autometa.metafeatures._simple import simple_features
from autometa.metafeatures._statistical import statistical_features
from autometa.metafeatures._table import Table, make_table

if TYPE_CHECKING:
    from autometa.task import Task

__all__ = ["extract", "extract_frame", "DEFAULT_MAX_ROWS_LANDMARKING"]

#: Rows the landmarkers see at most (a seeded, stratified subsample).
DEFAULT_MAX_ROWS_LANDMARKING = 2000
#: The smallest subsample that leaves every fold a few rows.
_MIN_ROWS_LANDMARKING = 20


def _check_groups(groups: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(groups, str):
        groups = (groups,)
    chosen = tuple(groups)
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown or not chosen:
        raise InputError(
            f"The 'groups' parameter of extract must be a non-empty collection of {GROUPS}; got {chosen!r}."
        )
    return chosen


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"The {name!r} parameter of extract must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def extract_frame(
    X: pd.DataFrame,
    y: pd.Series,
    problem_type: str,
    *,
    groups: Iterable[str] | str = GROUPS,
    max_rows_landmarking: int = DEFAULT_MAX_ROWS_LANDMARKING,
    seed: int = 0,
) -> dict[str, float]:
    """Meta-features of a table given as a DataFrame and a label.

    Parameters
    ----------
    X : DataFrame
        Input attributes. Categorical, string, object and boolean columns are nominal
        (a categorical column's declared categories count as its values, used or not);
        all other columns are numeric. Missing values are allowed anywhere; infinite
        numeric values count as missing.
    y : Series
        The label, one per row of ``X``. Rows with a missing label are dropped. A
        categorical label's declared categories are its classes (as OpenML counts them).
    problem_type : {"binary", "multiclass", "regression"}
        Classification or regression; class-based features are NaN for regression
        (``NumberOfClasses`` is 0, as in OpenML).
    groups : collection of str
        Which of ``"simple"``, ``"statistical"``, ``"info_theory"``, ``"landmarking"``
        to compute.
    max_rows_landmarking : int
        Landmarkers run on a seeded subsample of this many rows, stratified by class for
        classification (class shares are rounded, and a class too rare for a row keeps
        one); tables with at most this many rows are used whole.
    seed : int
        Seed of the subsample, the cross-validation folds and the learners.

    Returns
    -------
    dict of str to float
        Every name of the requested groups (see :data:`FEATURES`), in catalog order. A
        feature that is undefined for these data is NaN.

    Raises
    ------
    InputError
        Malformed inputs (see :func:`make_table`) or parameters.

    Notes
    -----
    Cost on tall tables: counts, moments and entropies are exact on every row, in
    per-column passes; float64 columns are read in place (a table taller than the
    correlation's row sample is never copied whole), and the numeric work runs on one
    BLAS/OpenMP thread. Two features use bounded samples: the landmarkers
    (``max_rows_landmarking`` rows) and ``MeanAbsCorrelationOfNumericAtts`` (a seeded
    sample of ``MAX_CORRELATION_ROWS`` = 100,000 rows). Tables up to those sizes get
    exactly the values they always had.
    """
    chosen = _check_groups(groups)
    max_rows = _check_int("max_rows_landmarking", max_rows_landmarking, _MIN_ROWS_LANDMARKING)
    seed = _check_int("seed", seed, 0)
    table = make_table(X, y, problem_type)
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: the products here are tall and thin, and on a machine busy
    # with trials a thread per core oversubscribes it (measured on the 1,000,000-row
    # stress table at load average 7: the correlation took 6.9 s instead of 0.8 s).
    with threadpool_limits(limits=1):
        return _compute(table, chosen, max_rows, seed)


def _compute(table: Table, chosen: tuple[str, ...], max_rows: int, seed: int) -> dict[str, float]:
    values: dict[str, float] = {}
    if "simple" in chosen:
        values.update(simple_features(table))
    if "statistical" in chosen:
        values.update(statistical_features(table))
    if "info_theory" in chosen:
        values.update(info_theory_features(table))
    if "landmarking" in chosen:
        values.update(landmarking_features(table, max_rows=max_rows, seed=seed))
    return {name: float(values[name]) for name in feature_names(chosen)}


def extract(
    task: Task,
    *,
    groups: Iterable[str] | str = GROUPS,
    max_rows_landmarking: int = DEFAULT_MAX_ROWS_LANDMARKING,
    seed: int | None = None,
) -> dict[str, float]:
    """Named meta-features of a :class:`~autometa.task.Task`.

    Parameters
    ----------
    task : Task
        The learning problem; its validated ``X``, ``y`` and ``problem_type`` are used.
    groups : collection of str
        Which of ``"simple"``, ``"statistical"``, ``"info_theory"``, ``"landmarking"``
        to compute.
    max_rows_landmarking : int
        Landmarkers run on a seeded, stratified subsample of at most this many rows.
    seed : int, optional
        Seed of the landmarkers; the task's seed by default.

    Returns
    -------
    dict of str to float
        See :func:`extract_frame`.

    Examples
    --------
    >>> from autometa import Task
    >>> from autometa.metafeatures import extract
    >>> features = extract(Task(frame, label="y"), groups=("simple",))  # doctest: +SKIP
    >>> features["NumberOfInstances"]  # doctest: +SKIP
    """
    return extract_frame(
        task.X,
        task.y,
        str(task.problem_type),
        groups=groups,
        max_rows_landmarking=max_rows_landmarking,
        seed=int(task.seed) if seed is None else seed,
    )
