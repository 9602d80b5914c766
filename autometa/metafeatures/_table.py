"""The validated, array form of a table that every meta-feature group reads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from autometa.exceptions import InputError

__all__ = ["Table", "make_table", "PROBLEM_TYPES"]

PROBLEM_TYPES = ("binary", "multiclass", "regression")


@dataclass(frozen=True, eq=False)
class Table:
    """Numeric and nominal input attributes and the label of one problem, as arrays.

    Attributes
    ----------
    numeric_columns : tuple of ndarray of shape (n,), float64
        Numeric input attributes, one array per column; NaN marks a missing (or infinite)
        value. Each is a view of the frame's column where it is float64 without
        infinities, so a tall table is not copied (one 2-D array of a table spread over
        several pandas blocks would be a copy of all of it). :meth:`numeric_block` and
        :meth:`numeric_subset` give 2-D arrays of some columns or rows.
    nominal : ndarray of shape (n, p_cat), int32
        Category codes of the nominal input attributes; -1 marks a missing value.
        Column-major, so that per-column passes over a tall table read contiguous memory.
    n_levels : ndarray of shape (p_cat,), int64
        Number of categories of each nominal attribute (declared categories of a
        categorical dtype, observed values otherwise).
    problem_type : str
        "binary", "multiclass" or "regression".
    y_codes : ndarray of shape (n,), int64
        Class codes in ``range(n_classes)`` for classification; empty for regression.
    n_classes : int
        Number of classes (declared categories of a categorical label), 0 for regression.
    y_values : ndarray of shape (n,), float64
        The numeric target for regression; empty for classification.
    numeric_dense : ndarray of shape (n, p_num) or None
        The numeric columns as one 2-D view of the frame's float block, when the frame
        holds them so (no copy); None otherwise.
    """

    numeric_columns: tuple[np.ndarray, ...]
    nominal: np.ndarray
    n_levels: np.ndarray
    problem_type: str
    y_codes: np.ndarray
    n_classes: int
    y_values: np.ndarray
    numeric_dense: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return int(self.nominal.shape[0])

    @property
    def numeric_width(self) -> int:
        return len(self.numeric_columns)

    def numeric_block(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Numeric columns ``start:stop`` as one 2-D array: a view of the frame's float
        block when there is one, otherwise a column-major copy of those columns only."""
        if self.numeric_dense is not None:
            return self.numeric_dense[:, start:stop]
        return self.numeric_subset(columns=np.arange(self.numeric_width)[start:stop])

    def numeric_subset(self, rows: np.ndarray | None = None, columns: np.ndarray | None = None) -> np.ndarray:
        """The numeric attributes of ``rows`` and ``columns`` (indices; all when None):
        the frame's block itself when both are None and it has one, otherwise a
        column-major copy of the subset only."""
        if rows is None and columns is None and self.numeric_dense is not None:
            return self.numeric_dense
        cols = range(self.numeric_width) if columns is None else columns
        n = self.n_rows if rows is None else len(rows)
        out = np.empty((n, len(cols)), dtype=np.float64, order="F")
        for j, c in enumerate(cols):
            col = self.numeric_columns[int(c)]
            out[:, j] = col if rows is None else col[rows]
        return out

    @property
    def is_classification(self) -> bool:
        return self.problem_type != "regression"

    @cached_property
    def numeric_missing(self) -> np.ndarray:
        """Boolean mask of the missing numeric cells, shape (n, p_num), computed once."""
        out = np.empty((self.n_rows, self.numeric_width), dtype=bool, order="F")
        for j, col in enumerate(self.numeric_columns):
            np.isnan(col, out=out[:, j])
        return out

    @cached_property
    def numeric_has_missing(self) -> bool:
        return bool(self.numeric_missing.any())


def _is_nominal(s: pd.Series) -> bool:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return True
    return not pd.api.types.is_numeric_dtype(dtype)


