"""Can the zero-shot top-1 reach "at least as good as the package default on 90% of
held-out tasks" by falling back to the default when the predictor is unsure? (issue 15)

Leave-task-out on the folds of experiments/predictor_zero_shot.py (5 folds of the stored
tasks of a kind, the predictor of a held-out task fitted on the other 4): the predictor's
top-1 stored configuration is suggested only when its predicted normalized score beats the
package default's by more than a margin (or, second rule, by more than ``z`` times the
spread of the two predictions over the predictor's bag); otherwise the package default
itself is suggested, which ties with it. Reported per rule: the share of tasks on which the
top-1 is kept, the share on which the suggestion is at least as good as the default
(stored scores), and the suggestion's normalized regret (0: the task's best stored
configuration, 1: its worst). Margins are chosen on the held-out tasks themselves here, so
the best row is optimistic.

    python experiments/predictor_guard.py
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import complete_tasks, fmt_ci, fmt_share_ci, machine_line, shipped_db, write_report  # noqa: E402
from predictor_zero_shot import KINDS  # noqa: E402

MARGINS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3)
ZS = (0.0, 1.0, 2.0, 3.0, 4.0)


def run_kind(kind: str, folds: int = 5) -> pd.DataFrame:
    from autometa.spaces import config_hash, fixed_design
    from autometa.warmstart import PerformancePredictor, normalized_regret

    metric, higher, problem_types, ptype = KINDS[kind]
    db = shipped_db()
    names = complete_tasks(db, metric, problem_types)
    matrix = db.performance_matrix(metric).loc[names]
    regret = normalized_regret(matrix, greater_is_better=higher)
    configs = db.configurations()
    hashes = [h for h in matrix.columns if h in configs]
    stored = [configs[h] for h in hashes]
    mf = db.metafeatures()
    sign = 1.0 if higher else -1.0
    default = config_hash(fixed_design(ptype, "hist_gradient_boosting", n=1)[0])
    di = hashes.index(default)
    rng = np.random.default_rng(0)
    fold_of = {t: i % folds for i, t in enumerate(rng.permutation(names))}
    rows = []
    for f in range(folds):
        held = [t for t in names if fold_of[t] == f]
        pred = PerformancePredictor(metric=metric, problem_type=ptype).fit(db, exclude=held)
        for t in held:
            mean, std = pred.predict(mf.loc[t].to_dict(), stored)
            i = int(np.argmax(mean))
            true = sign * matrix.loc[t, hashes].to_numpy(dtype=float)
            true = np.where(np.isfinite(true), true, -np.inf)  # a failure is the worst
            rows.append({"task": t, "margin": mean[i] - mean[di],
                         "z": (mean[i] - mean[di]) / max(float(np.hypot(std[i], std[di])), 1e-9),
                         "top_ge": bool(true[i] >= true[di]), "top_regret": float(regret.loc[t, hashes[i]]),
                         "default_regret": float(regret.loc[t, default])})
    return pd.DataFrame(rows)


def main() -> int:
    warnings.simplefilter("ignore")
    lines = ["# predictor_guard", "", __doc__.split("\n\n")[0], "", machine_line(), ""]
    for kind in KINDS:
        df = run_kind(kind)
        lines += [f"## {kind}: {len(df)} held-out tasks", "",
                  "| rule | top-1 kept | >= default [95%] | regret [95%] |", "|---|---|---|---|"]
        for col, grid in (("margin", MARGINS), ("z", ZS)):
            for th in grid:
                keep = (df[col] > th).to_numpy()
                ge = np.where(keep, df.top_ge, True)
                rg = np.where(keep, df.top_regret, df.default_regret)
                lines.append(f"| {col} > {th:g} | {keep.mean():.0%} | {fmt_share_ci(ge)} | {fmt_ci(rg)} |")
        lines += [f"| the package default always | 0% | 100% | {np.mean(df.default_regret):.3f} |", ""]
    write_report("predictor_guard", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
