"""Zero-shot suggestions for a new task, explained, without fitting anything."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.optimizers import config_key
from autometa.spaces import get_space
from autometa.task import Task
from autometa.warmstart._knn import KNNWarmStarter, Suggestion
from autometa.warmstart._portfolio import PortfolioWarmStarter

__all__ = ["suggest_config", "warm_start_configs"]


def _store(metadb: SQLMetaDB | None) -> SQLMetaDB:
    if metadb is not None:
        return metadb
    db = SQLMetaDB()
    if not os.environ.get("AUTOMETA_METADB_URL"):
        db.ensure_shipped()
    return db


def suggest_config(
    task: Task, n: int = 5, *, metadb: SQLMetaDB | None = None, metafeatures: dict[str, float] | None = None
) -> list[Suggestion]:
    """Ranked configurations for ``task`` from the nearest stored tasks, each with its source
    (neighbour task and distance), the score it reached there and the meta-features that
    matched best. The package default is always among the first two and the learned
    default (the stored configuration with the lowest mean normalized regret over all
    stored tasks of the kind) among the first three: a suggestion never depends on the
    nearest tasks alone (FLAML issue 1247). A task farther from the meta-database than any
    stored task is from its nearest neighbour gets the default first and then the greedy
    portfolio instead of its (distant) neighbours' bests.
    """
    from autometa._tune import default_initial_configs
    from autometa.metafeatures import extract

    db = _store(metadb)
    mf = extract(task) if metafeatures is None else metafeatures
    knn = KNNWarmStarter(db, metric=str(task.metric), problem_type=str(task.problem_type))
    found = knn.suggest(mf, n=n)
    default_cfg = default_initial_configs(get_space(str(task.problem_type)), task)[0]
    far = bool(found) and found[0].neighbor is not None and found[0].neighbor.distance > knn.max_stored_distance()
    default = Suggestion(
        config=default_cfg, source="default",
        explanation="package default (kept among the first candidates as a guard against negative transfer)"
        + ("; the task is far from every stored task, so it goes first" if far else ""),
    )
    try:
        pf = PortfolioWarmStarter(db, metric=str(task.metric), problem_type=str(task.problem_type), size=n if far else 1)
    except InputError:
        pf = None
    learned: list[Suggestion] = []
    if pf is not None:
        first = pf.suggest(1)[0]
        learned = [Suggestion(
            config=first.config, source="learned default",
            explanation=(f"learned default: the stored configuration with the lowest mean normalized regret over "
                         f"{len(pf.tasks)} stored tasks ({first.extra['mean_regret_after']:.3f})"),
            extra=first.extra,
        )]
        if far:
            # No stored task is near: neighbours' bests are no better informed than a portfolio
            # that does well across all stored tasks, so fall back to default + portfolio.
            found = pf.suggest(n)[1:]
    head = [default] + learned if far or not found else [found[0], default] + learned
    rest = found if far or not found else found[1:]
    return _first_occurrences(head + rest, key=lambda s: config_key(s.config))[:n]


def warm_start_configs(task: Task, n: int = 25, *, metadb: SQLMetaDB | None = None) -> list[dict[str, Any]]:
    """Initial configurations for :func:`autometa.tune`: the kNN suggestions with the
    package default among the first two, then each family's default (duplicates dropped)."""
    from autometa._tune import default_initial_configs

    return _distinct(
        [s.config for s in suggest_config(task, n=n, metadb=metadb)]
        + default_initial_configs(get_space(str(task.problem_type)), task)
    )


def _first_occurrences(items: list[Any], key: Callable[[Any], str]) -> list[Any]:
    """``items`` without later duplicates (by ``key``), in order."""
    out, seen = [], set()
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _distinct(configs: list[Any]) -> list[dict[str, Any]]:
    """The configurations as dicts, first occurrences only, in order."""
    return [dict(c) for c in _first_occurrences(configs, key=config_key)]


def portfolio_configs(task: Task, n: int = 25, *, metadb: SQLMetaDB | None = None) -> list[dict[str, Any]]:
    """Initial configurations for :func:`autometa.tune` from the greedy portfolio of the
    stored tasks of the same kind (no meta-features needed), the package default first,
    then each family's default (duplicates dropped)."""
    from autometa._tune import default_initial_configs

    db = _store(metadb)
    defaults = default_initial_configs(get_space(str(task.problem_type)), task)
    pf = PortfolioWarmStarter(db, metric=str(task.metric), problem_type=str(task.problem_type), size=n)
    return _distinct([defaults[0]] + [s.config for s in pf.suggest(n)] + defaults)

