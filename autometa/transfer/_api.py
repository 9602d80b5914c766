"""Building transfer ensembles and pruned spaces for a task from the meta-database."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace

from autometa.exceptions import InputError
from autometa.spaces import FAMILY_KEY, get_space
from autometa.task import Task
from autometa.transfer._ensemble import TransferEnsemble, make_ensemble
from autometa.transfer._prune import bounding_box, fix_unimportant
from autometa.transfer._surrogates import _cache_dir, fit_surrogate_store

__all__ = ["transfer_for_task", "pruned_space_for_task", "PRUNE_METHODS"]

log = logging.getLogger(__name__)
PRUNE_METHODS = ("none", "box", "importance")


def _db(metadb: Any | None) -> Any:
    from autometa.warmstart._suggest import _store

    return _store(metadb)


def transfer_for_task(
    task: Task,
    method: str,
    *,
    metadb: Any | None = None,
    space: ConfigurationSpace | None = None,
    metafeatures: Mapping[str, float] | None = None,
    **kwargs: Any,
) -> TransferEnsemble:
    """The ``"rgpe"`` or ``"tstr"`` ensemble of the stored tasks' surrogates for ``task``
    (same metric and problem kind), over ``space`` (the task's full space by default).

    The stored surrogates are fitted on first use and cached on disk.
    """
    if method not in ("rgpe", "tstr"):
        raise InputError(f"--transfer must be rgpe, tstr or none; got {method!r}.")
    from autometa.metafeatures import extract

    db = _db(metadb)
    store = fit_surrogate_store(db, metric=str(task.metric), problem_type=str(task.problem_type))
    mf = dict(metafeatures) if metafeatures is not None else extract(task)
    space = space if space is not None else get_space(str(task.problem_type), seed=task.seed)
    return make_ensemble(method, store, space, seed=int(task.seed), metafeatures=mf, **kwargs)


def _importance(db: Any, metric: str, problem_type: str, families: list[str]) -> dict[str, float]:
    """Mean fANOVA share of every hyperparameter (``family:name``), cached per store."""
    from autometa.defaults import hyperparameter_importance

    info = db.info()
    key = json.dumps([metric, problem_type, sorted(families), info.get("evaluations", info)], sort_keys=True, default=str)
    import hashlib

    path = _cache_dir() / "importance" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    out: dict[str, float] = {}
    for fam in families:
        try:
            table = hyperparameter_importance(db, family=fam, metric=metric, problem_type=problem_type, max_tasks=30)
        except InputError:
            continue
        for name, value in table["mean"].items():
            out[f"{fam}:{name}"] = float(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, sort_keys=True))
    return out


def pruned_space_for_task(
    task: Task,
    how: str,
    *,
    metadb: Any | None = None,
    space: ConfigurationSpace | None = None,
    metafeatures: Mapping[str, float] | None = None,
    k: int = 10,
    threshold: float = 0.05,
) -> tuple[ConfigurationSpace, str]:
    """A pruned search space for ``task`` and a one-line description of what was pruned.

    ``how="box"``: the bounding box of the best stored configuration of each of the ``k``
    tasks nearest in meta-feature space, plus the package defaults of their families.
    ``how="importance"``: hyperparameters whose mean functional-ANOVA importance across
    stored tasks is below ``threshold`` are fixed to the learned default of their family.
    """
    if how not in PRUNE_METHODS:
        raise InputError(f"--prune must be one of {', '.join(PRUNE_METHODS)}; got {how!r}.")
    space = space if space is not None else get_space(str(task.problem_type), seed=task.seed)
    if how == "none":
        return space, "no pruning"
    from autometa.metafeatures import extract
    from autometa.warmstart import KNNWarmStarter

    db = _db(metadb)
    families = list(space[FAMILY_KEY].choices)  # type: ignore[attr-defined]
    if how == "box":
        from autometa._tune import default_initial_configs

        mf = dict(metafeatures) if metafeatures is not None else extract(task)
        knn = KNNWarmStarter(db, metric=str(task.metric), problem_type=str(task.problem_type))
        sugg = [s for s in knn.suggest(mf, n=k, per_neighbor=1) if s.config.get(FAMILY_KEY) in families]
        if not sugg:
            return space, "no pruning (no stored configuration of these families)"
        fams = {s.config[FAMILY_KEY] for s in sugg}
        defaults = [c for c in default_initial_configs(space, task) if c[FAMILY_KEY] in fams]
        box = bounding_box(space, [s.config for s in sugg] + defaults, seed=task.seed)
        kept = list(box[FAMILY_KEY].choices) if hasattr(box[FAMILY_KEY], "choices") else [box[FAMILY_KEY].value]  # type: ignore[attr-defined]
        return box, f"bounding box of the best configurations of {len(sugg)} nearest tasks: families {', '.join(kept)}"
    from autometa.defaults import tunability

    imp = _importance(db, str(task.metric), str(task.problem_type), families)
    learned = {}
    for row in tunability(db, metric=str(task.metric), problem_type=str(task.problem_type), families=families):
        learned.update({k2: v for k2, v in row.learned_default.items() if k2 != FAMILY_KEY})
    pruned, fixed = fix_unimportant(space, imp, learned, threshold=threshold, seed=task.seed)
    return pruned, f"fixed {len(fixed)} hyperparameters of importance below {threshold:g}: {', '.join(fixed) or 'none'}"
