"""Information-theoretic meta-features: entropies and mutual information, in bits.

The OpenML-named features use the nominal input attributes only, with a missing value
counted as the attribute's first category: this is what OpenML's characterizer does (Weka
casts a missing nominal value to index 0) and it reproduces OpenML's recorded
``MeanMutualInformation`` of anneal to 1e-14. The ``...AllAtts`` features add the numeric
attributes, discretized into equal-frequency bins.
"""

from __future__ import annotations

import numpy as np

from autometa.metafeatures._aggregate import SUMMARIES, ratio, summarize
from autometa.metafeatures._table import Table

__all__ = ["info_theory_features", "n_bins", "FEATURES_OF_GROUP"]

_NOMINAL_NAMES = (
    "ClassEntropy",
    "MeanAttributeEntropy",
    "MeanMutualInformation",
    "EquivalentNumberOfAtts",
    "NoiseToSignalRatio",
    *(f"{s}{what}" for s in SUMMARIES if s != "Mean" for what in ("AttributeEntropy", "MutualInformation")),
)
_ALL_NAMES = (
    "MeanAttributeEntropyAllAtts",
    "MeanMutualInformationAllAtts",
    "EquivalentNumberOfAttsAllAtts",
    "NoiseToSignalRatioAllAtts",
)
FEATURES_OF_GROUP = _NOMINAL_NAMES + _ALL_NAMES


def _entropy_of_segments(counts: np.ndarray, starts: np.ndarray, total: float) -> np.ndarray:
    """Entropy (bits) of each segment ``counts[starts[i]:starts[i+1]]``, all summing to ``total``."""
    c = counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        xlogx = np.where(c > 0, c * np.log2(np.where(c > 0, c, 1.0)), 0.0)
    return np.log2(total) - np.add.reduceat(xlogx, starts) / total


def _entropy(counts: np.ndarray) -> float:
    total = float(counts.sum())
    if total <= 0:
        return float("nan")
    return float(_entropy_of_segments(counts, np.array([0]), total)[0])


def n_bins(n: int) -> int:
    """Equal-frequency bins for ``n`` rows: the integer cube root of ``n`` (at least 1)."""
    b = int(round(n ** (1.0 / 3.0)))
    while b > 1 and b**3 > n:
        b -= 1
    while (b + 1) ** 3 <= n:
        b += 1
    return max(b, 1)


def _nominal_info(table: Table, y: np.ndarray, k: int, class_entropy: float) -> tuple[np.ndarray, np.ndarray]:
    """Entropy of each nominal attribute and its mutual information with the class."""
    codes = table.nominal
    n, p = codes.shape
    if p == 0:
        return np.zeros(0), np.zeros(0)
    levels = np.maximum(table.n_levels, 1)
    filled = np.maximum(codes, 0).astype(np.int64)  # missing -> first category (OpenML)
    att_starts = np.concatenate(([0], np.cumsum(levels)[:-1]))
    att_counts = np.bincount((filled + att_starts).ravel(), minlength=int(levels.sum()))
    joint_starts = att_starts * k
    joint = np.bincount((filled * k + y[:, None] + joint_starts).ravel(), minlength=int(levels.sum()) * k)
    h_att = _entropy_of_segments(att_counts, att_starts, float(n))
    h_joint = _entropy_of_segments(joint, joint_starts, float(n))
    return h_att, np.maximum(h_att + class_entropy - h_joint, 0.0)


def _quantile_edges(sorted_t: np.ndarray, count: np.ndarray, b: int) -> np.ndarray:
    """Quantiles ``1/b, ..., b/b`` of each row's first ``count`` values, interpolated as
    :func:`numpy.quantile` does (``method="linear"``); shape (p, b)."""
    q = np.linspace(0.0, 1.0, b + 1)[1:]
    index = (np.maximum(count, 1) - 1)[:, None] * q[None, :]
    below = np.floor(index).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(count, 1)[:, None] - 1)
    gamma = index - below
    rows = np.arange(sorted_t.shape[0])[:, None]
    a, c = sorted_t[rows, below], sorted_t[rows, above]
    diff = c - a
    with np.errstate(invalid="ignore"):
        edges = np.where(gamma >= 0.5, c - diff * (1.0 - gamma), a + diff * gamma)
    return edges


