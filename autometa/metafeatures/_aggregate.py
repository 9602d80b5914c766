"""Summaries of per-attribute values, as OpenML reports them."""

from __future__ import annotations

import numpy as np

__all__ = ["SUMMARIES", "summarize", "ratio"]

SUMMARIES = ("Mean", "Min", "Max", "Quartile1", "Quartile2", "Quartile3")
_NAN_SUMMARY = dict.fromkeys(SUMMARIES, float("nan"))


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, minimum, maximum and quartiles of the finite entries of ``values``.

    Quartiles use the estimator of Apache Commons Math's ``Percentile`` (OpenML's
    ``StatUtils.percentile``): position ``p * (n + 1)``, interpolated, clamped to the
    extremes (Hyndman and Fan type 6, numpy's ``method="weibull"``). All entries are NaN
    when no value is finite.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return dict(_NAN_SUMMARY)
    q1, q2, q3 = np.percentile(v, [25.0, 50.0, 75.0], method="weibull")
    return {
        "Mean": float(v.mean()),
        "Min": float(v.min()),
        "Max": float(v.max()),
        "Quartile1": float(q1),
        "Quartile2": float(q2),
        "Quartile3": float(q3),
    }


def ratio(num: float, den: float) -> float:
    """``num / den`` as a float, NaN when the denominator is zero or either is NaN."""
    if not (np.isfinite(num) and np.isfinite(den)) or den == 0:
        return float("nan")
    return float(num / den)
