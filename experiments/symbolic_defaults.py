"""Symbolic defaults (formulas of meta-features) against constant learned defaults and the
package defaults: fitted on the surrogates of the stored classification tasks, then
checked with real fits on held-out tasks.

1. ``--holdout`` classification tasks (seed 0, among the complete ones whose stored fits
   are cheaper than the median) are set aside. :func:`autometa.defaults.symbolic_defaults`
   fits every numeric hyperparameter's default on the other tasks' surrogates and scores
   it leave-one-task-out there (the table's "loss" columns: rescaled predicted loss,
   0 = the task's best stored configuration of the family, 1 = its worst).
2. For every hyperparameter whose formula beats the best constant there, the held-out
   tasks are really fitted three times (the meta-database's protocol: 3-fold CV on at
   most 1,000 rows, balanced accuracy): the family's learned default with that
   hyperparameter at its package default, at the best constant, and at the formula.

    python experiments/symbolic_defaults.py [--holdout 20]

Writes experiments/results/symbolic_defaults.{md,csv}.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
METRIC = "balanced_accuracy"


@functools.cache
def _prepared(name: str) -> tuple:
    """The held-out task as the meta-database saw it (rows, folds) and its meta-features,
    loaded once per task however many hyperparameters are checked on it."""
    from build_metadb import N_FOLDS, SEED, _subsample
    from sklearn.model_selection import StratifiedKFold
    from suite import load_suite, load_task_frame

    from autometa import Task
    from autometa.metafeatures import extract

    suite = load_suite().set_index("task_id")
    df, target, problem_type = load_task_frame({"task_id": name, **suite.loc[name].to_dict()})
    cap = int(json.loads((ROOT / "metadata" / "MANIFEST.json").read_text()).get("row_cap", 1000))
    df = _subsample(df, target, problem_type, cap)
    task = Task(df, label=target, problem_type=problem_type, seed=SEED, drop_id_columns=False, metric=METRIC)
    k = min(N_FOLDS, task.n_splits)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED)
    splits = list(cv.split(np.arange(len(task.y)), task.y.astype(str)))
    return task, splits, extract(task)


def _evaluate(name: str, configs: list[dict]) -> list[float]:
    from autometa.evaluation import Evaluator

    task, splits, mf = _prepared(name)
    out = []
    with Evaluator(task, time_limit_s=120, splits=splits, n_jobs=1) as ev:
        for c in configs:
            cfg = {k2: (v(mf) if callable(v) else v) for k2, v in c.items()}
            res = ev.evaluate(cfg)
            out.append(res.scores.get(METRIC, np.nan) if res.status == "ok" else np.nan)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--holdout", type=int, default=20)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from warmstart_live import MetaDBWithout, _open_db, choose_tasks

    from autometa.defaults import symbolic_defaults, symbolic_table, tunability
    from autometa.transfer import fit_surrogate_store

    db = _open_db()
    held = choose_tasks(db, args.holdout)
    view = MetaDBWithout(db, held)  # nothing below sees the held-out tasks' evaluations
    store = fit_surrogate_store(db, metric=METRIC, problem_type="binary")
    rows = symbolic_defaults(view, metric=METRIC, problem_type="binary", store=store, exclude=held)
    table = symbolic_table(rows)
    learned = {r.family: r.learned_default for r in tunability(view, metric=METRIC, problem_type="binary")}
    checks = []
    for r in rows:
        if not r.beats_constant:
            continue
        key = f"{r.family}:{r.hyperparameter}"
        base = dict(learned[r.family])
        variants = [{**base, key: r.package_default}, {**base, key: r.constant},
                    {**base, key: (lambda mf, r=r: r.value(mf))}]
        for variant in variants:
            if r.integer:
                for v in variant:
                    if v == key and not callable(variant[v]):
                        variant[v] = int(round(variant[v]))
        for t in held:
            pkg, const, formula = _evaluate(t, variants)
            checks.append({"hyperparameter": key, "task": t, "package": pkg, "constant": const, "formula": formula})
            print(key, t, pkg, const, formula, flush=True)
    checks = pd.DataFrame(checks)
    checks.to_csv(RESULTS / "symbolic_defaults.csv", index=False)
    summary = []
    for key, g in checks.groupby("hyperparameter", sort=False):
        d = g.formula - g.constant
        summary.append({"hyperparameter": key, "tasks": len(g), "package": round(g.package.mean(), 4),
                        "constant": round(g.constant.mean(), 4), "formula": round(g.formula.mean(), 4),
                        "formula - constant": round(d.mean(), 4),
                        "formula wins / ties / losses": f"{(d > 1e-9).sum()} / {(d.abs() <= 1e-9).sum()} / {(d < -1e-9).sum()}"})
    n_fit = rows[0].n_tasks
    lines = [
        "# Symbolic defaults (formulas of meta-features) vs constant learned defaults",
        "",
        f"Fitted on the surrogates of {n_fit} stored classification tasks; {len(held)} tasks held out for real fits. "
        "Each formula is `c * NumberOfFeatures ** b` or `c * NumberOfInstances ** b` (b in +-0.25..1), the rest of the "
        "configuration at the family's learned default. Loss columns: rescaled predicted loss (0 = the task's best "
        "stored configuration of the family, 1 = its worst), mean over tasks, the formula and the constant chosen "
        "leave-one-task-out.",
        "",
        table.to_markdown(index=False),
        "",
        f"Formulas beat the best constant on {int(table['formula beats constant'].sum())} of {len(table)} "
        "hyperparameters (by the surrogates).",
        "",
        f"Real fits on the {len(held)} held-out tasks (3-fold CV balanced accuracy, mean) for those hyperparameters:",
        "",
        pd.DataFrame(summary).to_markdown(index=False) if summary else "(none)",
        "",
    ]
    (RESULTS / "symbolic_defaults.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