def _numeric_info(table: Table, y: np.ndarray, k: int, class_entropy: float) -> tuple[np.ndarray, np.ndarray]:
    """Entropy and mutual information of each numeric attribute cut into equal-frequency
    bins (``x`` falls in bin ``i`` when ``edge[i-1] < x <= edge[i]``; missing values get
    their own bin). Exact joint counts without a per-value search: column by column, each
    class's values are sorted and the bin edges are located in them (sorting a contiguous
    column is fast; gathering whole rows of a tall table is not)."""
    n, p = table.n_rows, table.numeric_width
    if p == 0:
        return np.zeros(0), np.zeros(0)
    b = n_bins(n)
    missing = table.numeric_missing
    count = (~missing).sum(axis=0)
    class_rows = [np.flatnonzero(y == c) for c in range(k)]
    joint = np.zeros((p, b + 1, k))  # bins x classes, the last bin for missing values
    for j in range(p):
        column = table.numeric_columns[j]
        edges = _quantile_edges(np.sort(column)[None, :], count[j : j + 1], b)[0]
        absent = missing[:, j]
        for c, rows in enumerate(class_rows):
            if rows.size == 0:
                continue
            n_absent = int(np.count_nonzero(absent[rows]))
            block = np.sort(column[rows])[: rows.size - n_absent]  # NaN sorts last
            upto = np.searchsorted(block, edges, side="right")
            joint[j, :b, c] = np.diff(upto, prepend=0)
            joint[j, b, c] = n_absent
    att = joint.sum(axis=2).ravel()
    starts_att = np.arange(p) * (b + 1)
    h_att = _entropy_of_segments(att, starts_att, float(n))
    h_joint = _entropy_of_segments(joint.ravel(), starts_att * k, float(n))
    return h_att, np.maximum(h_att + class_entropy - h_joint, 0.0)


def _ratios(class_entropy: float, mean_ent: float, mean_mi: float) -> tuple[float, float]:
    """EquivalentNumberOfAtts and NoiseToSignalRatio; NaN unless the mean MI is positive."""
    if not (np.isfinite(mean_mi) and mean_mi > 0):
        return float("nan"), float("nan")
    return ratio(class_entropy, mean_mi), ratio(mean_ent - mean_mi, mean_mi)


def info_theory_features(table: Table) -> dict[str, float]:
    """OpenML's ``AttributeEntropy`` characterizer, plus the ``...AllAtts`` variants.
    All NaN for regression, as in OpenML."""
    out = dict.fromkeys(FEATURES_OF_GROUP, float("nan"))
    if not table.is_classification or table.n_rows == 0:
        return out
    y = table.y_codes.astype(np.int64)
    k = max(table.n_classes, 1)
    class_entropy = _entropy(np.bincount(y, minlength=k))
    out["ClassEntropy"] = class_entropy

    h_nom, mi_nom = _nominal_info(table, y, k, class_entropy)
    if h_nom.size:
        ent, mi = summarize(h_nom), summarize(mi_nom)
        for s in SUMMARIES:
            out[f"{s}AttributeEntropy"] = ent[s]
            out[f"{s}MutualInformation"] = mi[s]
        ena, nsr = _ratios(class_entropy, ent["Mean"], mi["Mean"])
        out["EquivalentNumberOfAtts"], out["NoiseToSignalRatio"] = ena, nsr

    h_num, mi_num = _numeric_info(table, y, k, class_entropy)
    h_all, mi_all = np.concatenate([h_nom, h_num]), np.concatenate([mi_nom, mi_num])
    if h_all.size:
        mean_ent, mean_mi = float(h_all.mean()), float(mi_all.mean())
        out["MeanAttributeEntropyAllAtts"] = mean_ent
        out["MeanMutualInformationAllAtts"] = mean_mi
        ena, nsr = _ratios(class_entropy, mean_ent, mean_mi)
        out["EquivalentNumberOfAttsAllAtts"], out["NoiseToSignalRatioAllAtts"] = ena, nsr
    return out
