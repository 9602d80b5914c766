"""kNN warm start in the manner of auto-sklearn 1.0: meta-features min-max scaled on the
stored tasks, L1 distance, stored tasks ranked by distance, each neighbour's best
configuration taken in turn, duplicates dropped, the first ``n`` kept."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metrics import get_metric
from autometa.optimizers import config_key

__all__ = ["KNNWarmStarter", "Suggestion", "Neighbor"]

_CLASSIFICATION = ("binary", "multiclass", "classification")


@dataclass(frozen=True)
class Neighbor:
    """A stored task close to the new one."""

    task: str
    distance: float
    closest_features: list[str]
    farthest_features: list[str]


@dataclass(frozen=True)
class Suggestion:
    """A configuration to try, with why.

    Attributes
    ----------
    config : dict
    source : {"knn", "default"}
    predicted_score : float or None
        The score this configuration reached on the neighbour it comes from (natural
        units of the metric); None for the package default.
    neighbor : Neighbor or None
        The stored task it comes from.
    """

    config: dict[str, Any]
    source: str
    predicted_score: float | None = None
    neighbor: Neighbor | None = None
    rank_on_neighbor: int | None = None
    explanation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class KNNWarmStarter:
    """Suggest configurations from the tasks nearest in meta-feature space.

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

    Notes
    -----
    Stateless after construction (reads the store once); safe to share between threads.
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
    ) -> None:
        self.metric = get_metric(metric)
        self.p = p
        kind = _CLASSIFICATION if problem_type in _CLASSIFICATION else ("regression",)
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
        self.tasks = names
        self._matrix = matrix.loc[names]
        self._configs = metadb.configurations()

    def _vector(self, metafeatures: Mapping[str, float]) -> np.ndarray:
        v = pd.Series({f: metafeatures.get(f, math.nan) for f in self.feature_names}, dtype=float)
        v = v.replace([np.inf, -np.inf], np.nan).fillna(self._mean)
        return ((v - self._lo) / self._scale).to_numpy(dtype=float)

    def neighbors(self, metafeatures: Mapping[str, float], k: int | None = None) -> list[Neighbor]:
        """Stored tasks by increasing distance, with the meta-features that matched best and worst."""
        x = self._vector(metafeatures)
        diff = np.abs(self._X - x) ** self.p
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
        is farther from the meta-database than any stored task is from the others."""
        if len(self._X) < 2:
            return math.inf
        d = np.abs(self._X[:, None, :] - self._X[None, :, :]) ** self.p
        d = d.sum(axis=2) ** (1.0 / self.p)
        np.fill_diagonal(d, np.inf)
        return float(d.min(axis=1).max())

    def suggest(self, metafeatures: Mapping[str, float], n: int = 25, per_neighbor: int = 1) -> list[Suggestion]:
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