def _numeric_column(s: pd.Series) -> np.ndarray:
    """One numeric column as float64 with NaN for missing and infinite values: a view of
    the frame's column when it is float64 and finite."""
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    return np.where(infinite, np.nan, values) if infinite.any() else values


def _one_block(X: pd.DataFrame, columns: list[str], views: tuple[np.ndarray, ...]) -> np.ndarray | None:
    """The columns as one 2-D view when they all lie in one float64 block of the frame
    (as a frame built from one array holds them), so that nothing needs a copy; None when
    they are spread over blocks or any was copied (a conversion, infinities)."""
    bases = {id(v.base) for v in views}
    if not views or len(bases) != 1 or views[0].base is None:
        return None
    dense = X[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    return dense if np.shares_memory(dense, views[0]) else None


def _codes(s: pd.Series) -> tuple[np.ndarray, int]:
    """Category codes (-1 = missing) and the number of categories of one column."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(dtype=np.int64), len(s.cat.categories)
    codes, uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), len(uniques)


def make_table(X: pd.DataFrame, y: pd.Series, problem_type: str) -> Table:
    """Validate ``X``, ``y`` and ``problem_type`` and convert them to a :class:`Table`.

    Rows whose label is missing are dropped. Categorical, string, object and boolean
    columns are nominal; every other column is numeric.

    Raises
    ------
    InputError
        ``X`` is not a DataFrame or has duplicated column names, ``y`` is not a Series of
        the same length, an unknown problem type, a non-numeric regression target, or no
        labelled row.
    """
    if not isinstance(X, pd.DataFrame):
        raise InputError(f"The 'X' parameter of extract_frame must be a pandas DataFrame; got {type(X).__name__}.")
    if not isinstance(y, pd.Series):
        raise InputError(f"The 'y' parameter of extract_frame must be a pandas Series; got {type(y).__name__}.")
    if len(y) != len(X):
        raise InputError(
            f"The 'y' parameter of extract_frame must have one label per row of X ({len(X)} rows); got {len(y)}."
        )
    if X.columns.has_duplicates:
        dupes = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
        raise InputError(f"The 'X' parameter of extract_frame has duplicated column names {dupes}; rename them.")
    if problem_type not in PROBLEM_TYPES:
        raise InputError(
            f"The 'problem_type' parameter of extract_frame must be one of {PROBLEM_TYPES}; got {problem_type!r}."
        )

    keep = y.notna().to_numpy()
    if not keep.any():
        raise InputError("The label 'y' has no values (all missing); meta-features need labelled rows.")
    if not keep.all():
        X = X.loc[keep]
        y = y.loc[keep]

    nominal_cols = [c for c in X.columns if _is_nominal(X[c])]
    nominal_set = set(nominal_cols)
    numeric_cols = [c for c in X.columns if c not in nominal_set]
    n = len(y)

    numeric = tuple(_numeric_column(X[c]) for c in numeric_cols)
    dense = _one_block(X, numeric_cols, numeric)

    nominal = np.empty((n, len(nominal_cols)), dtype=np.int32, order="F")  # contiguous columns
    n_levels = np.zeros(len(nominal_cols), dtype=np.int64)
    for j, col in enumerate(nominal_cols):
        codes, k = _codes(X[col])
        nominal[:, j] = codes
        n_levels[j] = k

    y_codes = np.zeros(0, dtype=np.int64)
    y_values = np.zeros(0, dtype=np.float64)
    n_classes = 0
    if problem_type == "regression":
        values = pd.to_numeric(y, errors="coerce")
        if values.isna().any():
            bad = y[values.isna()].iloc[0]
            raise InputError(
                f"The label 'y' must be numeric for problem type 'regression'; got the value {bad!r}."
            )
        y_values = values.to_numpy(dtype=np.float64)
    else:
        y_codes, n_classes = _codes(y)

    return Table(
        numeric_dense=dense,
        numeric_columns=numeric,
        nominal=nominal,
        n_levels=n_levels,
        problem_type=problem_type,
        y_codes=y_codes,
        n_classes=int(n_classes),
        y_values=y_values,
    )
