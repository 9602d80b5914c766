"""The built-in warm starters: family defaults, kNN over meta-features, greedy portfolios;
and zero-shot :func:`suggest_config`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ConfigSpace import ConfigurationSpace

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB, open_metadb
from autometa.spaces import default_initial_configs, default_reason, get_space
from autometa.task import Task
from autometa.warmstart._base import BaseWarmStarter, Suggestion, distinct_suggestions, restrict
from autometa.warmstart._cost import defer_costly
from autometa.warmstart._knn import MetaFeatureIndex
from autometa.warmstart._portfolio import GreedyPortfolio

__all__ = ["DefaultsWarmStarter", "KNNWarmStarter", "PortfolioWarmStarter", "suggest_config"]


def _defaults(task: Task, space: ConfigurationSpace, second_defaults: bool = True) -> list[Suggestion]:
    return [
        Suggestion(config=c, source="default", explanation=default_reason(c, getattr(task, "problem_type", None)))
        for c in default_initial_configs(space, task, second_defaults=second_defaults)
    ]


def _fill(found: list[Suggestion], defaults: list[Suggestion], space: ConfigurationSpace, n: int) -> list[Suggestion]:
    """The meta-learned suggestions first, then the defaults start, ``n`` in all:
    as many meta-learned ones as leave room for the defaults, more if a default repeats one."""
    head = max(1, n - len(defaults))
    out = restrict(found[:head] + defaults, space, n)
    return restrict(out + found[head:], space, n)


def _metafeatures(task: Task, given: Mapping[str, float] | None) -> dict[str, float]:
    from autometa.metafeatures import extract

    return dict(given) if given is not None else extract(task)


class DefaultsWarmStarter(BaseWarmStarter):
    """Each family's package default, in the space's order (``class_weight="balanced"``
    where the metric weighs classes equally and the classes are imbalanced), then the
    second defaults of the task's problem type (for regression, a slow histogram boosting).

    Needs no meta-database: the start of a search that uses no meta-knowledge.

    Parameters
    ----------
    second_defaults : bool, default=True
        ``False``: one default per family (the start before the second defaults).
    """

    name = "defaults"

    def __init__(self, second_defaults: bool = True) -> None:
        self.second_defaults = second_defaults

    def suggest(
        self, task: Task, space: ConfigurationSpace, n: int = 25, *, metafeatures: Mapping[str, float] | None = None
    ) -> list[Suggestion]:
        return restrict(_defaults(task, space, self.second_defaults), space, n)


class _MetaDBStarter(BaseWarmStarter):
    """A starter that reads a meta-database (opened on first use); with ``cost_aware``, its
    suggestions predicted to take more than a quarter of the budget on this table go last
    (:func:`defer_costly`, from the fit times the store holds)."""

    def __init__(self, metadb: SQLMetaDB | str | None = None, *, exclude: Sequence[str] = (),
                 cost_aware: bool = True) -> None:
        self.metadb = metadb
        self.exclude = tuple(exclude)
        self.cost_aware = cost_aware
        self._db: SQLMetaDB | None = None

    def _store(self) -> SQLMetaDB:
        if self._db is None:
            self._db = open_metadb(self.metadb)
        return self._db

    def _costed(self, found: list[Suggestion], task: Task) -> list[Suggestion]:
        return defer_costly(found, task, self._store()) if self.cost_aware else found

    def __repr__(self) -> str:
        return f"{type(self).__name__}(metadb={self.metadb!r})"


class KNNWarmStarter(_MetaDBStarter):
    """The best configurations of the stored tasks nearest in meta-feature space
    (auto-sklearn 1.0), guarded, then the defaults start.

    The order: the nearest task's best, the package default (so it is always among the
    first two), the learned default (the stored configuration with the lowest mean
    normalized regret over all stored tasks of the kind, among the first three), the
    other neighbours' bests, then the defaults start. A task farther from the
    meta-database than any stored task is from its nearest neighbour gets the default
    first and then the greedy portfolio instead of its (distant) neighbours' bests.

    Parameters
    ----------
    metadb : SQLMetaDB, str or None
        The store, its URL, or None for the default store (with the shipped meta-dataset).
    exclude : sequence of str
        Stored task names never to use (e.g. the task itself in a leave-one-out study).
    features : sequence of str, optional
        Meta-features to compare (all stored ones by default).
    p : int
        Minkowski exponent of the distance (1: L1, as auto-sklearn).
    cost_aware : bool
        Move suggestions predicted to take more than a quarter of the budget on this table
        to the end (predicted from the stored fit times).
    """

    name = "knn"

    def __init__(
        self,
        metadb: SQLMetaDB | str | None = None,
        *,
        exclude: Sequence[str] = (),
        features: Sequence[str] | None = None,
        p: int = 1,
        cost_aware: bool = True,
    ) -> None:
        super().__init__(metadb, exclude=exclude, cost_aware=cost_aware)
        self.features = features
        self.p = p
        self._indexes: dict[tuple[str, str], MetaFeatureIndex] = {}

    def index(self, metric: str, problem_type: str) -> MetaFeatureIndex:
        """The stored tasks of this kind with ``metric`` scores (built once, then cached)."""
        key = (metric, problem_type)
        if key not in self._indexes:
            self._indexes[key] = MetaFeatureIndex(
                self._store(), metric=metric, problem_type=problem_type, features=self.features, p=self.p,
                exclude=self.exclude,
            )
        return self._indexes[key]

    def ranked(self, task: Task, n: int = 5, *, metafeatures: Mapping[str, float] | None = None) -> list[Suggestion]:
        """The guarded zero-shot ranking (without the trailing family defaults), over the
        task's full space: what :func:`suggest_config` returns."""
        db = self._store()
        mf = _metafeatures(task, metafeatures)
        metric, kind = str(task.metric), str(task.problem_type)
        knn = self.index(metric, kind)
        found = knn.best_of_neighbors(mf, n=n)
        default_cfg = default_initial_configs(get_space(kind), task)[0]
        far = bool(found) and found[0].neighbor is not None and found[0].neighbor.distance > knn.max_stored_distance()
        default = Suggestion(
            config=default_cfg, source="default",
            explanation="package default (kept among the first candidates as a guard against negative transfer)"
            + ("; the task is far from every stored task, so it goes first" if far else ""),
        )
        try:
            pf = GreedyPortfolio(db, metric=metric, problem_type=kind, size=n if far else 1, exclude=self.exclude)
        except InputError:
            pf = None
        learned: list[Suggestion] = []
        if pf is not None:
            first = pf.top(1)[0]
            learned = [Suggestion(
                config=first.config, source="learned default",
                explanation=(f"learned default: the stored configuration with the lowest mean normalized regret over "
                             f"{len(pf.tasks)} stored tasks ({first.extra['mean_regret_after']:.3f})"),
                extra=first.extra,
            )]
            if far:
                # No stored task is near: neighbours' bests are no better informed than a portfolio
                # that does well across all stored tasks, so fall back to default + portfolio.
                found = pf.top(n)[1:]
        head = [default] + learned if far or not found else [found[0], default] + learned
        rest = found if far or not found else found[1:]
        return distinct_suggestions(head + rest)[:n]

    def suggest(
        self, task: Task, space: ConfigurationSpace, n: int = 25, *, metafeatures: Mapping[str, float] | None = None
    ) -> list[Suggestion]:
        defaults = _defaults(task, space)
        # rank more than needed: suggestions outside a restricted space are dropped
        found = restrict(self.ranked(task, n=2 * n, metafeatures=metafeatures), space, 2 * n)
        return self._costed(_fill(found, defaults, space, n), task)


