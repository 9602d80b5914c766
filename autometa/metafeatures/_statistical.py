"""Statistical meta-features of the numeric attributes: moments and correlation.

Moments are exact, computed over blocks of columns (column sums); the correlation is one
matrix product, over a seeded subsample of the rows of a tall table. Missing values are
skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autometa.metafeatures._aggregate import SUMMARIES, summarize
from autometa.metafeatures._table import Table

__all__ = [
    "statistical_features",
    "column_moments",
    "mean_abs_correlation",
    "MAX_CORRELATION_COLUMNS",
    "MAX_CORRELATION_ROWS",
]

_STATS = ("Means", "StdDev", "Kurtosis", "Skewness")


#: Elements (rows x columns) of the blocks of columns :func:`column_moments` works on at
#: once: every temporary stays a few megabytes, so a tall table is not copied whole.
_BLOCK_ELEMENTS = 1 << 21


def column_moments(values: np.ndarray, missing: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean, standard deviation, skewness and kurtosis of every column, NaN-aware.

    Definitions reproduce OpenML's recorded qualities: ``sd`` divides by ``n - 1``,
    ``skewness = sum(d**3) / ((n - 1) * sd**3)`` and ``kurtosis = sum(d**4) / ((n - 1) *
    sd**4) - 3`` with ``d = x - mean`` over the non-missing values. The standard deviation
    of one value is 0 (as Apache Commons Math gives). Skewness needs three values and
    kurtosis four, and both need a non-constant column; otherwise they are NaN. Exact on
    every row; computed in blocks of columns, so a tall table costs no copy of itself.

    Parameters
    ----------
    values : ndarray of shape (n, p)
        Columns with NaN for missing values.
    missing : ndarray of bool, optional
        ``np.isnan(values)``, when already computed.
    """
    if missing is None:
        missing = np.isnan(values)
    return _moments_by_blocks(lambda start, stop: values[:, start:stop], missing)


def _moments_by_blocks(block: Callable[[int, int], np.ndarray], missing: np.ndarray) -> dict[str, np.ndarray]:
    """The moments of columns taken ``_BLOCK_ELEMENTS`` cells at a time: ``block(start,
    stop)`` gives columns ``start:stop`` as a 2-D array (a view or a copy of those only)."""
    n, p = missing.shape
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    if step >= p:
        return _block_moments(block(0, p), missing)
    parts = [_block_moments(block(j, j + step), missing[:, j : j + step]) for j in range(0, p, step)]
    return {stat: np.concatenate([part[stat] for part in parts]) for stat in _STATS}


def _block_moments(values: np.ndarray, missing: np.ndarray) -> dict[str, np.ndarray]:
    p = values.shape[1]
    any_missing = bool(missing.any())
    if any_missing:
        count = (~missing).sum(axis=0).astype(np.float64)
        filled = np.where(missing, 0.0, values)
    else:
        count = np.full(p, float(values.shape[0]))
        filled = values
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / count
        d = filled - mean
        if any_missing:
            d[missing] = 0.0
        d2 = d * d
        m2 = d2.sum(axis=0)
        m3 = np.einsum("ij,ij->j", d2, d)
        m4 = np.einsum("ij,ij->j", d2, d2)
        if any_missing:
            lo = np.where(missing, np.inf, values).min(axis=0)
            hi = np.where(missing, -np.inf, values).max(axis=0)
        else:
            lo, hi = values.min(axis=0), values.max(axis=0)
        constant = ~(hi > lo)
        var = m2 / (count - 1.0)
        sd = np.sqrt(var)
        sd = np.where(count == 1, 0.0, sd)
        sd = np.where(constant & (count >= 1), 0.0, sd)
        skew = (m3 / (count - 1.0)) / (var * sd)
        kurt = (m4 / (count - 1.0)) / (var * var) - 3.0
    skew = np.where(constant | (count < 3), np.nan, skew)
    kurt = np.where(constant | (count < 4), np.nan, kurt)
    mean = np.where(count > 0, mean, np.nan)
    sd = np.where(count > 0, sd, np.nan)
    return {"Means": mean, "StdDev": sd, "Skewness": skew, "Kurtosis": kurt}


#: Wider tables use this many numeric columns (evenly spaced) for the correlation; its
#: cost grows with the square of the width.
MAX_CORRELATION_COLUMNS = 1000
#: Taller tables use a seeded random subsample of this many rows for the correlation (the
#: mean of |r| over a 100,000-row sample is within about 0.003 of its value on all rows).
MAX_CORRELATION_ROWS = 100_000
#: Seed of that subsample, fixed so that a table's meta-features never depend on a run's seed.
CORRELATION_SEED = 0


