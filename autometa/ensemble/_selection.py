"""Greedy ensemble selection with replacement (Caruana, Niculescu-Mizil, Crew, Ksikes 2004)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from autometa.exceptions import InputError
from autometa.metrics import Metric, get_metric

__all__ = ["Selection", "caruana_selection", "score_matrix"]



@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`caruana_selection`.

    Attributes
    ----------
    weights : tuple of float
        One weight per candidate (same order as given), summing to 1; 0 for candidates
        never picked.
    score : float
        The metric of the weighted ensemble on the candidates' predictions (natural units).
    single_scores : tuple of float
        The metric of each candidate alone on the same rows.
    trajectory : tuple of float
        The ensemble's score after each greedy round; the ensemble kept is the shortest
        prefix with the best score.
    picks : tuple of int
        The candidate picked in each kept round (so ``weights[i]`` is the count of ``i`` in
        ``picks`` divided by its length).
    n_rows : int
        Rows every candidate predicted (the rows selection was scored on).
    """

    weights: tuple[float, ...]
    score: float
    single_scores: tuple[float, ...]
    trajectory: tuple[float, ...]
    picks: tuple[int, ...]
    n_rows: int

    def __post_init__(self) -> None:
        if not self.weights or abs(sum(self.weights) - 1.0) > 1e-6 or min(self.weights) < 0:
            raise InputError(f"The weights of a Selection must be non-negative and sum to 1; got {self.weights!r}.")

    @property
    def members(self) -> list[int]:
        """Indices of the candidates with a positive weight, heaviest first."""
        return sorted((i for i, w in enumerate(self.weights) if w > 0), key=lambda i: (-self.weights[i], i))


def score_matrix(metric: Metric, y: np.ndarray, pred: np.ndarray, labels: np.ndarray | None) -> float:
    """``metric`` of predictions in the form of out-of-fold predictions
    (:func:`autometa.evaluation.prediction_matrix`): values for regression, class
    probabilities (columns in the order of ``labels``) for classification, whose labels
    are the most probable class."""
    if labels is None:
        return float(metric.func(y, pred))
    if metric.needs == "proba":
        return float(metric.func(y, pred, labels))
    return float(metric.func(y, labels[np.argmax(pred, axis=1)]))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) statistic, ties counted half."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _scorer(metric: Metric, y: np.ndarray, labels: np.ndarray | None) -> Callable[[np.ndarray], float]:
    """A fast ``pred -> score`` for ``metric`` on fixed targets: selection scores an
    ensemble hundreds of times, and scikit-learn's input checks dominate on small data.
    Equal to :func:`score_matrix` (tested); other metrics go through it."""
    if labels is None:
        yf = y.astype(float)
        if metric.name == "rmse":
            return lambda p: float(np.sqrt(np.mean((yf - p) ** 2)))
        if metric.name == "mae":
            return lambda p: float(np.mean(np.abs(yf - p)))
        if metric.name == "r2":
            ss = float(np.sum((yf - yf.mean()) ** 2))
            return lambda p: (1.0 - float(np.sum((yf - p) ** 2)) / ss) if ss > 0 else math.nan
        return lambda p: score_matrix(metric, y, p, None)
    index = {c: i for i, c in enumerate(labels.tolist())}
    yi = np.array([index[c] for c in y.tolist()])
    rows = np.arange(len(yi))
    present = np.unique(yi)
    if metric.name == "accuracy":
        return lambda p: float(np.mean(np.argmax(p, axis=1) == yi))
    if metric.name == "balanced_accuracy":
        masks = [yi == c for c in present]

        def bal(p: np.ndarray) -> float:
            hit = np.argmax(p, axis=1) == yi
            return float(np.mean([hit[m].mean() for m in masks]))
        return bal
    if metric.name == "log_loss":
        eps = np.finfo(float).eps
        return lambda p: float(-np.mean(np.log(np.clip(p[rows, yi], eps, 1 - eps))))
    if metric.name == "roc_auc":
        if len(labels) == 2:
            return lambda p: _binary_auc(yi == 1, p[:, 1])
        return lambda p: float(np.mean([_binary_auc(yi == c, p[:, c]) for c in range(len(labels))]))
    return lambda p: score_matrix(metric, y, p, labels)


