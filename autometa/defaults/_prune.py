"""Pruning by importance: hyperparameters that matter little across stored tasks are
fixed to their family's learned default."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence

from ConfigSpace import ConfigurationSpace

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB, cache_dir, cache_still_fits, open_metadb
from autometa.spaces import FAMILY_KEY
from autometa.task import Task
from autometa.transfer import BasePruner, fix_unimportant

__all__ = ["ImportancePruner", "mean_importance"]


def mean_importance(
    metadb: SQLMetaDB, *, metric: str, problem_type: str, families: Sequence[str], max_tasks: int = 30,
    exclude: Sequence[str] = (),
) -> dict[str, float]:
    """Mean functional-ANOVA share of every hyperparameter (``"family:name"``) across the
    stored tasks, cached on disk (:func:`autometa.metadb.cache_dir`) per store and reused while
    the store has gained at most 5% of the tasks it was computed on."""
    from autometa.defaults._importance import hyperparameter_importance

    n_tasks = int(metadb.info().get("tasks") or 0)
    key = json.dumps([metric, problem_type, sorted(families), str(metadb.url), max_tasks, sorted(exclude)],
                     sort_keys=True, default=str)
    path = cache_dir() / "importance" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            # reused while the store has gained few tasks: each recorded run adds one, and the
            # importances over up to max_tasks tasks take tens of seconds to compute
            if cache_still_fits(int(cached["tasks"]), n_tasks):
                return {str(k): float(v) for k, v in cached["importance"].items()}
        except (ValueError, KeyError, TypeError):  # an older or cut file is recomputed
            pass
    out: dict[str, float] = {}
    for fam in families:
        try:
            table = hyperparameter_importance(metadb, family=fam, metric=metric, problem_type=problem_type,
                                              max_tasks=max_tasks, exclude=exclude)
        except InputError:
            continue
        for name, value in table["mean"].items():
            out[f"{fam}:{name}"] = float(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"tasks": n_tasks, "importance": out}, sort_keys=True))
    tmp.replace(path)
    return out


class ImportancePruner(BasePruner):
    """Fixes every hyperparameter whose mean fANOVA importance across the stored tasks is
    below ``threshold`` to the learned default of its family (van Rijn & Hutter 2018;
    Probst et al. 2019): the search then spends its trials on what matters.

    Parameters
    ----------
    metadb : SQLMetaDB, str or None
    threshold : float
        Importance share below which a hyperparameter is fixed.
    exclude : sequence of str
        Stored tasks left out of the importances and learned defaults (leave-one-task-out).
    """

    name = "importance"

    def __init__(
        self, metadb: SQLMetaDB | str | None = None, *, threshold: float = 0.05, exclude: Sequence[str] = ()
    ) -> None:
        if not 0.0 <= threshold < 1.0:
            raise InputError(f"The 'threshold' parameter of ImportancePruner must be in [0, 1); got {threshold!r}.")
        self.metadb = metadb
        self.threshold = threshold
        self.exclude = tuple(exclude)

    def prune(
        self, task: Task, space: ConfigurationSpace, *, metafeatures: Mapping[str, float] | None = None
    ) -> tuple[ConfigurationSpace, str]:
        from autometa.defaults._tunability import tunability

        db = open_metadb(self.metadb)
        families = list(space[FAMILY_KEY].choices)  # type: ignore[attr-defined]
        metric, kind = str(task.metric), str(task.problem_type)
        imp = mean_importance(db, metric=metric, problem_type=kind, families=families, exclude=self.exclude)
        learned = {}
        for row in tunability(db, metric=metric, problem_type=kind, families=families, exclude=self.exclude):
            learned.update({k: v for k, v in row.learned_default.items() if k != FAMILY_KEY})
        pruned, fixed = fix_unimportant(space, imp, learned, threshold=self.threshold, seed=task.seed)
        return pruned, (f"fixed {len(fixed)} hyperparameters of importance below {self.threshold:g}: "
                        f"{', '.join(fixed) or 'none'}")
