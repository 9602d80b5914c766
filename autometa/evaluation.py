"""The objective: a configuration and a task -> scores on every tracked metric, fit time, status.

Each evaluation runs in a worker process with a wall-time and a memory limit. A
configuration that raises, runs out of memory, kills its process or exceeds the time
limit comes back as a failed :class:`TrialResult` with its reason; the worker is
replaced and the search goes on. The worker keeps the data between trials, so the
process boundary costs one pickle of the data per worker, not per trial.
"""

from __future__ import annotations

import abc
import math
import os
import pickle
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, RepeatedKFold, RepeatedStratifiedKFold, StratifiedKFold, train_test_split

from autometa.exceptions import InputError
from autometa.metrics import Metric, tracked_metrics
from autometa.spaces import build_pipeline, config_to_dict
from autometa.task import Task

__all__ = [
    "HOLDOUT_FRACTION",
    "PROTOCOLS",
    "STATUSES",
    "BaseEvaluator",
    "Evaluator",
    "ReplayEvaluator",
    "Protocol",
    "TrialResult",
    "choose_protocol",
    "default_fit_row_exponent",
    "estimate_default_fit_s",
    "make_splits",
    "prediction_matrix",
    "score_predictions",
    "serve",
]

#: ``ok`` or the reason a trial failed.
STATUSES = ("ok", "crash", "timeout", "memory")

#: Up to this many rows: repeated k-fold CV (the estimate is noisy on small data).
SMALL_DATA_ROWS = 1_000
#: Up to this many rows: k-fold CV; above, a single stratified holdout.
CV_MAX_ROWS = 50_000
#: The validation share of the holdout protocols (holdout, successive halving).
HOLDOUT_FRACTION = 0.25
#: Successive halving: each rung keeps a third of the configurations and gives them three
#: times the rows (Hyperband's eta).
HALVING_ETA = 3
#: Training rows of the lowest rung, and at most three halvings (a 27th of the rows), from
#: LCDB's learning curves (experiments/results/size_policy.md: 75 OpenML datasets of 8,000
#: rows or more, 20 learners): fitted on 2,000-4,096 rows, the learner best on all rows is
#: in the best third 88% of the time and a cut to that third loses 0.0007 accuracy on
#: average; on 1,024-2,048 rows, 79% and 0.0012. Deeper than a 81st of the rows, 73% and
#: 0.0027 (a 27th to an 81st: 87% and 0.0001).
HALVING_MIN_ROWS = 2_000
#: Successive halving is chosen (on tables above :data:`CV_MAX_ROWS` rows) when the family
#: defaults fitted once on the holdout's training rows take more than this share of the
#: budget: then full-size trials are too few for the search to learn from.
_HALVING_BUDGET_SHARE = 0.1
#: A rung of a successive-halving bracket costs about one full-size trial; fixed costs
#: (validation on the whole holdout, worker restarts after timeouts) add this factor.
#: Measured at 60 s on 214,144 and 254,654 rows: brackets of three halvings got no trial
#: to all the rows (14 trials each, 5 timeouts) and scored 0.006 below a plain holdout.
_HALVING_BRACKET_MARGIN = 1.5
#: Seconds a lower-rung trial takes at least per 100,000 rows of the table (validation on
#: all of the holdout's rows does not shrink with the training rows): about 2 s measured
#: on 214,144 and 254,654 rows, where 27 first-rung trials did not fit in 60 s.
_HALVING_MIN_TRIAL_S = 1.0
#: Address space (MB) a trial needs at least beyond what the started worker holds: a memory
#: limit leaving less is refused at start-up (every trial would fail).
_MEMORY_HEADROOM_MB = 64
#: How long :meth:`Evaluator.close` waits for the worker to exit before killing it.
_EXIT_WAIT_S = 0.1
_STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class TrialResult:
    """The outcome of evaluating one configuration.

    Attributes
    ----------
    config : dict
        The configuration's active values.
    status : {"ok", "crash", "timeout", "memory"}
    scores : dict
        Mean over splits of every tracked metric, in natural units (NaN where a metric
        cannot be computed, e.g. log loss without probabilities).
    fold_scores : list of float
        The optimized metric on each split.
    fit_time_s : float
        Total fit time over splits.
    duration_s : float
        Wall time of the whole evaluation, process overhead included.
    error : str or None
        One line saying why the trial failed.
    oof : ndarray or None
        Out-of-fold predictions (float32), one row per row of the task: class
        probabilities ``(n_rows, n_classes)`` in the order of the sorted classes for
        classification, values ``(n_rows,)`` for regression; averaged over the repeats of
        a repeated CV, NaN for rows no split validated (the holdout protocol). None when
        the evaluator has none (a failed trial, a replayed score).
    fold_models : list or None
        The pipelines fitted on each split's training rows, when the evaluator was asked
        to keep them (``Evaluator(keep_fold_models=True)``).
    """

    config: dict[str, Any]
    status: str
    scores: dict[str, float] = field(default_factory=dict)
    fold_scores: list[float] = field(default_factory=list)
    fit_time_s: float = 0.0
    duration_s: float = 0.0
    error: str | None = None
    oof: np.ndarray | None = field(default=None, repr=False, compare=False)
    fold_models: list[Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {self.status!r}.")

    @property
    def ok(self) -> bool:
        return self.status == "ok"


#: Seconds of one default fit and validation of each family on 1,000 training rows and
#: 10 features, and how the time grows with rows (exponent), for classification and for
#: regression (deeper trees, a harder SVM). Measured on one core of this project's 2-core
#: build machine: 5-fold CV of the family defaults on 5,000 and 20,000 rows. Only the
#: order of magnitude matters: it decides whether cross-validation fits the budget.
_DEFAULT_FIT_COST = {
    "classification": {
        "hist_gradient_boosting": (0.11, 0.35),
        "random_forest": (0.10, 1.1),
        "extra_trees": (0.075, 0.9),
        "linear": (0.015, 0.5),
        "svm": (0.017, 1.55),
        "knn": (0.0125, 1.25),
        "mlp": (0.08, 1.0),
        "decision_tree": (0.0125, 1.0),
    },
    "regression": {
        "hist_gradient_boosting": (0.18, 0.1),
        "random_forest": (0.39, 1.15),
        "extra_trees": (0.21, 1.05),
        "linear": (0.005, 0.5),
        "svm": (0.027, 2.05),
        "knn": (0.011, 1.45),
        "mlp": (0.15, 1.0),
        "decision_tree": (0.0065, 1.6),
    },
}
#: Families whose fit time grows with the number of classes (one model per class).
_PER_CLASS_FAMILIES = ("hist_gradient_boosting", "linear")
#: Cross-validation is kept while the family defaults' CV takes at most this share of
#: the budget; beyond it the trials would be too few (or time out), so one holdout is
#: used, which costs a fifth.
_CV_BUDGET_SHARE = 0.5
PROTOCOLS = ("auto", "cv", "holdout", "successive-halving")


@dataclass(frozen=True)
class Protocol:
    """How trials are validated, and why.

    Attributes
    ----------
    kind : {"repeated-cv", "cv", "holdout", "successive-halving"}
        ``successive-halving`` validates on the holdout too, but trials are first fitted
        on a sample of the training rows and only the best are given more (Hyperband
        over row budgets, through SMAC's multi-fidelity intensifier).
    n_splits : int
        Train/validation splits per trial.
    reason : str
        One sentence a user can read.
    estimated_cv_s : float or None
        Predicted seconds of the family defaults under k-fold CV, when the budget was
        weighed.
    min_budget : float or None
        With successive halving: the share of the training rows of the lowest rung.
    max_budget : float
        With successive halving: the share of the top rung, all the rows (1.0) unless
        trials on all of them would not fit the budget; the best is then refit on all rows.
    """

    kind: str
    n_splits: int
    reason: str
    estimated_cv_s: float | None = None
    min_budget: float | None = None
    max_budget: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("repeated-cv", "cv", "holdout", "successive-halving"):
            raise ValueError(f"Unknown protocol kind {self.kind!r}.")
        if self.kind == "successive-halving" and not (
                self.min_budget is not None and 0 < self.min_budget < self.max_budget <= 1):
            raise ValueError(f"Successive halving needs 0 < min_budget < max_budget <= 1; got {self.min_budget!r} "
                             f"and {self.max_budget!r}.")

    def as_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "n_splits": self.n_splits, "reason": self.reason,
               "estimated_cv_s": None if self.estimated_cv_s is None else round(self.estimated_cv_s, 1)}
        if self.min_budget is not None:
            out |= {"min_budget": round(self.min_budget, 6), "max_budget": round(self.max_budget, 6),
                    "eta": HALVING_ETA}
        return out


