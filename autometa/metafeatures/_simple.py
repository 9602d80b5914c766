"""Simple meta-features: sizes, attribute types, missing values, class balance."""

from __future__ import annotations

import numpy as np

from autometa.metafeatures._aggregate import ratio
from autometa.metafeatures._table import Table

__all__ = ["simple_features"]

_NAN = float("nan")


def _observed_levels(table: Table) -> np.ndarray:
    """Number of distinct non-missing values of each nominal attribute (a bincount per column)."""
    codes = table.nominal
    out = np.zeros(codes.shape[1], dtype=np.int64)
    for j in range(codes.shape[1]):
        counts = np.bincount(codes[:, j] + 1, minlength=int(table.n_levels[j]) + 1)  # slot 0: missing
        out[j] = int(np.count_nonzero(counts[1:]))
    return out


def _any_per_row(mask: np.ndarray) -> np.ndarray:
    """``mask.any(axis=1)``, a column at a time (the columns of a table are contiguous)."""
    rows = np.zeros(mask.shape[0], dtype=bool)
    for j in range(mask.shape[1]):
        rows |= mask[:, j]
    return rows


def simple_features(table: Table) -> dict[str, float]:
    """Counts and proportions named and defined as OpenML's ``SimpleMetaFeatures`` and
    ``NominalAttDistinctValues`` characterizers (see the catalog for each definition)."""
    n = table.n_rows
    p_num = table.numeric_width
    p_cat = table.nominal.shape[1]
    n_features = p_num + p_cat + 1  # OpenML counts the target as an attribute

    missing_rows = np.zeros(n, dtype=bool)
    n_missing = 0
    if p_num:
        mask = table.numeric_missing
        n_missing += int(mask.sum())
        missing_rows |= _any_per_row(mask)
    if p_cat:
        cat_missing = table.nominal < 0
        n_missing += int(cat_missing.sum())
        missing_rows |= _any_per_row(cat_missing)
    n_missing_rows = int(missing_rows.sum())

    n_numeric = p_num + (0 if table.is_classification else 1)
    n_symbolic = p_cat + (1 if table.is_classification else 0)
    observed = _observed_levels(table)
    n_binary = int((observed == 2).sum())

    out: dict[str, float] = {
        "NumberOfInstances": float(n),
        "NumberOfFeatures": float(n_features),
        "NumberOfClasses": float(table.n_classes),
        "Dimensionality": ratio(n_features, n),
        "NumberOfInstancesWithMissingValues": float(n_missing_rows),
        "NumberOfMissingValues": float(n_missing),
        "PercentageOfInstancesWithMissingValues": 100.0 * ratio(n_missing_rows, n),
        "PercentageOfMissingValues": 100.0 * ratio(n_missing, n * n_features),
        "NumberOfNumericFeatures": float(n_numeric),
        "NumberOfSymbolicFeatures": float(n_symbolic),
    }

    majority = minority = _NAN
    autocorrelation = _NAN
    if table.is_classification:
        y = table.y_codes
        counts = np.bincount(y, minlength=table.n_classes)
        majority, minority = float(counts.max()), float(counts.min())
        if int((counts > 0).sum()) == 2:
            n_binary += 1
        if n > 1:
            changes = int(np.count_nonzero(y[1:] != y[:-1]))
            autocorrelation = (n - 1 - changes) / (n - 1)
    else:
        if n > 1:
            # OpenML sums (previous - current) target values, which telescopes.
            drift = float(table.y_values[0] - table.y_values[-1])
            autocorrelation = (n - 1 - drift) / (n - 1)

    out.update(
        {
            "NumberOfBinaryFeatures": float(n_binary),
            "PercentageOfNumericFeatures": 100.0 * ratio(n_numeric, n_features),
            "PercentageOfSymbolicFeatures": 100.0 * ratio(n_symbolic, n_features),
            "PercentageOfBinaryFeatures": 100.0 * ratio(n_binary, n_features),
            "MajorityClassSize": majority,
            "MinorityClassSize": minority,
            "MajorityClassPercentage": 100.0 * ratio(majority, n),
            "MinorityClassPercentage": 100.0 * ratio(minority, n),
            "AutoCorrelation": float(autocorrelation),
        }
    )

    levels = table.n_levels.astype(np.float64)
    if p_cat:
        out.update(
            {
                "MaxNominalAttDistinctValues": float(levels.max()),
                "MinNominalAttDistinctValues": float(levels.min()),
                "MeanNominalAttDistinctValues": float(levels.mean()),
                # Apache Commons Math (OpenML) gives 0 for the deviation of one value.
                "StdvNominalAttDistinctValues": float(levels.std(ddof=1)) if p_cat > 1 else 0.0,
            }
        )
    else:
        for name in ("Max", "Min", "Mean", "Stdv"):
            out[f"{name}NominalAttDistinctValues"] = _NAN
    return out
