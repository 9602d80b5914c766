"""The metrics autometa can optimize and track.

Scores are reported in their natural units (RMSE is lower-is-better, accuracy higher);
optimizers minimize :meth:`Metric.to_loss`, which flips the sign where greater is better.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from autometa.exceptions import InputError

__all__ = [
    "CLASSIFICATION_TYPES",
    "METRICS",
    "PROBLEM_TYPES",
    "Metric",
    "default_metric",
    "get_metric",
    "is_classification",
    "same_kind",
    "tracked_metrics",
]


@dataclass(frozen=True)
class Metric:
    """A scoring rule.

    Parameters
    ----------
    name : str
        Identifier used on the command line and in result files.
    greater_is_better : bool
        Direction of the score.
    needs : {"label", "proba", "value"}
        What the score is computed from: predicted labels, class probabilities (or a
        decision function for binary ROC AUC) or regression values.
    problem_types : tuple of str
        Problem types the metric applies to.
    worst : float
        The worst possible score, used as the loss of a failed trial when finite.
    """

    name: str
    greater_is_better: bool
    needs: str
    problem_types: tuple[str, ...]
    worst: float
    func: Callable[..., float]

    def to_loss(self, score: float) -> float:
        """Turn a score into a loss to minimize."""
        return -score if self.greater_is_better else score

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than score ``b``."""
        return a > b if self.greater_is_better else a < b


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> float:
    if proba.ndim == 1 or proba.shape[1] == 1:
        return float(skm.roc_auc_score(y_true, np.ravel(proba)))
    if len(labels) == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1]))
    return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))


def _log_loss(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> float:
    return float(skm.log_loss(y_true, proba, labels=labels))


def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(skm.mean_squared_error(y_true, y_pred)))


#: The problem types of a :class:`~autometa.task.Task`.
PROBLEM_TYPES = ("binary", "multiclass", "regression")
#: Problem types that classify ("classification" is how some stored sources name both).
CLASSIFICATION_TYPES = ("binary", "multiclass", "classification")
_CLF = ("binary", "multiclass")
_REG = ("regression",)


def same_kind(problem_type: str) -> tuple[str, ...]:
    """The problem types a stored task may have to inform a task of ``problem_type``:
    every classification type for a classification task, ``("regression",)`` otherwise."""
    return CLASSIFICATION_TYPES if problem_type in CLASSIFICATION_TYPES else ("regression",)


def is_classification(problem_type: str) -> bool:
    """Whether ``problem_type`` classifies."""
    return problem_type in CLASSIFICATION_TYPES

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("balanced_accuracy", True, "label", _CLF, 0.0, skm.balanced_accuracy_score),
        Metric("accuracy", True, "label", _CLF, 0.0, skm.accuracy_score),
        Metric("roc_auc", True, "proba", _CLF, 0.0, _roc_auc),
        Metric("log_loss", False, "proba", _CLF, float("inf"), _log_loss),
        Metric("rmse", False, "value", _REG, float("inf"), _rmse),
        Metric("mae", False, "value", _REG, float("inf"), skm.mean_absolute_error),
        Metric("r2", True, "value", _REG, float("-inf"), skm.r2_score),
    ]
}


def get_metric(name: str, problem_type: str | None = None) -> Metric:
    """Look a metric up by name, checking that it fits the problem type."""
    key = str(name).strip().lower()
    if key not in METRICS:
        raise InputError(
            f"Unknown metric {name!r}; choose one of: {', '.join(METRICS)}."
        )
    metric = METRICS[key]
    if problem_type is not None and problem_type not in metric.problem_types:
        fitting = [m.name for m in METRICS.values() if problem_type in m.problem_types]
        raise InputError(
            f"Metric {key!r} does not apply to a {problem_type} task; "
            f"choose one of: {', '.join(fitting)}."
        )
    return metric


def default_metric(problem_type: str) -> str:
    """Balanced accuracy for classification (robust to imbalance), RMSE for regression."""
    return "rmse" if problem_type == "regression" else "balanced_accuracy"


def tracked_metrics(problem_type: str) -> list[Metric]:
    """Every metric recorded for each trial of a task of this problem type."""
    return [m for m in METRICS.values() if problem_type in m.problem_types]