def halving_min_budget(n_train: int) -> float | None:
    """The lowest rung's share of ``n_train`` training rows for successive halving, or
    None when fewer than two rungs fit (the lowest would have under
    :data:`HALVING_MIN_ROWS` rows). At most three halvings (a 27th of the rows)."""
    rungs = _max_halvings(n_train)
    return float(HALVING_ETA ** -rungs) if rungs >= 1 else None


def _max_halvings(n_train: float) -> int:
    """How many times ``n_train`` rows can be cut by eta with every rung keeping
    :data:`HALVING_MIN_ROWS` rows, at most three."""
    if n_train < HALVING_MIN_ROWS:
        return 0
    return min(3, int(math.floor(math.log(n_train / HALVING_MIN_ROWS, HALVING_ETA) + 1e-9)))


def default_fit_row_exponent(family: str, problem_type: str = "binary") -> float:
    """How a family's fit time grows with the rows: ``time ~ rows ** exponent``."""
    kind = "regression" if problem_type == "regression" else "classification"
    return _DEFAULT_FIT_COST[kind].get(family, (0.2, 1.0))[1]


def estimate_default_fit_s(family: str, n_train: float, n_features: float, n_classes: float = 1,
                           problem_type: str = "binary") -> float:
    """Rough seconds of one fit and validation of ``family``'s default on a table of this size."""
    kind = "regression" if problem_type == "regression" else "classification"
    unit, exponent = _DEFAULT_FIT_COST[kind].get(family, (0.2, 1.0))
    seconds = unit * (max(n_train, 1.0) / 1000.0) ** exponent * max(n_features, 1.0) / 10.0
    if family in _PER_CLASS_FAMILIES and n_classes > 2:
        seconds *= n_classes
    return seconds


