"""Greedy portfolios (auto-sklearn 2.0 / FLAML style): the ordered set of configurations
that minimizes the average normalized regret over stored tasks, optionally conditioned on
the stored tasks nearest to a new one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metrics import get_metric, same_kind
from autometa.warmstart._knn import MetaFeatureIndex, Suggestion

__all__ = ["GreedyPortfolio", "normalized_regret"]


def normalized_regret(matrix: pd.DataFrame, *, greater_is_better: bool) -> pd.DataFrame:
    """Per task (row): 0 for the best stored configuration, 1 for the worst; a configuration
    that failed or was not evaluated counts as the worst (1)."""
    best = matrix.max(axis=1) if greater_is_better else matrix.min(axis=1)
    worst = matrix.min(axis=1) if greater_is_better else matrix.max(axis=1)
    span = (best - worst).abs().replace(0, np.nan)
    regret = (matrix.sub(best, axis=0).abs()).div(span, axis=0)
    return regret.fillna(1.0).clip(0.0, 1.0).where(span.notna(), 0.0, axis=0)


class GreedyPortfolio:
    """An ordered portfolio built greedily on the stored task x configuration matrix (the
    engine of :class:`PortfolioWarmStarter`).

    Step ``i`` adds the configuration that most lowers the mean over tasks of the best
    (lowest) normalized regret within the portfolio so far. ``curve[i]`` is that mean
    after ``i + 1`` configurations: what a user gets, on average over the stored tasks,
    from evaluating the first ``i + 1``.

    Parameters
    ----------
    metadb : SQLMetaDB
    metric : str
    problem_type : str
        Classification tasks build a classification portfolio, regression tasks a
        regression one.
    size : int
        Length of the portfolio.
    exclude : sequence of str
        Stored tasks to leave out (leave-one-task-out studies).
    min_coverage : float
        Tasks with fewer evaluated configurations than this share of the matrix's columns
        are left out (a half-built meta-dataset).
    metafeatures : mapping, optional
        Meta-features of the new task. With ``neighbors``, the portfolio is conditioned on
        it: the ``neighbors`` nearest stored tasks (kNN distance, as
        :class:`MetaFeatureIndex`) carry the objective, and every other stored task a weight
        of ``far_weight`` each, which only breaks ties once the near tasks are covered.
    neighbors : int, optional
        How many nearest stored tasks condition the portfolio; ``None`` for all tasks alike.
    far_weight : float
        Weight of a stored task outside the ``neighbors`` nearest (a near task weighs 1).
    """

    def __init__(
        self,
        metadb: SQLMetaDB,
        *,
        metric: str,
        problem_type: str,
        size: int = 32,
        exclude: Sequence[str] = (),
        min_coverage: float = 0.9,
        metafeatures: Mapping[str, float] | None = None,
        neighbors: int | None = None,
        far_weight: float = 0.01,
    ) -> None:
        self.metric = get_metric(metric)
        kind = same_kind(problem_type)
        tasks = metadb.tasks()
        matrix = metadb.performance_matrix(self.metric.name)
        keep = [t for t in matrix.index if t in tasks.index and tasks.loc[t, "problem_type"] in kind and t not in set(exclude)]
        matrix = matrix.loc[keep].dropna(axis=1, how="all")
        matrix = matrix.loc[matrix.notna().mean(axis=1) >= min_coverage] if not matrix.empty else matrix
        if matrix.empty:
            raise InputError(
                f"The meta-database has no complete {kind[0]} task with {self.metric.name} scores to build a portfolio from."
            )
        self.tasks = list(matrix.index)
        self.near_tasks: list[str] = []
        weights = np.ones(len(self.tasks))
        if (metafeatures is None) != (neighbors is None):
            raise InputError("A conditioned portfolio needs both the new task's metafeatures and a number of neighbors.")
        if neighbors is not None:
            if neighbors < 1:
                raise InputError(f"neighbors must be at least 1; got {neighbors}.")
            knn = MetaFeatureIndex(metadb, metric=self.metric.name, problem_type=problem_type, exclude=exclude)
            assert metafeatures is not None  # both-or-neither check above
            stored = set(self.tasks)
            ranked = [nb.task for nb in knn.neighbors(metafeatures) if nb.task in stored]
            self.near_tasks = ranked[:neighbors]
            near = set(self.near_tasks)
            weights = np.array([1.0 if t in near else far_weight for t in self.tasks])
        weights = weights / weights.sum()
        regret = normalized_regret(matrix, greater_is_better=self.metric.greater_is_better).to_numpy()
        configs = metadb.configurations()
        chosen: list[int] = []
        current = np.ones(regret.shape[0])
        curve = []
        for _ in range(min(size, regret.shape[1])):
            candidate = weights @ np.minimum(current[:, None], regret)
            candidate[chosen] = np.inf
            j = int(np.argmin(candidate))
            chosen.append(j)
            current = np.minimum(current, regret[:, j])
            curve.append(float(weights @ current))
        self.hashes = [matrix.columns[j] for j in chosen]
        self.portfolio = [configs[h] for h in self.hashes]
        self.curve = curve

    def top(self, n: int | None = None) -> list[Suggestion]:
        """The first ``n`` configurations of the portfolio, in order."""
        out = []
        over = (f"the {len(self.near_tasks)} nearest stored tasks ({', '.join(self.near_tasks[:3])}"
                f"{', ...' if len(self.near_tasks) > 3 else ''})" if self.near_tasks else f"{len(self.tasks)} stored tasks")
        for i, (config, regret) in enumerate(zip(self.portfolio, self.curve, strict=True)):
            if n is not None and i >= n:
                break
            out.append(Suggestion(
                config=config, source="portfolio",
                explanation=(f"portfolio position {i + 1} of {len(self.portfolio)} over {over}: "
                             f"mean normalized regret {regret:.3f} after it"),
                extra={"position": i + 1, "mean_regret_after": regret, "near_tasks": list(self.near_tasks)},
            ))
        return out
