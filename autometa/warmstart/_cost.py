"""What a trial of a stored configuration will cost on a new table, from the fit times the
meta-database stores, so that a warm start does not spend a short budget on a few slow
configurations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from autometa.evaluation import HOLDOUT_FRACTION, Protocol, choose_protocol, default_fit_row_exponent
from autometa.metadb import SHIPPED_SOURCE, SQLMetaDB
from autometa.metrics import is_classification
from autometa.spaces import FAMILY_KEY, config_hash
from autometa.task import Task
from autometa.warmstart._base import Suggestion

__all__ = ["defer_costly", "predicted_trial_seconds", "trial_shape"]

#: The shipped meta-dataset's protocol: 3-fold CV on at most 1,000 rows.
STORED_FOLDS = 3
STORED_MAX_ROWS = 1_000
#: A warm-start trial predicted to take more than this share of the budget goes last.
AFFORDABLE_SHARE = 0.25


def trial_shape(task: Task, protocol: Protocol | None = None) -> tuple[float, float, float, float]:
    """``(fits per trial, training rows per fit, features, classes)`` under the protocol
    the live tuner chooses for this table and budget (:func:`autometa.evaluation.choose_protocol`:
    repeated CV, CV, a 25% holdout, or successive halving, whose first rung is where a
    warm start's configurations run), or under ``protocol``."""
    p = protocol if protocol is not None else choose_protocol(task, task.time_budget_s)
    n = float(len(task.y))
    if p.kind in ("holdout", "successive-halving"):
        share = float(p.min_budget) if p.kind == "successive-halving" and p.min_budget else 1.0
        fits, n_train = 1.0, (1.0 - HOLDOUT_FRACTION) * n * share
    else:  # (repeated) k-fold: n_splits fits on (k - 1) / k of the rows
        fits, n_train = float(p.n_splits), n * (task.n_splits - 1) / task.n_splits
    classes = float(task.y.nunique()) if is_classification(str(task.problem_type)) else 1.0
    return fits, n_train, float(task.X.shape[1]), classes


def predicted_trial_seconds(metadb: SQLMetaDB, task: Task, configs: Sequence[dict[str, Any]],
                            *, times: pd.DataFrame | None = None) -> np.ndarray:
    """Predicted seconds of one trial of each configuration on ``task``'s table: from its
    own stored fit times, or its family's median stored configuration when it has none;
    NaN for a family with no stored times.

    Per stored task, one fit's stored time is scaled from that task's training rows to
    this table's with the family's growth exponent (the protocol policy's,
    :func:`autometa.evaluation.default_fit_row_exponent`: measured 5-fold CV of the family
    defaults on 5,000 and 20,000 rows, fit and validation; the shipped times stop at 1,000
    rows, where fixed costs hide the growth, so a slope fitted on them would be too flat); the
    prediction is the median over stored tasks of the same kind (classification or
    regression), times the fits of one trial.
    Only the shipped meta-dataset's times are read (:data:`SHIPPED_SOURCE`): their protocol
    (:data:`STORED_FOLDS`-fold CV on at most :data:`STORED_MAX_ROWS` rows) is known, while a
    user's recorded runs and imported OpenML runs were timed under other protocols and on
    other machines. ``times``: that :meth:`SQLMetaDB.fit_time_matrix`, when already read.
    """
    times = metadb.fit_time_matrix(source=SHIPPED_SOURCE) if times is None else times
    out = np.full(len(configs), math.nan)
    tasks = metadb.tasks()
    regression = str(task.problem_type) == "regression"
    times = times[(tasks["problem_type"].reindex(times.index) == "regression").to_numpy() == regression]
    if times.empty:
        return out
    stored_rows = tasks["n_rows"].reindex(times.index).astype(float).clip(upper=STORED_MAX_ROWS)
    stored_train = (stored_rows * (STORED_FOLDS - 1) / STORED_FOLDS).to_numpy()
    # a configuration never stored (a family default weighted for this metric, a fresh
    # sample): its family's median stored configuration, per task
    family_of = {h: str(c.get(FAMILY_KEY)) for h, c in metadb.configurations().items() if h in times.columns}
    by_family = {fam: times[[h for h, f in family_of.items() if f == fam]].median(axis=1).to_numpy()
                 for fam in set(family_of.values())}
    fits, n_train, _, _ = trial_shape(task)
    for i, config in enumerate(configs):
        h, fam = config_hash(config), str(config.get(FAMILY_KEY))
        stored = times[h].to_numpy() if h in times.columns else None
        if stored is None or not np.isfinite(stored).any():
            stored = by_family.get(fam)
        if stored is None:
            continue
        per_fit = stored / STORED_FOLDS
        ok = np.isfinite(per_fit) & np.isfinite(stored_train) & (stored_train > 0)
        if not ok.any():
            continue
        exponent = default_fit_row_exponent(fam, str(task.problem_type))
        scaled = per_fit[ok] * (n_train / stored_train[ok]) ** exponent
        out[i] = fits * float(np.median(scaled))
    return out


def defer_costly(found: list[Suggestion], task: Task, metadb: SQLMetaDB, *, share: float = AFFORDABLE_SHARE,
                 times: pd.DataFrame | None = None) -> list[Suggestion]:
    """``found`` with the suggestions predicted to take more than ``share`` of
    ``task.time_budget_s`` moved to the end (both parts keep their order); each records
    its prediction in ``extra["predicted_seconds"]`` and a moved one says so in its
    explanation. Unchanged without a finite budget."""
    budget = float(task.time_budget_s) if task.time_budget_s else math.inf
    if not found or not math.isfinite(budget):
        return found
    seconds = predicted_trial_seconds(metadb, task, [s.config for s in found], times=times)
    keep, late = [], []
    for s, secs in zip(found, seconds, strict=True):
        if not math.isfinite(secs):
            keep.append(s)
        elif secs > share * budget:
            late.append(replace(s, extra={**s.extra, "predicted_seconds": float(secs), "deferred": True}, explanation=(
                f"{s.explanation}; moved last: a trial is predicted to take {secs:.0f} s on this table, more than "
                f"{share:.0%} of the {budget:.0f} s budget")))
        else:
            keep.append(replace(s, extra={**s.extra, "predicted_seconds": float(secs)}))
    return keep + late