def choose_protocol(task: Task, time_budget_s: float | None = None, families: Any = None,
                    n_workers: int = 1, protocol: str = "auto", halving: bool = True) -> Protocol:
    """The validation protocol for ``task`` from its size and, when given, the budget.

    Repeated k-fold CV up to :data:`SMALL_DATA_ROWS` rows, k-fold up to
    :data:`CV_MAX_ROWS`, one holdout of 25% above. With a time budget, k-fold CV is
    kept only while the family defaults (the first trials) would take at most half of
    it under CV (their fit times estimated from rows, features and classes, spread over
    ``n_workers``); otherwise one holdout, so that the search gets trials in. Above
    :data:`CV_MAX_ROWS` rows, when the family defaults fitted once at full size would
    take more than a tenth of the budget, successive halving over row budgets on the
    holdout (if ``halving`` allows it: the optimizer and evaluator support budgets).
    ``protocol="cv"``, ``"holdout"`` or ``"successive-halving"`` forces one.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"The protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}.")
    n = int(task.X.shape[0])
    k = int(task.n_splits)
    n_holdout_train = int(n * (1 - HOLDOUT_FRACTION))
    if protocol == "holdout":
        return Protocol("holdout", 1, "holdout of 25% (asked for)")
    if protocol == "successive-halving":
        low = halving_min_budget(n_holdout_train)
        if low is None:
            raise InputError(f"Successive halving needs at least {HALVING_ETA * HALVING_MIN_ROWS:,} training rows "
                             f"(two rungs of {HALVING_MIN_ROWS:,} or more); this table has {n_holdout_train:,}. "
                             "Use protocol 'holdout' or 'cv'.")
        return Protocol("successive-halving", 1, _halving_reason(low, n_holdout_train, "asked for"), min_budget=low)
    if protocol == "cv":
        if n <= SMALL_DATA_ROWS:
            return Protocol("repeated-cv", 2 * k, f"2x repeated {k}-fold cross-validation (asked for; {n:,} rows is "
                                                  "small, one CV would be noisy)")
        return Protocol("cv", k, f"{k}-fold cross-validation (asked for)")
    fams = list(families) if families is not None else list(_DEFAULT_FIT_COST["classification"])
    p = float(task.X.shape[1])
    n_classes = float(len(task.classes)) if task.classes else 1.0
    if n > CV_MAX_ROWS:
        low = halving_min_budget(n_holdout_train) if halving and time_budget_s is not None else None
        if low is not None and time_budget_s is not None:
            once_s = sum(estimate_default_fit_s(str(f), n_holdout_train, p, n_classes, str(task.problem_type))
                         for f in fams) / max(n_workers, 1)
            if once_s > _HALVING_BUDGET_SHARE * float(time_budget_s):
                why = (f"{n:,} rows, and the {len(fams)} family defaults fitted once on all training rows would "
                       f"take about {once_s:.0f} s of the {time_budget_s:g} s budget")
                found = _halving_bracket(n, n_holdout_train, p, n_classes, str(task.problem_type), fams,
                                         float(time_budget_s), n_workers)
                if found is not None:
                    low, top = found
                    return Protocol("successive-halving", 1, _halving_reason(low, n_holdout_train, why, top), once_s,
                                    low, top)
                return Protocol("holdout", 1, f"holdout of 25%: {n:,} rows is more than {CV_MAX_ROWS:,}, and no "
                                              f"successive-halving bracket of two halvings from {HALVING_MIN_ROWS:,} "
                                              f"rows fits half the {time_budget_s:g} s budget", once_s)
        return Protocol("holdout", 1, f"holdout of 25%: {n:,} rows is more than {CV_MAX_ROWS:,}")
    if n <= SMALL_DATA_ROWS:
        return Protocol("repeated-cv", 2 * k, f"2x repeated {k}-fold cross-validation: {n:,} rows is small, "
                                              "one CV would be noisy")
    if time_budget_s is None:
        return Protocol("cv", k, f"{k}-fold cross-validation on {n:,} rows")
    n_train = n * (k - 1) / k
    # one default per family: regression's second default (a slow boosting, about 7x the
    # boosting default's fit, some 20% of the start on a 4,000 x 30 table) is not counted yet
    cv_s = sum(k * estimate_default_fit_s(str(f), n_train, p, n_classes, str(task.problem_type))
               for f in fams) / max(n_workers, 1)
    share = cv_s / float(time_budget_s)
    if share > _CV_BUDGET_SHARE:
        return Protocol("holdout", 1, f"holdout of 25%: {k}-fold cross-validation of the {len(fams)} family defaults "
                                      f"would take about {cv_s:.0f} s of the {time_budget_s:g} s budget", cv_s)
    return Protocol("cv", k, f"{k}-fold cross-validation: the family defaults take about {cv_s:.0f} s of the "
                             f"{time_budget_s:g} s budget under it", cv_s)


def _halving_reason(low: float, n_train: int, why: str, top: float = 1.0) -> str:
    cap = "" if top >= 1.0 else (f"; the top rung is capped at {int(top * n_train):,} rows, as trials on all of them "
                                 "would not fit the budget, and the best is refit on all rows")
    return (f"successive halving on a 25% holdout, from {int(low * n_train):,} to {int(top * n_train):,} training "
            f"rows (a 1/{round(top / low)} rung first, each rung a third of the trials with {HALVING_ETA}x the rows)"
            f"{cap}: {why}")


def _halving_bracket(n: int, n_train: int, p: float, n_classes: float, problem_type: str, fams: list[Any],
                     budget_s: float, n_workers: int) -> tuple[float, float] | None:
    """The rungs of successive halving that fit the budget: ``(min_budget, max_budget)``.

    The deepest bracket (at most three halvings, the lowest rung at least
    :data:`HALVING_MIN_ROWS` rows) that reaches its top rung within half the budget:
    each rung costs about one trial on the top rung's rows (eta times the trials on
    1/eta of them), a median family default's with a margin, and the first rung's
    trials at least :data:`_HALVING_MIN_TRIAL_S` per 100,000 rows. All the rows are the
    top rung when such a bracket exists; otherwise the top is capped at a third, a ninth,
    ... of them (FLAML's idea: search on a sample, refit the winner on all rows). None
    when no bracket of two halvings fits.
    """
    floor_s = _HALVING_MIN_TRIAL_S * max(1.0, n / 100_000) / max(n_workers, 1)
    for cap in range(0, 8):
        top = float(HALVING_ETA ** -cap)
        rows = top * n_train
        if rows < HALVING_ETA ** 2 * HALVING_MIN_ROWS:
            return None
        costs = [estimate_default_fit_s(str(f), rows, p, n_classes, problem_type) for f in fams]
        per_rung = _HALVING_BRACKET_MARGIN * float(np.median(costs)) / max(n_workers, 1)
        for depth in range(_max_halvings(rows), 1, -1):
            if (depth + 1) * per_rung <= 0.5 * budget_s and HALVING_ETA ** depth * floor_s <= 0.5 * budget_s:
                return top * float(HALVING_ETA ** -depth), top
    return None


def nested_row_order(train: np.ndarray, y: np.ndarray, *, classification: bool, seed: int) -> np.ndarray:
    """``train`` reordered so that every prefix is a random sample of it, stratified by
    class for classification: the row budgets of successive halving take prefixes, so a
    larger budget always contains a smaller one's rows."""
    rng = np.random.default_rng(seed)
    jitter = rng.random(len(train))
    if not classification:
        return train[np.argsort(jitter, kind="stable")]
    keys = np.empty(len(train))
    yt = y[train]
    for c in np.unique(yt):
        where = np.flatnonzero(yt == c)
        keys[where] = (rng.permutation(len(where)) + jitter[where]) / len(where)
    return train[np.argsort(keys, kind="stable")]


def budget_rows(order: np.ndarray, budget: float, y: np.ndarray | None = None) -> np.ndarray:
    """The training rows of a row ``budget`` (a share in (0, 1]): the first of ``order``
    (see :func:`nested_row_order`), sorted; with ``y``, two rows of every class at least."""
    if budget >= 1.0:
        return np.sort(order)
    m = max(1, int(math.ceil(budget * len(order))))
    rows = order[:m]
    if y is not None:  # a class too rare to reach the prefix still gets its first two rows
        yo = y[order]
        rows = np.union1d(rows, order[np.concatenate([np.flatnonzero(yo == c)[:2] for c in np.unique(yo)])])
    return np.sort(rows)


def make_splits(task: Task, protocol: Protocol | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/validation index pairs of ``protocol`` (default: chosen by data size alone).

    Repeated (2x) k-fold below :data:`SMALL_DATA_ROWS` rows, k-fold up to
    :data:`CV_MAX_ROWS`, otherwise one holdout of 25% (see :func:`choose_protocol`).
    Stratified for classification; ``k`` is ``task.n_splits`` (5 unless a class is
    smaller).
    """
    kind = (protocol or choose_protocol(task)).kind
    y = task.y.to_numpy()
    k = task.n_splits
    strat = task.is_classification
    idx = np.arange(task.X.shape[0])
    if kind in ("holdout", "successive-halving"):
        tr, va = train_test_split(
            idx, test_size=HOLDOUT_FRACTION, random_state=task.seed, stratify=y if strat else None
        )
        return [(np.sort(tr), np.sort(va))]
    if kind == "repeated-cv":
        cv: Any = (RepeatedStratifiedKFold if strat else RepeatedKFold)(n_splits=k, n_repeats=2, random_state=task.seed)
    else:
        cv = (StratifiedKFold if strat else KFold)(n_splits=k, shuffle=True, random_state=task.seed)
    return [(tr, va) for tr, va in cv.split(idx, y if strat else None)]


def score_predictions(
    metrics: list[Metric], y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, labels: np.ndarray | None
) -> dict[str, float]:
    """Every metric that the available predictions allow; NaN for the others."""
    if labels is not None and len(labels) and not np.issubdtype(np.asarray(labels).dtype, np.number):
        # The classes as integer codes in the order of ``labels``: scikit-learn's metrics
        # find the classes with np.unique, which sorts an object array of strings slowly
        # (33 sorts of 250,000 validation labels took 7 of a 13 s trial). The codes keep
        # the classes' order, so every score is the same.
        codes = pd.Categorical(y_true, categories=labels).codes.astype(np.int64)
        pred_codes = pd.Categorical(pred, categories=labels).codes.astype(np.int64)
        if (codes >= 0).all() and (pred_codes >= 0).all():
            y_true, pred, labels = codes, pred_codes, np.arange(len(labels))
    out: dict[str, float] = {}
    for m in metrics:
        try:
            if m.needs == "proba":
                if proba is None or (m.name == "log_loss" and proba.ndim == 1):
                    out[m.name] = math.nan
                    continue
                out[m.name] = float(m.func(y_true, proba, labels))
            else:
                out[m.name] = float(m.func(y_true, pred))
        except ValueError:  # e.g. a class missing from a validation split
            out[m.name] = math.nan
    return out


#: Rows a model predicts at once. A pipeline's preprocessing copies what it predicts (one-hot
#: columns as float64): on the 250,000 validation rows of the million-row table a linear
#: model's or a neural network's trial on 9,000 training rows peaked at 700-800 MiB above
#: the data, most of it the validation rows' copies.
_PREDICT_CHUNK_ROWS = 50_000


def _in_chunks(fn: Any, X: Any) -> np.ndarray:
    """``fn(X)`` (a model's predict, predict_proba or decision_function), computed on
    :data:`_PREDICT_CHUNK_ROWS` rows at a time (each row's prediction is its own)."""
    n = X.shape[0]
    if n <= _PREDICT_CHUNK_ROWS:
        return np.asarray(fn(X))
    take = X.iloc if hasattr(X, "iloc") else X
    return np.concatenate([np.asarray(fn(take[i:i + _PREDICT_CHUNK_ROWS])) for i in range(0, n, _PREDICT_CHUNK_ROWS)])


def _proba(model: Any, X: pd.DataFrame) -> np.ndarray | None:
    """``model.predict_proba(X)``, or None for a model without probabilities."""
    if not hasattr(model, "predict_proba"):
        return None
    try:
        return np.asarray(_in_chunks(model.predict_proba, X), dtype=float)
    except AttributeError:  # an SVC without Platt scaling
        return None


def _as_matrix(model: Any, pred: np.ndarray, proba: np.ndarray | None, labels: np.ndarray | None) -> np.ndarray:
    if labels is None:
        return np.asarray(pred, dtype=float)
    index = {c: i for i, c in enumerate(labels.tolist())}
    out = np.zeros((len(pred), len(labels)))
    if proba is not None:
        out[:, [index[c] for c in np.asarray(model.classes_).tolist()]] = proba
    else:
        out[np.arange(len(pred)), [index[p] for p in np.asarray(pred).tolist()]] = 1.0
    return out


def prediction_matrix(model: Any, X: pd.DataFrame, labels: np.ndarray | None) -> np.ndarray:
    """What a fitted model predicts for ``X``, in the form out-of-fold predictions take.

    Regression (``labels`` None): the values, shape ``(n_rows,)``. Classification: class
    probabilities, shape ``(n_rows, len(labels))``, columns in the order of ``labels``
    (a class the model never saw gets probability 0); a model without
    ``predict_proba`` (an SVC without Platt scaling) gives one-hot rows of its labels.
    """
    pred = _in_chunks(model.predict, X)
    return _as_matrix(model, pred, None if labels is None else _proba(model, X), labels)


def _scores_of(model: Any, X: pd.DataFrame, y: np.ndarray, metrics: list[Metric], labels: np.ndarray | None,
               oof: bool = False) -> tuple[dict[str, float], np.ndarray | None]:
    """The scores on ``(X, y)`` and, when ``oof``, the :func:`prediction_matrix` of ``X``."""
    pred = _in_chunks(model.predict, X)
    proba = None
    if labels is not None and (oof or any(m.needs == "proba" for m in metrics)):
        proba = _proba(model, X)
    matrix = _as_matrix(model, pred, proba, labels) if oof else None
    if proba is None and labels is not None and hasattr(model, "decision_function") and len(labels) == 2:
        proba = _in_chunks(model.decision_function, X)  # ranks suffice for ROC AUC
    return score_predictions(metrics, y, pred, proba, labels), matrix


def send_payload(conn: Connection, payload: Any) -> None:
    """Send ``payload`` through ``conn`` without a pickled copy of its data.

    Pickle protocol 5 keeps the arrays out of band (PEP 574): each buffer goes to the pipe as
    soon as the pickler meets it, straight from the array's memory (a size message, then the
    raw bytes), and the object structure follows last. A plain ``send`` held the data twice
    in the driver while pickling it and twice in the worker while unpickling it. (Numpy
    copies a non-contiguous block, such as a view on a CSV reader's wider block, to pickle
    it: that copy lives only until its bytes are written.) Read with :func:`recv_payload`.
    """
    fd = conn.fileno()

    def write(buffer: pickle.PickleBuffer) -> bool:
        view = buffer.raw()
        conn.send(view.nbytes)
        while view.nbytes:
            view = view[os.write(fd, view):]
        return False  # out of band: not in the pickled structure

    import io

    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=5, buffer_callback=write)
    pickler.fast = True  # no memo: it would keep every buffer (and so numpy's copies) alive to the end
    pickler.dump(payload)
    conn.send_bytes(out.getbuffer())


def recv_payload(conn: Connection) -> Any:
    """The payload :func:`send_payload` sent: each buffer is read from the pipe straight into
    the memory its array then uses."""
    fd = conn.fileno()
    buffers: list[bytearray] = []
    while True:  # size messages (ints), each followed by its raw bytes, then the structure
        obj = pickle.loads(conn.recv_bytes(), buffers=buffers)
        if not isinstance(obj, int):
            return obj
        buf = bytearray(obj)
        view = memoryview(buf)
        while view.nbytes:
            n = os.readv(fd, [view])
            if n == 0:
                raise EOFError("the payload was cut short")
            view = view[n:]
        buffers.append(buf)


class _State:
    """What a worker holds: the data, splits and settings of one task."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.X: pd.DataFrame = payload["X"]
        self.y: np.ndarray = payload["y"]
        self.problem_type: str = payload["problem_type"]
        self.metric: str = payload["metric"]
        self.splits: list[tuple[np.ndarray, np.ndarray]] = payload["splits"]
        self.seed: int = payload["seed"]
        self.n_jobs: int = payload["n_jobs"]
        self.metrics = tracked_metrics(self.problem_type)
        self.labels = None if self.problem_type == "regression" else np.unique(self.y)
        self.needs_proba = self.metric == "log_loss"
        # Out-of-fold predictions cost one more predict_proba per split; on unless told otherwise.
        self.keep_oof: bool = bool(payload.get("keep_oof", True))
        self.keep_models: bool = bool(payload.get("keep_models", False))
        self._orders: dict[int, np.ndarray] = {}

    def train_rows(self, split: int, budget: float | None) -> np.ndarray:
        """The training rows of split ``split`` under a row budget (all of them for None)."""
        tr = self.splits[split][0]
        if budget is None or budget >= 1.0:
            return tr
        if split not in self._orders:
            self._orders[split] = nested_row_order(tr, self.y, classification=self.labels is not None,
                                                   seed=self.seed + split)
        return budget_rows(self._orders[split], budget, None if self.labels is None else self.y)


def _evaluate(state: _State, config: Mapping[str, Any], budget: float | None = None) -> dict[str, Any]:
    pipe = build_pipeline(
        config, state.X, state.problem_type, seed=state.seed, n_jobs=state.n_jobs, needs_proba=state.needs_proba
    )
    fold_scores: list[dict[str, float]] = []
    fit_time = 0.0
    n = state.X.shape[0]
    shape = (n,) if state.labels is None else (n, len(state.labels))
    total = np.zeros(shape) if state.keep_oof else None
    count = np.zeros(n) if state.keep_oof else None
    models = []
    for i, (_, va) in enumerate(state.splits):
        tr = state.train_rows(i, budget)
        model = clone(pipe)
        t0 = time.perf_counter()
        model.fit(state.X.iloc[tr], state.y[tr])
        fit_time += time.perf_counter() - t0
        scores_, matrix = _scores_of(model, state.X.iloc[va], state.y[va], state.metrics, state.labels,
                                     oof=state.keep_oof)
        fold_scores.append(scores_)
        if total is not None and count is not None and matrix is not None:
            total[va] += matrix
            count[va] += 1
        if state.keep_models:
            models.append(model)
    scores = {m.name: float(np.nanmean([f[m.name] for f in fold_scores])) if any(
        not math.isnan(f[m.name]) for f in fold_scores) else math.nan for m in state.metrics}
    main = [f[state.metric] for f in fold_scores]
    if any(math.isnan(s) for s in main):
        raise ValueError(f"the metric {state.metric} could not be computed on every split")
    out: dict[str, Any] = {"status": "ok", "scores": scores, "fold_scores": main, "fit_time_s": fit_time}
    if total is not None and count is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_row = count if total.ndim == 1 else count[:, None]
            out["oof"] = np.where(per_row > 0, total / np.maximum(per_row, 1), np.nan).astype(np.float32)
    if state.keep_models:
        out["fold_models"] = models
    return out


def _refit(state: _State, config: Mapping[str, Any], share: float | None = None) -> dict[str, Any]:
    pipe = build_pipeline(
        config, state.X, state.problem_type, seed=state.seed, n_jobs=state.n_jobs, needs_proba=state.needs_proba
    )
    t0 = time.perf_counter()
    if share is None or share >= 1.0:
        pipe.fit(state.X, state.y)
    else:  # a stratified sample of all the rows (successive halving's nested order)
        order = nested_row_order(np.arange(len(state.y)), state.y, classification=state.labels is not None,
                                 seed=state.seed)
        rows = budget_rows(order, share, None if state.labels is None else state.y)
        pipe.fit(state.X.iloc[rows], state.y[rows])
    return {"status": "ok", "model": pipe, "fit_time_s": time.perf_counter() - t0}


def _run(state: _State, kind: str, config: Mapping[str, Any], budget: float | None = None) -> dict[str, Any]:
    """Run one job, turning every exception into a failed result."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _evaluate(state, config, budget) if kind == "evaluate" else _refit(state, config, budget)
    except MemoryError:
        return {"status": "memory", "error": "out of memory (MemoryError)"}
    except Exception as exc:  # the configuration crashed: record why, keep searching
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return {
            "status": "crash",
            "error": f"{type(exc).__name__}: {msg[:300]} ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})",
        }


def serve(reader: Any, writer: Any, memory_limit_mb: int = 0) -> None:  # pragma: no cover - runs in a child process
    """The loop of the worker process ``python -m autometa._worker``: first message is the
    task payload, then ``(kind, config)`` jobs. ``memory_limit_mb`` caps the address space
    from then on; a limit below what the worker holds already is answered with
    ``("memory-limit", MB held)`` instead of ``"ready"``."""
    from threadpoolctl import threadpool_limits

    try:
        state = _State(recv_payload(reader))
    except EOFError:
        return
    if memory_limit_mb > 0:
        import resource

        import psutil

        held = psutil.Process().memory_info().vms / 2**20  # the address space RLIMIT_AS caps
        if held + _MEMORY_HEADROOM_MB > memory_limit_mb:
            writer.send(("memory-limit", round(held)))
            return
        limit = int(memory_limit_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    writer.send("ready")
    with threadpool_limits(max(1, state.n_jobs)):
        while True:
            try:
                msg = reader.recv()
            except EOFError:
                return
            if msg is None:
                return
            kind, config, budget = msg
            result = _run(state, kind, config, budget)
            try:
                writer.send(result)
            except (BrokenPipeError, ConnectionResetError, OSError):  # the driver is gone: nothing to report to
                return


class BaseEvaluator(abc.ABC):
    """The objective :func:`autometa.tune` optimizes: configuration in, scores out.

    Contract: :meth:`evaluate` never raises for a failing configuration (it returns a
    :class:`TrialResult` with a failure status and one line of reason) and respects
    ``time_limit_s`` and ``deadline`` as far as it can; :meth:`refit` returns the model
    fitted on all the task's rows (or on a sample of them: ``share``), or ``(None,
    reason)``; :meth:`close` releases what the evaluator holds (it may be called more
    than once). One evaluation at a time,
    called from the thread that runs :func:`autometa.tune`. With ``tune(n_workers=N)`` the
    evaluator is pickled once to every Dask worker, which evaluates with its own copy: it
    must pickle, and must not rely on state shared between copies.
    """

    @abc.abstractmethod
    def evaluate(
        self, config: Mapping[str, Any], *, time_limit_s: float | None = None, deadline: float | None = None
    ) -> TrialResult:
        """Scores of ``config`` on every tracked metric (means over splits)."""

    def refit(self, config: Mapping[str, Any], *, share: float | None = None) -> tuple[Any, str | None]:
        """The model of ``config`` fitted on all rows, or on a stratified sample of this
        ``share`` of them: ``(model, None)`` or ``(None, reason)``."""
        return None, f"{type(self).__name__} does not fit models"

    def start(self) -> None:  # noqa: B027 - optional hook, nothing to start by default
        """Get ready to evaluate (e.g. start a worker process) before the first trial."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release workers or files."""

    def __enter__(self) -> BaseEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplayEvaluator(BaseEvaluator):
    """Replays stored scores instead of fitting: the lookup objective of benchmarks that
    run the shipped :func:`autometa.tune` on a meta-database's tasks.

    A proposal that is a stored configuration gets its stored scores. Any other proposal
    gets the scores of the nearest stored configuration of the same family (Euclidean
    distance in the space's unit-cube encoding, inactive values apart), which keeps every
    replayed score a real measurement rather than a model's guess, at the price of a
    piecewise-constant landscape. Stored failures replay as crashes.

    Parameters
    ----------
    table : mapping
        Configuration key (:func:`autometa.spaces.config_key`) -> ``(config, scores,
        status, fit_time_s)``; see :meth:`from_metadb`.
    space : ConfigurationSpace
        The space proposals come from (for the nearest-neighbour encoding).
    metric : str
        The metric the fold scores report.
    """

    def __init__(self, table: Mapping[str, tuple[dict[str, Any], dict[str, float], str, float]], space: Any, *,
                 metric: str) -> None:
        from ConfigSpace.util import deactivate_inactive_hyperparameters

        from autometa.spaces import FAMILY_KEY, in_space

        if not table:
            raise InputError("A ReplayEvaluator needs at least one stored evaluation; the table is empty.")
        self.space = space
        self.metric = metric
        self.n_exact = 0
        self.n_nearest = 0
        self._table = dict(table)
        self._family: dict[str, list[str]] = {}
        vectors: dict[str, np.ndarray] = {}
        for key, (config, *_rest) in self._table.items():
            if not in_space(config, space):
                continue
            c = deactivate_inactive_hyperparameters(dict(config), space)
            vectors[key] = np.nan_to_num(np.asarray(c.get_array(), dtype=float), nan=-1.0)
            self._family.setdefault(str(config[FAMILY_KEY]), []).append(key)
        self._vectors = vectors

    @classmethod
    def from_metadb(cls, metadb: Any, task_name: str, space: Any, *, metric: str) -> ReplayEvaluator:
        """The stored evaluations (means over splits) of one task of a meta-database."""
        from autometa.spaces import config_key

        configs = metadb.configurations()
        table: dict[str, tuple[dict[str, Any], dict[str, float], str, float]] = {}
        scores = metadb.scores(task_name) if hasattr(metadb, "scores") else None
        if scores is None:
            raise InputError("This meta-database cannot list a task's scores (SQLMetaDB.scores).")
        for h, row in scores.items():
            cfg = configs.get(h)
            if cfg is None:
                continue
            table[config_key(cfg)] = (cfg, dict(row["scores"]), str(row["status"]), float(row["fit_time_s"] or 0.0))
        return cls(table, space, metric=metric)

    def _lookup(self, config: Mapping[str, Any]) -> str | None:
        from ConfigSpace.util import deactivate_inactive_hyperparameters

        from autometa.spaces import FAMILY_KEY, config_key

        key = config_key(config)
        if key in self._table:
            self.n_exact += 1
            return key
        pool = self._family.get(str(config.get(FAMILY_KEY)), [])
        if not pool:
            return None
        c = deactivate_inactive_hyperparameters(dict(config), self.space)
        v = np.nan_to_num(np.asarray(c.get_array(), dtype=float), nan=-1.0)
        dist = [float(np.sum((self._vectors[k] - v) ** 2)) for k in pool]
        self.n_nearest += 1
        return pool[int(np.argmin(dist))]

    def evaluate(
        self, config: Mapping[str, Any], *, time_limit_s: float | None = None, deadline: float | None = None
    ) -> TrialResult:
        cfg = config_to_dict(config)
        key = self._lookup(cfg)
        if key is None:
            return TrialResult(config=cfg, status="crash", error="no stored evaluation of this family to replay")
        _, scores, status, fit_time = self._table[key]
        if status != "ok" or not math.isfinite(scores.get(self.metric, math.nan)):
            return TrialResult(config=cfg, status="crash", error=f"the stored evaluation failed ({status})",
                               fit_time_s=fit_time)
        return TrialResult(config=cfg, status="ok", scores=dict(scores), fold_scores=[scores[self.metric]],
                           fit_time_s=fit_time)


class Evaluator(BaseEvaluator):
    """Evaluates configurations of one task under time and memory limits.

    Parameters
    ----------
    task : Task
    time_limit_s : float, optional
        Wall-time limit per evaluation; ``evaluate`` may lower it further.
    memory_limit_mb : int, optional
        Address-space limit of the worker process; a configuration that needs more
        fails with status ``memory``. None: no limit.
    n_jobs : int
        Threads for models that parallelize (forests, kNN, OpenMP in boosting).
    isolation : {"process", "none"}
        ``"process"`` (default) evaluates in a worker process that can be killed;
        ``"none"`` evaluates in this process (faster start, no time or memory limit).
    splits : list of (train, validation) index arrays, optional
        A fixed resampling protocol instead of :func:`make_splits` (e.g. the 3-fold CV
        of the shipped meta-database).
    keep_oof : bool
        Return each trial's out-of-fold predictions (:attr:`TrialResult.oof`), what
        ensemble selection needs.
    keep_fold_models : bool
        Return the pipelines fitted on each split (:attr:`TrialResult.fold_models`), so
        that an ensemble can be made of them without a refit. They travel back from the
        worker process with the scores: off by default.

    Notes
    -----
    Not thread-safe: one evaluation at a time. Call :meth:`close` (or use it as a
    context manager) to stop the worker.
    """

    supports_budget = True

    def __init__(
        self,
        task: Task,
        *,
        time_limit_s: float | None = None,
        memory_limit_mb: int | None = None,
        n_jobs: int = 1,
        isolation: str = "process",
        splits: list[tuple[np.ndarray, np.ndarray]] | None = None,
        keep_oof: bool = True,
        keep_fold_models: bool = False,
    ) -> None:
        if isolation not in ("process", "none"):
            raise InputError(f"isolation must be 'process' or 'none'; got {isolation!r}.")
        if time_limit_s is not None and time_limit_s <= 0:
            raise InputError(f"The per-trial time limit must be positive; got {time_limit_s!r}.")
        if memory_limit_mb is not None and memory_limit_mb <= 0:
            raise InputError(f"The memory limit must be a positive number of MB; got {memory_limit_mb!r}.")
        self.task = task
        self.time_limit_s = time_limit_s
        self.memory_limit_mb = memory_limit_mb
        self.n_jobs = n_jobs
        self.isolation = isolation
        self.splits = make_splits(task) if splits is None else list(splits)
        self._payload = {
            "X": task.X,
            "y": task.y.to_numpy(),
            "problem_type": task.problem_type,
            "metric": task.metric,
            "splits": self.splits,
            "seed": int(task.seed),
            "n_jobs": n_jobs,
            "keep_oof": bool(keep_oof),
            "keep_models": bool(keep_fold_models),
        }
        self._local: _State | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Any = None
        self._recv: Any = None

    # ------------------------------------------------------------------ worker handling
    def _ensure_worker(self, timeout_s: float) -> str | None:
        """Start the worker if needed; None when ready, else why it is not."""
        if self._proc is not None and self._proc.poll() is None:
            return None
        self._kill()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        cmd = [sys.executable, "-m", "autometa._worker", str(to_child_r), str(from_child_w), str(self.memory_limit_mb or 0),
               str(os.getpid())]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        self._proc = subprocess.Popen(cmd, pass_fds=(to_child_r, from_child_w), env=env, stdin=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        try:
            send_payload(self._send, self._payload)
            # Start-up (imports, unpickling the data) does not count against a trial's limit.
            if self._recv.poll(max(0.0, timeout_s)):
                reply = self._recv.recv()
                if reply == "ready":
                    return None
                if isinstance(reply, tuple) and reply[0] == "memory-limit":
                    self._kill()
                    return (f"the memory limit of {self.memory_limit_mb} MB is below what the evaluation worker "
                            f"needs: it holds {reply[1]} MB of address space once Python, its libraries and the "
                            f"data are loaded; raise the memory limit above {reply[1] + _MEMORY_HEADROOM_MB} MB")
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            pass
        code = self._proc.poll() if self._proc is not None else None
        self._kill()
        if code is not None:
            hint = " (is the memory limit too low to start Python?)" if self.memory_limit_mb else ""
            return f"the evaluation worker exited while starting (exit code {code}){hint}"
        return f"the evaluation worker did not start within {timeout_s:.1f} s"

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=10)
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._proc = self._send = self._recv = None

    def start(self) -> None:
        """Start the worker process now (it starts at the first evaluation otherwise)."""
        if self.isolation == "process":
            self._ensure_worker(_STARTUP_TIMEOUT_S)

    def close(self) -> None:
        """Stop the worker process: asked to exit, and killed if it has not within
        :data:`_EXIT_WAIT_S` (an idle worker holds nothing to lose, and the interpreter's
        teardown took 0.7 s under load, past the end of a run's budget)."""
        if self._send is not None and self._proc is not None and self._proc.poll() is None:
            try:
                self._send.send(None)
                self._proc.wait(timeout=_EXIT_WAIT_S)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict[str, Any]:
        # Sent to a Dask worker: the settings and the data travel, the worker process and
        # its pipes do not (each copy starts its own worker process when first used).
        state = self.__dict__.copy()
        state.update(_local=None, _proc=None, _send=None, _recv=None)
        return state

    def _call(
        self, kind: str, config: Mapping[str, Any], time_limit_s: float | None, deadline: float | None,
        budget: float | None = None,
    ) -> dict[str, Any]:
        if self.isolation == "none":
            if self._local is None:
                self._local = _State(self._payload)
            return _run(self._local, kind, config, budget)
        startup = _STARTUP_TIMEOUT_S if deadline is None else min(_STARTUP_TIMEOUT_S, deadline - time.perf_counter())
        problem = self._ensure_worker(startup)
        if problem is not None:
            status = "timeout" if "did not start" in problem else "memory" if "the memory limit" in problem else "crash"
            return {"status": status, "error": problem}
        # The limit counts from now, after start-up, and never runs past the deadline.
        limits = [t for t in (self.time_limit_s, time_limit_s) if t is not None]
        if deadline is not None:
            limits.append(max(0.0, deadline - time.perf_counter()))
        limit = min(limits) if limits else None
        try:
            self._send.send((kind, dict(config), budget))
            if self._recv.poll(limit):
                return self._recv.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            pass
        if self._proc is not None and self._proc.poll() is not None:
            code = self._proc.returncode
            self._kill()
            if code == -9:  # SIGKILL: the kernel's OOM killer or a hard limit
                return {"status": "memory", "error": "worker process killed (SIGKILL, likely out of memory)"}
            return {"status": "crash", "error": f"worker process died (exit code {code})"}
        self._kill()
        return {"status": "timeout", "error": f"exceeded the time limit of {limit:.1f} s"}

    # ------------------------------------------------------------------ public API
    def evaluate(
        self, config: Mapping[str, Any], *, time_limit_s: float | None = None, deadline: float | None = None,
        budget: float | None = None,
    ) -> TrialResult:
        """Cross-validate ``config``; never raises for a failing configuration.

        ``time_limit_s`` limits this evaluation (on top of the evaluator's limit);
        ``deadline`` (a ``time.perf_counter()`` value) is a hard end, worker start-up included.
        ``budget`` (in (0, 1]) fits on that share of each split's training rows, a
        stratified sample that grows by prefixes (a larger budget holds a smaller one's
        rows), and validates on all of the split's validation rows.
        """
        if budget is not None and not (0 < budget <= 1):
            raise InputError(f"The 'budget' of evaluate must be a share of the training rows in (0, 1]; got {budget!r}.")
        t0 = time.perf_counter()
        cfg = config_to_dict(config)
        out = self._call("evaluate", cfg, time_limit_s, deadline, budget)
        return TrialResult(
            config=cfg,
            status=out["status"],
            scores=out.get("scores", {}),
            fold_scores=out.get("fold_scores", []),
            fit_time_s=float(out.get("fit_time_s", 0.0)),
            duration_s=time.perf_counter() - t0,
            error=out.get("error"),
            oof=out.get("oof"),
            fold_models=out.get("fold_models"),
        )

    def refit(self, config: Mapping[str, Any], *, share: float | None = None) -> tuple[Any, str | None]:
        """Fit ``config`` on all the task's data, or on a stratified sample of this ``share``
        of its rows: ``(pipeline, None)`` or ``(None, reason)``.

        Runs in this process: the configuration already fitted within the time limit on
        every split, and a worker restart would cost more than the fit on small data.
        """
        from threadpoolctl import threadpool_limits

        if self._local is None:
            self._local = _State(self._payload)
        # As many threads as a trial had (n_jobs): the refit's cost was estimated from the
        # trials' fit times, and OpenMP's default of one thread per core slows histogram
        # boosting several-fold on a machine whose cores are busy (measured: 8 s instead of
        # the 1.4 s estimated, which ended a 60 s run 1 s over its budget).
        with threadpool_limits(max(1, self.n_jobs)):
            out = _run(self._local, "refit", config_to_dict(config), share)
        if out["status"] != "ok":
            return None, out.get("error", out["status"])
        return out["model"], None
