"""Ensemble selection over the trials' out-of-fold predictions.

Every trial of :func:`autometa.tune` keeps its out-of-fold predictions
(:attr:`autometa.evaluation.TrialResult.oof`); the :class:`OOFPool` holds those of the
best trials, :func:`caruana_selection` builds a weighted ensemble of them that maximizes
the task's metric (greedy forward selection with replacement, Caruana et al. 2004), and
:class:`EnsembleClassifier` / :class:`EnsembleRegressor` are the fitted ensemble, refit
on all rows or made of the members' fold models.
"""

from autometa.ensemble._model import EnsembleClassifier, EnsembleRegressor
from autometa.ensemble._pool import Candidate, OOFPool
from autometa.ensemble._selection import Selection, caruana_selection, score_matrix

__all__ = [
    "Candidate",
    "EnsembleClassifier",
    "EnsembleRegressor",
    "OOFPool",
    "Selection",
    "caruana_selection",
    "score_matrix",
]
