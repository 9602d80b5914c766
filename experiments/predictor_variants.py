"""Could another meta-model design lift the zero-shot top-1 to the 90% target? Variants of
the learned performance predictor, leave-task-out, against the shipped one.

The shipped :class:`autometa.warmstart.PerformancePredictor` learns each stored
configuration's quantile among its task's configurations (1: the task's best) from the
task's meta-features and the configuration's encoding (a bag of 3 histogram-boosting
regressors). The variants change one thing each, on the same design matrix:

- ``quantile, larger model``: 400 iterations, 63 leaves, 20 rows per leaf;
- ``quantile^4``: the quantile to the 4th power, so that the top of each task weighs most;
- ``beats default``: a classifier of "this configuration scores better than the package
  default on this task", the quantity the target counts; the top-1 maximizes its probability;
- ``quantile + beats default``: the mean of the two rankings.

Folds, tasks and scores are those of experiments/predictor_zero_shot.py (5 folds of the
stored tasks of a kind, seeded; stored 3-fold CV scores). Only stored configurations are
ranked. Reported per variant: how often the top-1 is at least as good as the package default
and better than it, and the top-1's normalized regret (0: the task's best stored
configuration, 1: its worst; a failure is 1).

    python experiments/predictor_variants.py [--folds 5]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import complete_tasks, fmt_ci, fmt_share_ci, machine_line, shipped_db, write_report  # noqa: E402
from predictor_zero_shot import KINDS  # noqa: E402


def _quantiles(S: np.ndarray) -> np.ndarray:
    """Per task (row), each configuration's quantile (1: best); a failure is 0."""
    out = np.zeros_like(S)
    for i, row in enumerate(S):
        r = pd.Series(np.where(np.isfinite(row), row, np.nan))
        out[i] = ((r.rank() - 1.0) / max(r.notna().sum() - 1.0, 1.0)).fillna(0.0).to_numpy()
    return out


def _variants() -> dict[str, tuple[str, Callable[[], Any]]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    def reg(**kw: Any) -> Callable[[], Any]:
        base = dict(max_iter=150, learning_rate=0.15, max_leaf_nodes=31, min_samples_leaf=40, l2_regularization=1.0,
                    random_state=0)
        return lambda: HistGradientBoostingRegressor(**(base | kw))

    return {
        "quantile, larger model": ("q", reg(max_iter=400, learning_rate=0.1, max_leaf_nodes=63, min_samples_leaf=20)),
        "quantile^4": ("q4", reg(max_iter=300, learning_rate=0.1)),
        "beats default": ("beat", lambda: HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=40, l2_regularization=1.0,
            random_state=0)),
    }


def run_kind(kind: str, folds: int) -> tuple[pd.DataFrame, int, float]:
    from autometa.spaces import config_hash, fixed_design, get_space
    from autometa.transfer import encode_configs
    from autometa.warmstart import PerformancePredictor

    metric, higher, problem_types, ptype = KINDS[kind]
    db = shipped_db()
    names = complete_tasks(db, metric, problem_types)
    configs = db.configurations()
    matrix = db.performance_matrix(metric).loc[names]
    hashes = [h for h in matrix.columns if h in configs]
    stored = [configs[h] for h in hashes]
    S = matrix[hashes].to_numpy(dtype=float) * (1.0 if higher else -1.0)
    S = np.where(np.isfinite(S), S, -np.inf)  # larger is better; a failure is the worst
    di = hashes.index(config_hash(fixed_design(ptype, "hist_gradient_boosting", n=1)[0]))
    mf_all = db.metafeatures()
    mf = mf_all.loc[names]
    mf = mf.loc[:, mf.notna().mean() >= 0.5]
    M = mf.to_numpy(dtype=float)
    M = np.where(np.isfinite(M), M, np.nan)
    M = np.sign(M) * np.log1p(np.abs(M))
    C = encode_configs(get_space(ptype), stored)
    n_t, n_c = S.shape
    Q = _quantiles(S)
    targets = {"q": Q, "q4": Q**4, "beat": (S > S[:, [di]]).astype(float)}
    rng = np.random.default_rng(0)
    fold_of = {t: i % folds for i, t in enumerate(rng.permutation(names))}
    fold = np.asarray([fold_of[t] for t in names])
    preds: dict[str, np.ndarray] = {"shipped predictor": np.zeros((n_t, n_c))}
    variants = _variants()
    preds |= {v: np.zeros((n_t, n_c)) for v in variants}
    t0 = time.perf_counter()
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        shipped = PerformancePredictor(metric=metric, problem_type=ptype).fit(db, exclude=[names[i] for i in te])
        for i in te:
            preds["shipped predictor"][i] = shipped.predict(mf_all.loc[names[i]].to_dict(), stored)[0]
        X_tr = np.hstack([np.repeat(M[tr], n_c, axis=0), np.tile(C, (len(tr), 1))])
        X_te = np.hstack([np.repeat(M[te], n_c, axis=0), np.tile(C, (len(te), 1))])
        for v, (target, make) in variants.items():
            model = make().fit(X_tr, targets[target][tr].ravel())
            p = model.predict_proba(X_te)[:, 1] if target == "beat" else model.predict(X_te)
            preds[v][te] = p.reshape(len(te), n_c)
    seconds = time.perf_counter() - t0

    def ranks(P: np.ndarray) -> np.ndarray:
        return pd.DataFrame(P).rank(axis=1).to_numpy()

    preds["quantile + beats default"] = ranks(preds["shipped predictor"]) + ranks(preds["beats default"])
    finite = np.where(np.isfinite(S), S, np.nan)
    best, worst = np.nanmax(finite, axis=1), np.nanmin(finite, axis=1)
    rows = []
    for v, P in preds.items():
        top = S[np.arange(n_t), P.argmax(axis=1)]
        regret = np.where(np.isfinite(top), (best - top) / np.where(best > worst, best - worst, 1.0), 1.0)
        rows.append({"kind": kind, "variant": v, "ge": top >= S[:, di], "gt": top > S[:, di], "regret": regret})
    return pd.DataFrame(rows), n_t, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    lines = ["# predictor_variants", "", __doc__.split("\n\n")[0], "", machine_line(), ""]
    for kind in KINDS:
        df, n_t, seconds = run_kind(kind, args.folds)
        lines += [f"## {kind}: {n_t} held-out tasks, {args.folds} folds ({seconds:.0f} s)", "",
                  "| variant | top-1 >= default [95%] | top-1 > default | top-1 regret [95%] |", "|---|---|---|---|"]
        for r in df.itertuples():
            lines.append(f"| {r.variant} | {fmt_share_ci(r.ge)} | {np.mean(r.gt):.0%} | {fmt_ci(r.regret)} |")
        lines.append("")
    write_report("predictor_variants", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
