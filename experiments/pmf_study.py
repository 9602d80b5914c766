"""How well the PMF transfer surrogate predicts a held-out task, leave-one-task-out on the
shipped meta-dataset, and how the negative-transfer guard's weight moves.

For each held-out classification task: the PMF of the other tasks' stored scores
(:func:`autometa.transfer.fit_pmf_matrix`, the factorization ``PMFTransfer`` fits), told
``n`` of the held-out task's stored evaluations (seeded random order), predicts the
untold ones; reported is the Spearman correlation of the predictions with the stored
losses and the regret of the configuration it ranks first among the untold (normalized
per task: 0 = the task's best stored configuration, 1 = its worst), against the stored
configurations' mean rank over the other tasks (what a portfolio's order knows). The
guard (:class:`autometa.transfer.GuardedEnsemble`) is told the same trials one by one,
on the task as stored and with its ranking inverted (losses negated): the meta-model's
weight after ``n`` trials.

    python experiments/pmf_study.py [--max-tasks 40] [--rank 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fmt_ci, machine_line, plt_agg, results_path, shipped_db  # noqa: E402
from transfer_benchmark import METRIC, choose_tasks  # noqa: E402

TOLD = (0, 5, 10, 25, 50)


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr

    from autometa.spaces import encode_configs, get_space
    from autometa.transfer import META, PMF, GuardedEnsemble, fit_pmf_matrix

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-tasks", type=int, default=40)
    ap.add_argument("--rank", type=int, default=5)
    ap.add_argument("--name", default="pmf_study")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    db = shipped_db()
    names = choose_tasks(db, None)
    losses = 1.0 - db.performance_matrix(METRIC).loc[names]
    confs = db.configurations()
    space = get_space("binary")
    rows = []
    t0 = time.perf_counter()
    for task in names[: args.max_tasks]:
        store = fit_pmf_matrix(losses.drop(index=task), confs, rank=args.rank)
        row = losses.loc[task].dropna()
        row = row[[h in confs for h in row.index]]
        X = encode_configs(space, [confs[h] for h in row.index])
        y = row.to_numpy(dtype=float)
        span = max(float(y.max() - y.min()), 1e-12)
        mean_rank = losses.drop(index=task)[row.index].rank(axis=1).mean().to_numpy()
        perm = np.random.default_rng(0).permutation(len(y))
        rec: dict[str, float | str] = {"task": task}
        for n in TOLD:
            rest = perm[n:]
            mu, _ = PMF(store, space, seed=0).fit(X[perm[:n]], y[perm[:n]]).predict(X[rest])
            rec[f"rho@{n}"] = float(spearmanr(mu, y[rest]).statistic)
            rec[f"top1_regret@{n}"] = float((y[rest][int(np.argmin(mu))] - y.min()) / span)
        rec["rho_mean_rank"] = float(spearmanr(mean_rank[perm[TOLD[-1]:]], y[perm[TOLD[-1]:]]).statistic)
        rec["top1_regret_mean_rank"] = float((y[int(np.argmin(mean_rank))] - y.min()) / span)
        for label, yy in (("stored", y), ("inverted", -y)):
            guard = GuardedEnsemble(PMF(store, space, seed=0), seed=0)
            for n in (5, 10, 25):  # every fit conditions on all the trials told so far
                rec[f"guard_{label}@{n}"] = guard.fit(X[perm[:n]], yy[perm[:n]]).weights[META]
        rows.append(rec)
        print(f"{len(rows)}/{args.max_tasks} {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows).set_index("task")
    df.to_csv(results_path(args.name, ".csv"))

    table = pd.DataFrame({
        "Spearman with the stored losses": {f"PMF told {n}": fmt_ci(df[f"rho@{n}"]) for n in TOLD}
        | {"mean rank over the other tasks": fmt_ci(df["rho_mean_rank"])},
        "regret of its top-1 (untold)": {f"PMF told {n}": fmt_ci(df[f"top1_regret@{n}"]) for n in TOLD}
        | {"mean rank over the other tasks": fmt_ci(df["top1_regret_mean_rank"])},
    })
    guard = pd.DataFrame({label: {f"after {n} trials": fmt_ci(df[f"guard_{label}@{n}"], 2) for n in (5, 10, 25)}
                          for label in ("stored", "inverted")})
    zero = {label: {f"after {n} trials": f"{(df[f'guard_{label}@{n}'] == 0).mean():.0%}" for n in (5, 10, 25)}
            for label in ("stored", "inverted")}
    text = "\n".join([
        "# PMF transfer surrogate: held-out predictions and the guard's weight", "",
        f"{len(df)} held-out classification tasks of the shipped meta-dataset (the first of "
        "transfer_benchmark.py's seeded order), leave-one-task-out; rank "
        f"{args.rank}. PMF fitted on the other tasks' stored balanced accuracy (256 configurations each), told n of "
        "the held-out task's stored evaluations (a seeded random order), predicting the untold ones; the baseline "
        "ranks configurations by their mean rank over the other tasks. Mean over tasks [95% bootstrap interval]. "
        "Script: experiments/pmf_study.py.", "",
        table.to_markdown(), "",
        "The guard's meta-model weight (GuardedEnsemble: PMF against the task's own GP, leave-one-out ranking) "
        "told the same trials, on the task as stored and with its ranking inverted (losses negated), mean over "
        "tasks [95% bootstrap interval]:", "",
        guard.to_markdown(), "",
        "Share of tasks where the meta-model's weight is exactly zero:", "",
        pd.DataFrame(zero).to_markdown(), "",
        machine_line(),
    ]) + "\n"
    results_path(args.name, ".md").write_text(text)
    plt = plt_agg()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(TOLD, [df[f"rho@{n}"].mean() for n in TOLD],
                yerr=[1.96 * df[f"rho@{n}"].std() / np.sqrt(len(df)) for n in TOLD], marker="o", label="PMF")
    ax.axhline(df["rho_mean_rank"].mean(), ls="--", color="gray", label="mean rank over the other tasks")
    ax.set_xlabel("trials told")
    ax.set_ylabel("Spearman with the held-out task's stored losses")
    ax.set_title(f"PMF, leave-one-task-out, {len(df)} tasks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(results_path(args.name, ".png"))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