def caruana_selection(
    predictions: Sequence[np.ndarray],
    y: np.ndarray,
    metric: Metric | str,
    *,
    labels: np.ndarray | None = None,
    size: int = 25,
) -> Selection:
    """Build a weighted ensemble of candidates by greedy forward selection with replacement.

    Each of ``size`` rounds adds the candidate whose addition gives the best ensemble
    score (the unweighted mean of the picks so far, so weights are pick counts); a
    candidate may be picked again. The first round picks the best single candidate, and
    the ensemble returned is the best prefix of the rounds, so it never scores worse on
    these rows than the best candidate alone. Ties go to the earlier candidate: give the
    candidates best first.

    Parameters
    ----------
    predictions : sequence of ndarray
        Out-of-fold predictions of each candidate, all of one shape: ``(n_rows,)`` values
        for regression, ``(n_rows, n_classes)`` probabilities for classification. Rows
        that are NaN in any candidate (never validated) are left out.
    y : ndarray
        The true targets, ``(n_rows,)``.
    metric : Metric or str
        What to optimize (its direction is respected).
    labels : ndarray, optional
        The classes, in the order of the probability columns; None for regression.
    size : int
        Greedy rounds (the ensemble's total weight in picks).

    Returns
    -------
    Selection

    Raises
    ------
    InputError
        No candidate, predictions of different shapes, a ``size`` below 1, or no row
        that every candidate predicted.
    """
    m = get_metric(metric) if isinstance(metric, str) else metric
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise InputError(f"The 'size' parameter of caruana_selection must be an integer of at least 1; got {size!r}.")
    if len(predictions) == 0:
        raise InputError("caruana_selection needs at least one candidate's predictions; got none.")
    preds = [np.asarray(p, dtype=float) for p in predictions]
    shapes = {p.shape for p in preds}
    if len(shapes) != 1:
        raise InputError(f"The candidates' predictions must all have one shape; got shapes {sorted(shapes)}.")
    y = np.asarray(y)
    if preds[0].shape[0] != len(y):
        raise InputError(f"The predictions have {preds[0].shape[0]} rows but y has {len(y)}; give one row per target.")
    if labels is not None and (preds[0].ndim != 2 or preds[0].shape[1] != len(labels)):
        raise InputError(
            f"Classification predictions must have one column per class ({len(labels)}); got shape {preds[0].shape}."
        )
    stacked = np.stack(preds)
    finite = np.isfinite(stacked).reshape(len(preds), len(y), -1).all(axis=(0, 2))
    if not finite.any():
        raise InputError("No row was predicted by every candidate (all out-of-fold predictions are NaN somewhere).")
    stacked = stacked[:, finite]
    y = y[finite]

    score = _scorer(m, y, labels)

    def loss(pred: np.ndarray) -> float:
        try:
            value = m.to_loss(score(pred))
        except ValueError:  # e.g. ROC AUC of a split holding one class
            return math.inf
        return value if math.isfinite(value) else math.inf

    singles = [loss(p) for p in stacked]
    total = np.zeros_like(stacked[0])
    picks: list[int] = []
    trajectory: list[float] = []
    for r in range(size):
        best_i, best_l = 0, math.inf
        for i in range(len(stacked)):
            cand = loss((total + stacked[i]) / (r + 1))
            if cand < best_l:
                best_i, best_l = i, cand
        if not math.isfinite(best_l):  # nothing scores (all candidates degenerate): keep the first
            best_i = int(np.argmin(singles)) if r == 0 else picks[-1]
        total += stacked[best_i]
        picks.append(best_i)
        trajectory.append(best_l)
    kept = int(np.argmin(trajectory)) + 1  # the first best round: the shortest best prefix
    counts = np.bincount(picks[:kept], minlength=len(stacked)).astype(float)
    weights = tuple(float(c) for c in counts / counts.sum())

    def natural(v: float) -> float:
        return float(v if not m.greater_is_better else -v) if math.isfinite(v) else math.nan

    return Selection(
        weights=weights,
        score=natural(trajectory[kept - 1]),
        single_scores=tuple(natural(s) for s in singles),
        trajectory=tuple(natural(t) for t in trajectory),
        picks=tuple(picks[:kept]),
        n_rows=int(finite.sum()),
    )
