"""Hyperparameter importance across stored tasks: functional ANOVA (Optuna's fANOVA
evaluator) of each task's fixed-design scores, averaged over tasks (van Rijn & Hutter 2018)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metrics import get_metric, same_kind
from autometa.optimizers import to_optuna_distribution
from autometa.spaces import get_space

__all__ = ["hyperparameter_importance"]


def hyperparameter_importance(
    metadb: SQLMetaDB,
    *,
    family: str,
    metric: str,
    problem_type: str,
    max_tasks: int | None = None,
    seed: int = 0,
    exclude: Sequence[str] = (),
) -> pd.DataFrame:
    """Share of the variance of ``metric`` explained by each hyperparameter of ``family``,
    per stored task, summarized over tasks (mean, std, number of tasks where it ranks first).

    Conditional hyperparameters (active in only some configurations) are left out, as
    fANOVA needs every trial to set every parameter.
    """
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    m = get_metric(metric)
    kind = same_kind(problem_type)
    space = get_space("binary" if kind[0] != "regression" else "regression", families=[family])
    dists = {hp.name: to_optuna_distribution(hp) for hp in space.values() if hp.name != "family"}
    tasks = metadb.tasks()
    mat = metadb.performance_matrix(m.name, family=family)
    if mat.empty:
        raise InputError(f"No stored {m.name} scores of family {family!r}.")
    drop = set(exclude)
    mat = mat.loc[[t for t in mat.index if t in tasks.index and tasks.loc[t, "problem_type"] in kind and t not in drop]]
    mat = mat.loc[mat.notna().sum(axis=1) >= 16]
    if max_tasks is not None:
        mat = mat.iloc[:max_tasks]
    configs = metadb.configurations(family)
    per_task = []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for task, row in mat.iterrows():
        row = row.dropna()
        if row.nunique() < 2:
            continue
        study = optuna.create_study(direction="maximize" if m.greater_is_better else "minimize")
        for h, value in row.items():
            params = {k: v for k, v in configs[h].items() if k in dists}
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions={k: dists[k] for k in params}, value=float(value)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
        per_task.append(pd.Series(imp, name=task))
    if not per_task:
        raise InputError(f"Not enough stored tasks with varied {m.name} scores for family {family!r}.")
    df = pd.DataFrame(per_task).fillna(0.0)
    df.columns = [c.split(":", 1)[1] for c in df.columns]
    top = df.idxmax(axis=1).value_counts()
    out = pd.DataFrame({"mean": df.mean(), "std": df.std(ddof=0), "top_on_tasks": top.reindex(df.columns).fillna(0).astype(int)})
    out["tasks"] = len(df)
    return out.sort_values("mean", ascending=False)
