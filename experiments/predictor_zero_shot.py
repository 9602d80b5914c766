"""Zero-shot, leave-task-out: the learned performance predictor against the kNN, the
portfolio and the package default, on the shipped meta-dataset's classification or
regression tasks.

The tasks are split into 5 folds (seeded); the predictor of a held-out task is fitted on
the other 4 folds only (so it never saw the task), the kNN and the portfolio leave the
task out. For each held-out task and method, the top-1 stored configuration's stored
score (3-fold CV balanced accuracy, or RMSE for regression) is compared with the package default's
(histogram gradient boosting with its defaults); we also report the normalized regret of
the top-1 and of the best of the top 5, and the Spearman rank correlation between the
predictor's scores and the stored ones (how well it ranks a new task's configurations).

Only stored configurations are ranked here, because only they have scores to compare;
the warm starter also ranks fresh samples of the space (measured live, with real fits).

    python experiments/predictor_zero_shot.py [--kind classification|regression] [--folds 5] [--name NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import complete_tasks, fmt_ci, machine_line, plt_agg, results_path, shipped_db  # noqa: E402

#: per kind: the metric, whether higher is better, the stored problem types, the problem type
#: the predictor and the starters are built for
KINDS = {
    "classification": ("balanced_accuracy", True, ("binary", "multiclass"), "binary"),
    "regression": ("rmse", False, ("regression",), "regression"),
}


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr

    from autometa.spaces import config_hash, fixed_design
    from autometa.warmstart import (
        GreedyPortfolio,
        MetaFeatureIndex,
        PerformancePredictor,
        fit_similarity_weights,
        normalized_regret,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=sorted(KINDS), default="classification")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--name", default=None, help="default: predictor_zero_shot, or predictor_zero_shot_regression")
    ap.add_argument("--n-models", type=int, default=3)
    args = ap.parse_args(argv)
    metric, higher, problem_types, ptype = KINDS[args.kind]
    name = args.name or ("predictor_zero_shot" if args.kind == "classification" else f"predictor_zero_shot_{args.kind}")
    warnings.simplefilter("ignore")
    db = shipped_db()
    names = complete_tasks(db, metric, problem_types)
    matrix = db.performance_matrix(metric).loc[names]
    regret = normalized_regret(matrix, greater_is_better=higher)
    sign = 1.0 if higher else -1.0  # better = larger sign * score
    configs = db.configurations()
    hashes = [h for h in matrix.columns if h in configs]
    stored = [configs[h] for h in hashes]
    mf = db.metafeatures()
    default = config_hash(fixed_design(ptype, "hist_gradient_boosting", n=1)[0])  # the package default
    rng = np.random.default_rng(0)
    fold_of = {t: i % args.folds for i, t in enumerate(rng.permutation(names))}
    rows = []
    t_fit = []
    for fold in range(args.folds):
        held = [t for t in names if fold_of[t] == fold]
        t0 = time.perf_counter()
        pred = PerformancePredictor(metric=metric, problem_type=ptype, n_models=args.n_models).fit(db, exclude=held)
        t_fit.append(time.perf_counter() - t0)
        weights = fit_similarity_weights(db, metric=metric, problem_type=ptype, exclude=held)
        for t in held:
            m = mf.loc[t].to_dict()
            mean, _ = pred.predict(m, stored)
            order = np.argsort(-mean, kind="stable")
            top = [hashes[i] for i in order[:5]]
            knn = MetaFeatureIndex(db, metric=metric, problem_type=ptype, exclude=[t]).best_of_neighbors(m, n=5)
            knn_w = MetaFeatureIndex(db, metric=metric, problem_type=ptype, exclude=[t],
                                     weights=weights).best_of_neighbors(m, n=5)
            pf = GreedyPortfolio(db, metric=metric, problem_type=ptype, size=5, exclude=[t])
            true = matrix.loc[t, hashes].to_numpy(dtype=float)
            ok = np.isfinite(true)
            rho = float(spearmanr(mean[ok], sign * true[ok]).statistic) if ok.sum() > 2 else np.nan
            s_def = matrix.loc[t, default]
            row = {"task": t, "fold": fold, "spearman": rho, "default_score": s_def}
            for method, picks in (("predictor", top), ("knn", [config_hash(s.config) for s in knn]),
                                  ("knn-learned", [config_hash(s.config) for s in knn_w]),
                                  ("portfolio", list(pf.hashes))):
                s1 = matrix.loc[t, picks[0]] if picks[0] in matrix.columns else np.nan
                row[f"{method}:top1_score"] = s1
                worst = -1e18  # a missing score counts as the worst
                row[f"{method}:top1_vs_default"] = float(np.sign(np.nan_to_num(sign * s1, nan=worst)
                                                                 - np.nan_to_num(sign * s_def, nan=worst)))
                row[f"{method}:top1_regret"] = float(regret.loc[t, picks[0]]) if picks[0] in regret.columns else 1.0
                row[f"{method}:top5_regret"] = float(min(regret.loc[t, h] for h in picks[:5] if h in regret.columns))
            rows.append(row)
    df = pd.DataFrame(rows)
    df.to_csv(results_path(name, ".csv"), index=False)
    lines = [f"# {name}", "", __doc__.split("\n\n")[0], "",
             f"{len(names)} held-out {args.kind} tasks ({metric}), {args.folds} folds; predictor fit "
             f"{np.mean(t_fit):.1f} s per fold ({args.n_models} models). " + machine_line(), "",
             "| method | top-1 >= default | top-1 > default | top-1 regret | best-of-5 regret |", "|---|---|---|---|---|"]
    for method in ("predictor", "knn", "knn-learned", "portfolio"):
        v = df[f"{method}:top1_vs_default"]
        lines.append(f"| {method} | {(v >= 0).mean():.0%} | {(v > 0).mean():.0%} | {fmt_ci(df[f'{method}:top1_regret'])} | "
                     f"{fmt_ci(df[f'{method}:top5_regret'])} |")
    reg_def = [float(regret.loc[t, default]) for t in df.task]
    lines += [f"| package default | - | - | {fmt_ci(reg_def)} | - |", "",
              f"Spearman rank correlation of the predictor's scores with the stored ones, per held-out task: "
              f"{fmt_ci(df['spearman'])} (median {df['spearman'].median():.3f}).", ""]
    results_path(name, ".md").write_text("\n".join(lines) + "\n")
    plt = plt_agg()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for method in ("predictor", "knn", "knn-learned", "portfolio"):
        ax.hist(df[f"{method}:top1_regret"], bins=20, range=(0, 1), alpha=0.5, label=method)
    ax.hist(reg_def, bins=20, range=(0, 1), alpha=0.4, label="package default", histtype="step", color="k")
    ax.set_xlabel("normalized regret of the top-1 stored configuration (held-out task)")
    ax.set_ylabel("tasks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(results_path(name, ".png"))
    print("\n".join(lines))
    print(json.dumps({"fit_s": t_fit}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
