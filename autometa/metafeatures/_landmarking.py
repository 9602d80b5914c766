"""Landmarkers: the cross-validated scores of a few cheap learners.

They run on a seeded subsample (stratified for classification) of at most ``max_rows``
rows, with ``N_FOLDS``-fold cross-validation (stratified for classification); OpenML uses
10 folds, 5 halve the cost. Encodings are fitted once on the subsample without the label
(no label leakage): numeric attributes are median-imputed (the decision stump sees them
with their missing values, which scikit-learn trees route natively), nominal attributes
keep their ``MAX_LEVELS`` most frequent values (a missing value is a value), one indicator
each plus one for the rest. Out-of-fold predictions of all folds are pooled before
scoring, as Weka (OpenML) does. A learner that cannot fit the data leaves its scores NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LinearRegression
from sklearn.metrics import cohen_kappa_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.naive_bayes import CategoricalNB, GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from autometa.metafeatures._table import Table

__all__ = [
    "landmarking_features",
    "CLASSIFICATION_LEARNERS",
    "REGRESSION_NAMES",
    "FEATURES_OF_GROUP",
    "N_FOLDS",
    "MAX_LEVELS",
    "MAX_LDA_COLUMNS",
]

#: Cross-validation folds (fewer when the smallest class has fewer rows).
N_FOLDS = 5
#: Indicator columns per nominal attribute, besides the one for rarer values.
MAX_LEVELS = 10
#: LDA sees at most this many encoded columns (a seeded random subset); its cost grows
#: with the cube of the width.
MAX_LDA_COLUMNS = 256

CLASSIFICATION_LEARNERS = ("DecisionStump", "NaiveBayes", "kNN_1N", "LDA")
REGRESSION_NAMES = ("DecisionStumpR2", "kNN_1NR2", "LinearRegressionR2")
_CLASSIFICATION_NAMES = tuple(f"{m}{s}" for m in CLASSIFICATION_LEARNERS for s in ("AUC", "ErrRate", "Kappa"))
FEATURES_OF_GROUP = _CLASSIFICATION_NAMES + REGRESSION_NAMES


def _subsample(table: Table, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices: all rows, or about ``max_rows`` of them keeping the class
    proportions (rounded per class; a class too rare to get a row keeps one)."""
    n = table.n_rows
    if n <= max_rows:
        return np.arange(n)
    if not table.is_classification:
        return np.sort(rng.choice(n, size=max_rows, replace=False))
    y = table.y_codes
    chosen = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        take = max(1, int(round(len(rows) * max_rows / n)))
        chosen.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.sort(np.concatenate(chosen))


