"""The fitted ensemble: a weighted average of pipelines, a scikit-learn estimator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from autometa.evaluation import prediction_matrix
from autometa.exceptions import InputError

__all__ = ["EnsembleClassifier", "EnsembleRegressor"]


def _weights(weights: Sequence[float] | None, n: int, name: str) -> np.ndarray:
    if n == 0:
        raise InputError(f"{name} needs at least one estimator; got none.")
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError(
            f"The 'weights' parameter of {name} must be {n} non-negative numbers with a positive sum "
            f"(one per estimator); got {list(weights)!r}."
        )
    return w / w.sum()


class _EnsembleBase(BaseEstimator):
    """Shared by both kinds: ``estimators`` (unfitted, or fitted through
    :meth:`from_fitted`) and their ``weights``."""

    def __init__(self, estimators: Sequence[Any] = (), weights: Sequence[float] | None = None) -> None:
        self.estimators = estimators
        self.weights = weights

    def _check_X(self, X: Any, *, reset: bool) -> Any:
        # DataFrames (autometa's pipelines select columns by name) go through as they are.
        if hasattr(X, "columns"):
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        allow_nan = self.__sklearn_tags__().input_tags.allow_nan
        return validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan" if allow_nan else True)

    def _check_y(self, y: Any) -> np.ndarray:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        return column_or_1d(y, warn=True)

    def _fit_members(self, X: Any, y: Any) -> None:
        self.weights_ = _weights(self.weights, len(self.estimators), type(self).__name__)
        self.estimators_ = [clone(e).fit(X, y) for e in self.estimators]

    @classmethod
    def _wrap(cls, estimators: Sequence[Any], weights: Sequence[float] | None, n_features: int | None,
              feature_names: Sequence[str] | None) -> Any:
        est = cls(estimators=list(estimators), weights=None if weights is None else [float(w) for w in weights])
        est.weights_ = _weights(est.weights, len(est.estimators), cls.__name__)
        est.estimators_ = list(estimators)
        if n_features is not None:
            est.n_features_in_ = int(n_features)
        if feature_names is not None:
            est.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        return est

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        members = list(self.estimators)
        # NaN passes when every member takes it (autometa's pipelines impute).
        tags.input_tags.allow_nan = bool(members) and all(get_tags(e).input_tags.allow_nan for e in members)
        return tags


class EnsembleClassifier(ClassifierMixin, _EnsembleBase):
    """A weighted average of classifiers' class probabilities.

    A member without ``predict_proba`` contributes one-hot rows of its labels; a member
    that never saw a class gives it probability 0. ``predict`` is the most probable
    class of the average.

    Parameters
    ----------
    estimators : sequence of estimators
        The members; :meth:`fit` fits a clone of each on the same data.
    weights : sequence of float, optional
        One non-negative weight per member (normalized to sum 1); equal by default.

    Attributes
    ----------
    estimators_ : list
        The fitted members.
    weights_ : ndarray
        Normalized weights.
    classes_ : ndarray
        The sorted classes.
    """

    def fit(self, X: Any, y: Any) -> EnsembleClassifier:
        """Fit every member on ``(X, y)``."""
        X = self._check_X(X, reset=True)
        y = self._check_y(y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        self._fit_members(X, y)
        return self

    @classmethod
    def from_fitted(cls, estimators: Sequence[Any], weights: Sequence[float] | None, classes: Sequence[Any] | np.ndarray, *,
                    n_features: int | None = None, feature_names: Sequence[str] | None = None) -> EnsembleClassifier:
        """An ensemble of members fitted already (e.g. the fold models of cross-validation)."""
        est = cls._wrap(estimators, weights, n_features, feature_names)
        est.classes_ = np.asarray(list(classes))
        return est  # type: ignore[no-any-return]

    def predict_proba(self, X: Any) -> np.ndarray:
        """The weighted mean of the members' class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "estimators_")
        X = self._check_X(X, reset=False)
        out = np.zeros((X.shape[0], len(self.classes_)))
        for w, est in zip(self.weights_, self.estimators_, strict=True):
            out += w * prediction_matrix(est, X, self.classes_)
        return out

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of the weighted mean."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


class EnsembleRegressor(RegressorMixin, _EnsembleBase):
    """A weighted average of regressors' predictions.

    Parameters and attributes as :class:`EnsembleClassifier`, without ``classes_``.
    """

    def fit(self, X: Any, y: Any) -> EnsembleRegressor:
        """Fit every member on ``(X, y)``."""
        X = self._check_X(X, reset=True)
        y = self._check_y(y).astype(float)
        self._fit_members(X, y)
        return self

    @classmethod
    def from_fitted(cls, estimators: Sequence[Any], weights: Sequence[float] | None, *,
                    n_features: int | None = None, feature_names: Sequence[str] | None = None) -> EnsembleRegressor:
        """An ensemble of members fitted already (e.g. the fold models of cross-validation)."""
        return cls._wrap(estimators, weights, n_features, feature_names)  # type: ignore[no-any-return]

    def predict(self, X: Any) -> np.ndarray:
        """The weighted mean of the members' predictions."""
        check_is_fitted(self, "estimators_")
        X = self._check_X(X, reset=False)
        out = np.zeros(X.shape[0])
        for w, est in zip(self.weights_, self.estimators_, strict=True):
            out += w * np.asarray(est.predict(X), dtype=float).ravel()
        return out
