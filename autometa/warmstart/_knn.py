"""The stored tasks nearest a new one, in the manner of auto-sklearn 1.0: meta-features
min-max scaled on the stored tasks, L1 distance, stored tasks ranked by distance, each
neighbour's best configuration taken in turn, duplicates dropped, the first ``n`` kept."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metrics import get_metric, same_kind
from autometa.spaces import config_key
from autometa.warmstart._base import Neighbor, Suggestion

__all__ = ["MetaFeatureIndex", "Suggestion", "Neighbor", "fit_similarity_weights"]


def fit_similarity_weights(
    metadb: SQLMetaDB,
    *,
    metric: str,
    problem_type: str,
    exclude: Sequence[str] = (),
    extractor: str = "autometa",
    min_common: int = 20,
) -> dict[str, float]:
    """Weights on the meta-features, fitted so that the weighted L1 distance between two
    stored tasks predicts how differently they rank configurations.

    For every pair of stored tasks of the kind, the target is ``1 - Spearman`` of their
    scores on the configurations both have (at least ``min_common``); the features are
    the pair's absolute differences of min-max scaled meta-features. Non-negative least
    squares (with an intercept) gives the weights, rescaled to a mean of 1 over the
    features, so that distances keep the unweighted scale. Meta-features that do not
    help predict ranking agreement get weight 0.
    """
    from scipy.optimize import nnls
    from scipy.stats import spearmanr

    idx = MetaFeatureIndex(metadb, metric=metric, problem_type=problem_type, exclude=exclude, extractor=extractor)
    scores = idx._matrix.to_numpy(dtype=float)
    n = len(idx.tasks)
    if n < 4:
        raise InputError(f"Fitting meta-feature weights needs at least 4 stored tasks of the kind; the store has {n}.")
    rows, target = [], []
    for i in range(n):
        for j in range(i + 1, n):
            ok = np.isfinite(scores[i]) & np.isfinite(scores[j])
            if ok.sum() < min_common:
                continue
            rho = spearmanr(scores[i, ok], scores[j, ok]).statistic
            if not np.isfinite(rho):
                continue
            rows.append(np.abs(idx._X[i] - idx._X[j]))
            target.append(1.0 - float(rho))
    if len(rows) < 2 * len(idx.feature_names):
        raise InputError(f"Too few comparable stored task pairs ({len(rows)}) to fit meta-feature weights.")
    A = np.hstack([np.vstack(rows), np.ones((len(rows), 1))])
    w, _ = nnls(A, np.asarray(target))
    w = w[:-1]
    if not (w > 0).any():
        raise InputError("No meta-feature predicts how alike stored tasks rank configurations.")
    w = w * len(w) / w.sum()
    return {f: float(v) for f, v in zip(idx.feature_names, w, strict=True)}


#: Elements of the temporary of one block of task pairs in max_stored_distance (32 MB of floats).
_PAIR_BLOCK_ELEMENTS = 1 << 22


class MetaFeatureIndex:
    """The stored tasks of one kind, searchable by meta-feature distance, with their
    configurations ranked by one metric (the engine of :class:`KNNWarmStarter`).

    Parameters
    ----------
    metadb : SQLMetaDB
        Where the tasks, their meta-features and evaluations are.
    metric : str
        Metric whose stored scores rank each neighbour's configurations.
    problem_type : str
        Only stored tasks of the same kind (classification or regression) are neighbours.
    features : sequence of str, optional
        Meta-features to compare (all stored ones by default); a feature missing on more
        than half of the stored tasks is dropped, other gaps are mean-imputed.
    p : int
        Minkowski exponent of the distance (1: L1, as auto-sklearn).
    exclude : sequence of str
        Stored task names never to use (e.g. the task itself in a leave-one-out study).
    weights : mapping, optional
        A weight per meta-feature (:func:`fit_similarity_weights`): the distance is then
        the weighted sum of the scaled differences (features without a weight count 0).
        Unweighted (every feature 1, auto-sklearn's L1) by default.

    Notes
    -----
    Reads the store once, at construction; safe to share between threads (the cached
    :meth:`max_stored_distance` is the same whichever thread computes it).
    """

    def __init__(
        self,
        metadb: SQLMetaDB,
        *,
        metric: str,
        problem_type: str,
        features: Sequence[str] | None = None,
        p: int = 1,
        exclude: Sequence[str] = (),
        extractor: str = "autometa",
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.metric = get_metric(metric)
        self.p = p
        kind = same_kind(problem_type)
        tasks = metadb.tasks()
        matrix = metadb.performance_matrix(self.metric.name)
        mf = metadb.metafeatures(extractor=extractor)
        names = [t for t in matrix.index if t in mf.index and t in tasks.index
                 and tasks.loc[t, "problem_type"] in kind and t not in set(exclude)]
        if not names:
            raise InputError(
                f"The meta-database has no {kind[0]} task with meta-features and {self.metric.name} scores; "
                "build or load it first (autometa metadb info)."
            )
        mf = mf.loc[names]
        if features is not None:
            mf = mf[[f for f in features if f in mf.columns]]
        mf = mf.loc[:, mf.notna().mean() >= 0.5]
        mf = mf.replace([np.inf, -np.inf], np.nan)
        self.feature_names = list(mf.columns)
        self._mean = mf.mean()
        filled = mf.fillna(self._mean)
        self._lo, self._hi = filled.min(), filled.max()
        self._scale = (self._hi - self._lo).replace(0, 1.0)
        self._X = ((filled - self._lo) / self._scale).to_numpy(dtype=float)
        self._w = (np.ones(len(self.feature_names)) if weights is None
                   else np.asarray([float(weights.get(f, 0.0)) for f in self.feature_names]))
        if weights is not None and not (self._w > 0).any():
            raise InputError("The meta-feature weights give every stored meta-feature a weight of 0; fit them again.")
        self.tasks = names
        self._max_stored: float | None = None
        self._matrix = matrix.loc[names]
        self._configs = metadb.configurations()

    def _vector(self, metafeatures: Mapping[str, float]) -> np.ndarray:
        v = pd.Series({f: metafeatures.get(f, math.nan) for f in self.feature_names}, dtype=float)
        v = v.replace([np.inf, -np.inf], np.nan).fillna(self._mean)
        return ((v - self._lo) / self._scale).to_numpy(dtype=float)

    def neighbors(self, metafeatures: Mapping[str, float], k: int | None = None) -> list[Neighbor]:
        """Stored tasks by increasing distance, with the meta-features that matched best and worst."""
        x = self._vector(metafeatures)
        diff = self._w * np.abs(self._X - x) ** self.p
        dist = diff.sum(axis=1) ** (1.0 / self.p)
        order = np.argsort(dist, kind="stable")[: k or len(dist)]
        out = []
        for i in order:
            contrib = np.argsort(diff[i], kind="stable")
            out.append(Neighbor(
                task=self.tasks[i], distance=float(dist[i]),
                closest_features=[self.feature_names[j] for j in contrib[:3]],
                farthest_features=[self.feature_names[j] for j in contrib[::-1][:3]],
            ))
        return out

    def max_stored_distance(self) -> float:
        """The largest nearest-neighbour distance among stored tasks: beyond it, a new task
        is farther from the meta-database than any stored task is from the others.

        Computed once per index, over blocks of stored tasks, so that the temporaries stay
        about 32 MB however many tasks the store holds (all pairs at once would take
        tasks x tasks x features floats: 2.6 GB for 2,000 tasks of 82 meta-features)."""
        if self._max_stored is not None:
            return self._max_stored
        n = len(self._X)
        if n < 2:
            return math.inf
        step = max(1, _PAIR_BLOCK_ELEMENTS // max(n * self._X.shape[1], 1))
        nearest = np.empty(n)
        for start in range(0, n, step):
            block = self._X[start : start + step]
            d = (self._w * np.abs(block[:, None, :] - self._X[None, :, :]) ** self.p).sum(axis=2) ** (1.0 / self.p)
            d[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
            nearest[start : start + len(block)] = d.min(axis=1)
        self._max_stored = float(nearest.max())
        return self._max_stored

    def best_of_neighbors(self, metafeatures: Mapping[str, float], n: int = 25, per_neighbor: int = 1) -> list[Suggestion]:
        """Up to ``n`` distinct configurations: the best ``per_neighbor`` of each neighbour in
        order of distance."""
        out: list[Suggestion] = []
        seen: set[str] = set()
        for nb in self.neighbors(metafeatures):
            row = self._matrix.loc[nb.task].dropna().sort_values(ascending=not self.metric.greater_is_better)
            for rank, (h, score) in enumerate(row.head(per_neighbor).items(), start=1):
                config = self._configs[h]
                key = config_key(config)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Suggestion(
                    config=config, source="knn", predicted_score=float(score), neighbor=nb, rank_on_neighbor=rank,
                    explanation=(f"best on {nb.task} (distance {nb.distance:.3f}; closest in "
                                 f"{', '.join(nb.closest_features)}): {self.metric.name} {score:.4f}"),
                ))
                if len(out) >= n:
                    return out
        return out