def _compact_levels(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Recode one nominal column: its ``MAX_LEVELS`` most frequent values (missing, -1,
    included) become 0..L-1 by frequency, all other values share code L."""
    values, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(values))
    compact = np.minimum(rank, MAX_LEVELS)[inverse]
    return compact, int(min(len(values), MAX_LEVELS + 1))


class _Encoded:
    """The subsample encoded once for every landmarker."""

    def __init__(self, table: Table, rows: np.ndarray) -> None:
        raw = table.numeric_subset(rows=rows)
        self.raw = raw
        if raw.shape[1]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-missing column
                median = np.nanmedian(raw, axis=0)
            median = np.where(np.isnan(median), 0.0, median)
            imputed = np.where(np.isnan(raw), median, raw)
        else:
            imputed = raw
        self.imputed = imputed
        lo, hi = imputed.min(axis=0, initial=np.inf), imputed.max(axis=0, initial=-np.inf)
        span = np.where(hi > lo, hi - lo, 1.0)
        self.scaled = (imputed - lo) / span

        nominal = table.nominal[rows]
        compact = np.empty(nominal.shape, dtype=np.int64)
        self.levels = np.zeros(nominal.shape[1], dtype=np.int64)
        for j in range(nominal.shape[1]):
            compact[:, j], self.levels[j] = _compact_levels(nominal[:, j])
        self.compact = compact
        blocks = [np.eye(int(k))[compact[:, j]] for j, k in enumerate(self.levels)]
        self.onehot = np.hstack(blocks) if blocks else np.empty((len(rows), 0))

    @property
    def width(self) -> int:
        return int(self.imputed.shape[1] + self.onehot.shape[1])

    def stump(self) -> np.ndarray:
        return np.hstack([self.raw, self.onehot])

    def knn(self) -> np.ndarray:
        # Weka's distance: a nominal mismatch counts 1, as a full numeric range does.
        return np.hstack([self.scaled, self.onehot / np.sqrt(2.0)])

    def linear(self) -> np.ndarray:
        return np.hstack([self.imputed, self.onehot])


def _precision(values: np.ndarray) -> np.ndarray:
    """Weka's precision of each column: the mean gap between its sorted distinct values
    (0 for a constant column)."""
    out = np.zeros(values.shape[1])
    for j in range(values.shape[1]):
        distinct = np.unique(values[:, j])
        if distinct.size > 1:
            out[j] = (distinct[-1] - distinct[0]) / (distinct.size - 1)
    return out


class _MixedNaiveBayes:
    """Gaussian naive Bayes on numeric attributes times categorical naive Bayes (Laplace
    smoothing) on nominal attributes, with one class prior. As in Weka, a numeric
    attribute's standard deviation within a class is at least its precision / 6, so a
    class in which an attribute is (nearly) constant does not dominate."""

    def __init__(self, n_numeric: int, levels: np.ndarray, min_std: np.ndarray) -> None:
        self.n_numeric = n_numeric
        self.levels = levels
        self.min_std = min_std

    def fit(self, X: np.ndarray, y: np.ndarray) -> _MixedNaiveBayes:
        num, cat = X[:, : self.n_numeric], X[:, self.n_numeric :].astype(np.int64)
        self.gaussian_ = GaussianNB().fit(num, y) if num.shape[1] else None
        if self.gaussian_ is not None:
            self.gaussian_.var_ = np.maximum(self.gaussian_.var_, self.min_std**2)
        self.categorical_ = CategoricalNB(min_categories=self.levels).fit(cat, y) if cat.shape[1] else None
        self.classes_ = np.unique(y)  # the order both models use
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        num, cat = X[:, : self.n_numeric], X[:, self.n_numeric :].astype(np.int64)
        jll = np.zeros((len(X), len(self.classes_)))
        if self.gaussian_ is not None:
            jll += self.gaussian_.predict_joint_log_proba(num)
        if self.categorical_ is not None:
            jll += self.categorical_.predict_joint_log_proba(cat)
            if self.gaussian_ is not None:  # the prior was counted twice
                jll -= self.categorical_.class_log_prior_
        jll -= jll.max(axis=1, keepdims=True)
        proba = np.exp(jll)
        return proba / proba.sum(axis=1, keepdims=True)


def _weighted_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """One-vs-rest ROC AUC per class, weighted by class prevalence (Weka's weighted AUC)."""
    k = proba.shape[1]
    if k == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    total, weight = 0.0, 0
    for c in range(k):
        positive = y == c
        n_pos = int(positive.sum())
        if 0 < n_pos < len(y):
            total += n_pos * float(roc_auc_score(positive, proba[:, c]))
            weight += n_pos
    return total / weight if weight else float("nan")


def _classification(enc: _Encoded, y: np.ndarray, seed: int) -> dict[str, float]:
    out = dict.fromkeys(_CLASSIFICATION_NAMES, float("nan"))
    k = int(y.max()) + 1
    counts = np.bincount(y, minlength=k)
    if k < 2 or enc.width == 0:
        return out
    n_splits = int(min(N_FOLDS, max(2, counts.min())))
    if counts.max() < n_splits:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class with fewer rows than folds
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = list(splitter.split(np.zeros(len(y)), y))

    linear = enc.linear()
    if linear.shape[1] > MAX_LDA_COLUMNS:
        keep = np.sort(np.random.default_rng(seed).choice(linear.shape[1], MAX_LDA_COLUMNS, replace=False))
        linear = linear[:, keep]
    min_std = _precision(enc.imputed) / 6.0
    learners: dict[str, tuple[Callable[[], object], np.ndarray]] = {
        "DecisionStump": (lambda: DecisionTreeClassifier(max_depth=1, random_state=seed), enc.stump()),
        "NaiveBayes": (
            lambda: _MixedNaiveBayes(enc.imputed.shape[1], enc.levels, min_std),
            np.hstack([enc.imputed, enc.compact.astype(np.float64)]),
        ),
        "kNN_1N": (lambda: KNeighborsClassifier(n_neighbors=1, algorithm="brute"), enc.knn()),
        "LDA": (lambda: LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"), linear),
    }
    for name, (make, X) in learners.items():
        proba = np.zeros((len(y), k))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for train, test in folds:
                    model = make()
                    model.fit(X[train], y[train])  # type: ignore[attr-defined]
                    proba[np.ix_(test, model.classes_)] = model.predict_proba(X[test])  # type: ignore[attr-defined]
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue  # a learner that cannot fit these data leaves its scores NaN
        pred = proba.argmax(axis=1)
        out[f"{name}ErrRate"] = float(np.mean(pred != y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kappa = cohen_kappa_score(y, pred)
        out[f"{name}Kappa"] = float(kappa) if np.isfinite(kappa) else float("nan")
        out[f"{name}AUC"] = _weighted_auc(y, proba)
    return out


def _regression(enc: _Encoded, y: np.ndarray, seed: int) -> dict[str, float]:
    out = dict.fromkeys(REGRESSION_NAMES, float("nan"))
    n = len(y)
    if n < 4 or enc.width == 0:
        return out
    sst = float(((y - y.mean()) ** 2).sum())
    if sst <= 0:
        return out
    folds = list(KFold(n_splits=min(N_FOLDS, n // 2), shuffle=True, random_state=seed).split(y))
    learners: dict[str, tuple[Callable[[], object], np.ndarray]] = {
        "DecisionStumpR2": (lambda: DecisionTreeRegressor(max_depth=1, random_state=seed), enc.stump()),
        "kNN_1NR2": (lambda: KNeighborsRegressor(n_neighbors=1, algorithm="brute"), enc.knn()),
        "LinearRegressionR2": (LinearRegression, enc.linear()),
    }
    for name, (make, X) in learners.items():
        pred = np.zeros(n)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for train, test in folds:
                    model = make()
                    model.fit(X[train], y[train])  # type: ignore[attr-defined]
                    pred[test] = model.predict(X[test])  # type: ignore[attr-defined]
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
        out[name] = 1.0 - float(((y - pred) ** 2).sum()) / sst
    return out


def landmarking_features(table: Table, *, max_rows: int, seed: int) -> dict[str, float]:
    """Classification landmarkers (NaN for regression) and regression landmarkers (NaN
    for classification), on a subsample of at most ``max_rows`` rows."""
    out = dict.fromkeys(FEATURES_OF_GROUP, float("nan"))
    if table.n_rows < 2:
        return out
    rng = np.random.default_rng(seed)
    rows = _subsample(table, max_rows, rng)
    enc = _Encoded(table, rows)
    if table.is_classification:
        _, y = np.unique(table.y_codes[rows], return_inverse=True)
        out.update(_classification(enc, y.astype(np.int64), seed))
    else:
        out.update(_regression(enc, table.y_values[rows], seed))
    return out
