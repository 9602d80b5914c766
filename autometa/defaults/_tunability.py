"""Tunability and learned defaults from the task x configuration matrix (Probst, Boulesteix
& Bischl 2019): per family, how much tuning gains over the package default and over a
default learned across tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metrics import get_metric, same_kind
from autometa.spaces import config_hash, family_defaults, get_space
from autometa.warmstart import normalized_regret

__all__ = ["FamilyTunability", "tunability"]


@dataclass(frozen=True)
class FamilyTunability:
    """Tunability of one family on the stored tasks (metric in its natural units).

    Attributes
    ----------
    vs_package_default : float
        Mean over tasks of (best stored configuration - package default), sign-adjusted
        so that a gain is positive.
    vs_learned_default : float
        The same against the learned default (computed leave-one-task-out, so the
        default never saw the task it is scored on).
    learned_default : dict
        The configuration with the lowest mean normalized regret over all stored tasks.
    """

    family: str
    n_tasks: int
    n_configs: int
    vs_package_default: float
    vs_learned_default: float
    learned_default: dict[str, Any]

    def as_row(self) -> dict[str, Any]:
        return {"family": self.family, "tasks": self.n_tasks, "configurations": self.n_configs,
                "tunability_vs_package_default": round(self.vs_package_default, 4),
                "tunability_vs_learned_default": round(self.vs_learned_default, 4)}


def tunability(
    metadb: SQLMetaDB, *, metric: str, problem_type: str, families: list[str] | None = None, exclude: Sequence[str] = ()
) -> list[FamilyTunability]:
    """Tunability of each family (all by default) on the stored tasks of this problem kind,
    without the tasks in ``exclude``."""
    m = get_metric(metric)
    sign = 1.0 if m.greater_is_better else -1.0
    kind = same_kind(problem_type)
    pt = "binary" if kind[0] != "regression" else "regression"
    tasks = metadb.tasks()
    excluded = set(exclude)
    space = get_space(pt)
    out = []
    for fam_cfg in family_defaults(space):
        family = str(fam_cfg["family"])
        if families is not None and family not in families:
            continue
        mat = metadb.performance_matrix(m.name, family=family)
        if mat.empty:
            continue
        mat = mat.loc[[t for t in mat.index if t in tasks.index and tasks.loc[t, "problem_type"] in kind
                       and t not in excluded]]
        default_hash = config_hash(dict(fam_cfg))
        if default_hash not in mat.columns:
            continue
        # The configurations most tasks share (a fixed design), then the tasks that have nearly
        # all of them: a user's own runs add configurations scored on one task each, which
        # must not push every other task below the coverage bar.
        mat = mat.loc[:, (mat.notna().mean(axis=0) >= 0.5) | (mat.columns == default_hash)]
        mat = mat.loc[mat.notna().mean(axis=1) >= 0.9].dropna(subset=[default_hash])
        if len(mat) < 3:
            continue
        best = (mat * sign).max(axis=1) * sign
        gain_pkg = ((best - mat[default_hash]) * sign).mean()
        regret = normalized_regret(mat, greater_is_better=m.greater_is_better)
        learned = regret.mean().idxmin()
        # leave-one-task-out learned default: chosen without the task it is scored on
        loo = []
        totals = regret.sum()
        for t in mat.index:
            h = ((totals - regret.loc[t]) / (len(mat) - 1)).idxmin()
            loo.append((best[t] - mat.loc[t, h]) * sign if not np.isnan(mat.loc[t, h]) else np.nan)
        out.append(FamilyTunability(
            family=family, n_tasks=len(mat), n_configs=mat.shape[1],
            vs_package_default=float(gain_pkg), vs_learned_default=float(np.nanmean(loo)),
            learned_default=metadb.configurations(family)[learned],
        ))
    if not out:
        raise InputError(f"No family has enough stored {kind[0]} tasks with {m.name} scores to measure tunability.")
    return out


def tunability_table(rows: list[FamilyTunability]) -> pd.DataFrame:
    return pd.DataFrame([r.as_row() for r in rows]).set_index("family")