def _correlation_columns(p: int) -> np.ndarray:
    return np.linspace(0, p - 1, MAX_CORRELATION_COLUMNS).round().astype(np.int64)


def _correlation_rows(n: int) -> np.ndarray:
    return np.sort(np.random.default_rng(CORRELATION_SEED).choice(n, MAX_CORRELATION_ROWS, replace=False))


def mean_abs_correlation(values: np.ndarray, missing: np.ndarray | None = None) -> float:
    """Mean of ``|r|`` over column pairs, ``r`` the Pearson correlation on the rows where
    both columns are present (as :meth:`pandas.DataFrame.corr`). Pairs with a constant
    column or fewer than two common rows are left out; NaN when no pair is left. Tables
    with more than :data:`MAX_CORRELATION_COLUMNS` numeric columns use that many, evenly
    spaced in column order, and tables with more than :data:`MAX_CORRELATION_ROWS` rows a
    seeded random subsample (sorted, :data:`CORRELATION_SEED`) of that many rows."""
    if values.shape[0] > MAX_CORRELATION_ROWS:
        rows = _correlation_rows(values.shape[0])
        values = values[rows]
        missing = np.isnan(values) if missing is None else missing[rows]
    if missing is None:
        missing = np.isnan(values)
    if values.shape[1] > MAX_CORRELATION_COLUMNS:
        cols = _correlation_columns(values.shape[1])
        values, missing = values[:, cols], missing[:, cols]
    lo = np.where(missing, np.inf, values).min(axis=0, initial=np.inf)
    hi = np.where(missing, -np.inf, values).max(axis=0, initial=-np.inf)
    varying = hi > lo
    if not varying.all():
        values, missing = values[:, varying], missing[:, varying]
    p = values.shape[1]
    if p < 2:
        return float("nan")
    present = ~missing
    count = present.sum(axis=0)
    filled = np.where(missing, 0.0, values)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = filled.sum(axis=0) / np.maximum(count, 1)
    d = np.where(missing, 0.0, filled - center)  # centering first keeps the sums accurate
    cross = d.T @ d
    if bool(missing.any()):
        m = present.astype(np.float64)
        n_pair = m.T @ m
        s = d.T @ m  # s[i, j]: sum of column i over rows where j is present
        sq = (d * d).T @ m
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = cross - s * s.T / n_pair
            var_i = sq - s * s / n_pair
            r = cov / np.sqrt(var_i * var_i.T)
        r = np.where(n_pair >= 2, r, np.nan)
    else:
        diag = np.diag(cross)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cross / np.sqrt(np.outer(diag, diag))
    upper = np.abs(r[np.triu_indices(p, k=1)])
    upper = np.minimum(upper[np.isfinite(upper)], 1.0)  # rounding can exceed 1 slightly
    return float(upper.mean()) if upper.size else float("nan")


def statistical_features(table: Table) -> dict[str, float]:
    """Summaries of the per-attribute moments (OpenML's ``Statistical`` characterizer)
    and the mean absolute correlation between numeric input attributes."""
    n, p = table.n_rows, table.numeric_width
    out: dict[str, float] = {}
    if p:
        moments = _moments_by_blocks(table.numeric_block, table.numeric_missing)  # a block copied at a time
    else:
        moments = {stat: np.zeros(0) for stat in _STATS}
    if not table.is_classification:  # OpenML treats a numeric target as a numeric attribute
        target = column_moments(table.y_values[:, None], np.zeros((len(table.y_values), 1), dtype=bool))
        moments = {stat: np.concatenate([moments[stat], target[stat]]) for stat in _STATS}
    for stat in _STATS:
        summary = summarize(moments[stat])
        for s in SUMMARIES:
            out[f"{s}{stat}OfNumericAtts"] = summary[s]
    # the rows and columns mean_abs_correlation would sample, gathered from the columns
    rows = _correlation_rows(n) if n > MAX_CORRELATION_ROWS else None
    cols = _correlation_columns(p) if p > MAX_CORRELATION_COLUMNS else None
    missing = table.numeric_missing
    missing = missing if rows is None else missing[rows]
    missing = missing if cols is None else missing[:, cols]
    out["MeanAbsCorrelationOfNumericAtts"] = mean_abs_correlation(table.numeric_subset(rows, cols), missing)
    return out
