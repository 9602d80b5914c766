"""Greedy portfolios (auto-sklearn 2.0 / FLAML style): the ordered set of configurations
that minimizes the average normalized regret over stored tasks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metrics import get_metric
from autometa.warmstart._knn import _CLASSIFICATION, Suggestion

__all__ = ["PortfolioWarmStarter", "normalized_regret"]


def normalized_regret(matrix: pd.DataFrame, *, greater_is_better: bool) -> pd.DataFrame:
    """Per task (row): 0 for the best stored configuration, 1 for the worst; a configuration
    that failed or was not evaluated counts as the worst (1)."""
    best = matrix.max(axis=1) if greater_is_better else matrix.min(axis=1)
    worst = matrix.min(axis=1) if greater_is_better else matrix.max(axis=1)
    span = (best - worst).abs().replace(0, np.nan)
    regret = (matrix.sub(best, axis=0).abs()).div(span, axis=0)
    return regret.fillna(1.0).clip(0.0, 1.0).where(span.notna(), 0.0, axis=0)


class PortfolioWarmStarter:
    """An ordered portfolio built greedily on the stored task x configuration matrix.

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
    ) -> None:
        self.metric = get_metric(metric)
        kind = _CLASSIFICATION if problem_type in _CLASSIFICATION else ("regression",)
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
        regret = normalized_regret(matrix, greater_is_better=self.metric.greater_is_better).to_numpy()
        configs = metadb.configurations()
        chosen: list[int] = []
        current = np.ones(regret.shape[0])
        curve = []
        for _ in range(min(size, regret.shape[1])):
            candidate = np.minimum(current[:, None], regret).mean(axis=0)
            candidate[chosen] = np.inf
            j = int(np.argmin(candidate))
            chosen.append(j)
            current = np.minimum(current, regret[:, j])
            curve.append(float(current.mean()))
        self.hashes = [matrix.columns[j] for j in chosen]
        self.portfolio = [configs[h] for h in self.hashes]
        self.curve = curve

    def suggest(self, n: int | None = None) -> list[Suggestion]:
        """The first ``n`` configurations of the portfolio, in order."""
        out = []
        for i, (config, regret) in enumerate(zip(self.portfolio, self.curve, strict=True)):
            if n is not None and i >= n:
                break
            out.append(Suggestion(
                config=config, source="portfolio",
                explanation=(f"portfolio position {i + 1} of {len(self.portfolio)} over {len(self.tasks)} stored tasks: "
                             f"mean normalized regret {regret:.3f} after it"),
                extra={"position": i + 1, "mean_regret_after": regret},
            ))
        return out