class PortfolioWarmStarter(_MetaDBStarter):
    """The package default, then the greedy portfolio of the stored tasks (auto-sklearn
    2.0 / FLAML), then the defaults start.

    Parameters
    ----------
    metadb : SQLMetaDB, str or None
    exclude : sequence of str
        Stored tasks to leave out.
    neighbors : int, optional
        Condition the portfolio on the ``neighbors`` stored tasks nearest in meta-feature
        space (:class:`GreedyPortfolio`); unconditioned by default.
    cost_aware : bool
        Move suggestions predicted to take more than a quarter of the budget on this table
        to the end (predicted from the stored fit times).
    """

    name = "portfolio"

    def __init__(
        self, metadb: SQLMetaDB | str | None = None, *, exclude: Sequence[str] = (), neighbors: int | None = None,
        cost_aware: bool = True,
    ) -> None:
        super().__init__(metadb, exclude=exclude, cost_aware=cost_aware)
        if neighbors is not None and neighbors < 1:
            raise InputError(f"The 'neighbors' parameter of PortfolioWarmStarter must be at least 1; got {neighbors!r}.")
        self.neighbors = neighbors

    def suggest(
        self, task: Task, space: ConfigurationSpace, n: int = 25, *, metafeatures: Mapping[str, float] | None = None
    ) -> list[Suggestion]:
        kw: dict[str, Any] = {}
        if self.neighbors is not None:
            kw = {"metafeatures": _metafeatures(task, metafeatures), "neighbors": self.neighbors}
        pf = GreedyPortfolio(self._store(), metric=str(task.metric), problem_type=str(task.problem_type),
                             size=2 * n, exclude=self.exclude, **kw)
        defaults = _defaults(task, space)
        return self._costed(_fill(defaults[:1] + restrict(pf.top(), space, 2 * n), defaults, space, n), task)


def suggest_config(
    task: Task,
    n: int = 5,
    *,
    metadb: SQLMetaDB | str | None = None,
    metafeatures: dict[str, float] | None = None,
    method: str = "predictor",
) -> list[Suggestion]:
    """Zero-shot: ranked, explained configurations for ``task``; nothing is fitted on it.

    ``method="predictor"`` (the default) ranks stored and fresh configurations by the
    learned performance predictor (:class:`PredictorWarmStarter`), with a guard that puts
    the package default first unless the predictor's best is predicted clearly better.
    Fitted for real on stored tasks it never saw (experiments/results/zero_shot_live.md),
    its first suggestion is at least as good as the package default on 89% of 120
    classification and 91% of 53 regression tasks, against 72% and 74% for the kNN; on
    real tables outside the meta-database on 44-85% of table-seeds (that report).
    ``method="knn"`` takes the best configurations of the
    nearest stored tasks, each with its neighbour, distance and score there
    (:class:`KNNWarmStarter`). Either way the package default is among the first two,
    so a suggestion never rests on the meta-knowledge alone (FLAML issue 1247).
    """
    if not isinstance(task, Task):
        raise InputError(f"suggest_config needs an autometa.Task, e.g. Task(frame, label='y'); got "
                         f"{type(task).__name__}.")
    if method == "knn":
        return KNNWarmStarter(metadb).ranked(task, n=n, metafeatures=metafeatures)
    if method == "predictor":
        from autometa.warmstart._predictor import PredictorWarmStarter

        return PredictorWarmStarter(metadb).ranked(task, n=n, metafeatures=metafeatures)
    raise InputError(f"The 'method' parameter of suggest_config must be 'predictor' or 'knn'; got {method!r}.")
