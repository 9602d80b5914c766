"""Warm starts in live mode: real fits through ``autometa.tune`` on a subset of the
meta-database's classification tasks, leave-one-task-out.

For each held-out task the meta-database parts leave that task out (``exclude=[task]``),
and every method tunes the task's real data (the same rows the meta-database used: at
most 1,000, stratified) with the task's own cross-validation, for ``--n-trials``
trials. The time of the warm start (meta-feature extraction, neighbour lookup, fANOVA
importance and learned defaults) is counted from the run's start, as the CLI counts it.

Methods (each one ``autometa.tune`` call; the meta-database parts leave the held-out
task out with ``exclude=[task]``; the arguments are transfer_benchmark.tune_kwargs's, so
live and table mode run the same methods)
-------
smac                cold SMAC3: SMAC's own initial design (warm_start="none")
optuna              cold Optuna TPE
smac+knn            SMAC after KNNWarmStarter(db, exclude=[task])
smac+portfolio      SMAC after PortfolioWarmStarter(db, exclude=[task])
smac+predictor      SMAC after PredictorWarmStarter (the learned performance predictor,
                    fitted without the held-out task's fold of tasks)
rgpe                SMAC with the RGPE ensemble of stored tasks' GPs as its model
pmf                 SMAC with transfer=PMFTransfer (probabilistic matrix factorization)
guarded             SMAC with transfer=GuardedTransfer (PMF guarded by the task's own GP)
and, by name: random, smac+defaults, optuna+knn, portfolio+guarded, smac+knn+importance.

Metrics: normalized regret of the best so far after 1, 5, 10, 25, 50 trials and over wall
time; the median number of trials to reach cold SMAC's final score (same task and seed);
the share of task-seeds worse than cold SMAC at 10 and 25 trials; normalized per task by the best and worst scores any live trial reached on it
(HPO-B style); the zero-shot top-1 suggestion (kNN, portfolio, predictor) against the
package default, both really fitted in the same run. The meta-features are extracted from the data inside ``tune`` (as for a
new task), not read from the store. Tasks: ``--n-tasks`` drawn with seed 0 among the
complete classification tasks whose stored fixed-design fits are cheaper than the median
(to keep the study to an hour on two cores).

Runs on Dask (``--scheduler ADDRESS`` or a LocalCluster); resumable from the raw CSV.

    python experiments/warmstart_live.py [--n-tasks 40] [--seeds 3] [--n-trials 50] [--workers 2]
                                         [--name warmstart_live50]

Jobs run seed-major and task by task (every method of one task-seed before the next), so
an interrupted study leaves whole task-seeds; the report compares only task-seeds on
which every listed method ran.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    METADATA,
    bootstrap_ci,
    classification_tasks,
    dask_client,
    plt_agg,
    results_path,
    shipped_db,
    stored_task,
)

ISSUE15 = ("smac", "optuna", "smac+knn", "smac+portfolio", "smac+predictor", "rgpe", "pmf", "guarded")
METHODS = (*ISSUE15, "random", "smac+defaults", "optuna+knn", "portfolio+guarded", "smac+knn+importance")
BUDGETS = (1, 5, 10, 25, 50)
ZERO_SHOT = ("smac+knn", "smac+portfolio", "smac+predictor")
SECONDS = (5, 15, 30, 60, 120)
METRIC = "balanced_accuracy"


def choose_tasks(db: Any, n: int) -> list[str]:
    complete = classification_tasks(db, METRIC)
    cost = {}
    for t in complete:
        f = METADATA / "evaluations" / f"{t.replace('/', '__')}.csv"
        cost[t] = float(pd.read_csv(f, usecols=["fit_time_s"]).fit_time_s.sum())
    cheap = sorted(t for t in complete if cost[t] <= np.median(list(cost.values())))
    return sorted(np.random.default_rng(0).permutation(cheap)[:n].tolist())  # a prefix: more tasks keep these


def tune_kwargs(method: str, db: Any, task: str) -> dict[str, Any]:
    """The ``tune`` arguments of a method for one held-out task (public parts only)."""
    from transfer_benchmark import tune_kwargs as table_kwargs

    from autometa.defaults import ImportancePruner
    from autometa.warmstart import KNNWarmStarter

    if method != "smac+knn+importance":
        return table_kwargs(method, db, task)
    if "exclude" not in inspect.signature(ImportancePruner).parameters:
        raise RuntimeError("ImportancePruner takes no exclude=: it would read the held-out task; method skipped")
    return {"optimizer": "smac", "warm_start": KNNWarmStarter(db, exclude=[task]),
            "prune": ImportancePruner(db, exclude=[task])}  # type: ignore[call-arg]


def run_one(method: str, name: str, seed: int, n_trials: int) -> dict:
    """One (method, held-out task, seed) live search: real fits through ``autometa.tune``."""
    warnings.simplefilter("ignore")
    import threadpoolctl

    from autometa import tune
    from autometa.spaces import config_key, default_initial_configs, get_space

    threadpoolctl.threadpool_limits(1)
    task = stored_task(name, seed, METRIC)
    db = shipped_db()
    kwargs = tune_kwargs(method, db, name)
    elapsed: list[float] = []
    t0 = time.perf_counter()
    result = tune(task, metadb=db, n_trials=n_trials, refit=False, start_time=t0, per_trial_time_limit_s=120,
                  callbacks=[lambda p: elapsed.append(p.elapsed_s)], **kwargs)
    setup = sum(float(part.get("seconds", 0.0)) for part in result.setup.values() if isinstance(part, dict))
    scores = [r.scores.get(METRIC, np.nan) if r.ok else np.nan for r in result.history]
    default = config_key(default_initial_configs(get_space(str(task.problem_type)), task)[0])
    keys = [config_key(r.config) for r in result.history]
    return {"method": method, "task": name, "seed": seed,
            "scores": json.dumps([None if np.isnan(s) else round(float(s), 6) for s in scores]),
            "elapsed": json.dumps([round(e, 3) for e in elapsed]), "setup_s": round(setup, 3),
            "first_is_default": keys[0] == default if keys else None,
            "default_score": (None if default not in keys or np.isnan(scores[keys.index(default)])
                              else float(scores[keys.index(default)])),
            "families": json.dumps([r.family for r in result.history])}


# -- report ------------------------------------------------------------------------------


def report(raw: pd.DataFrame, n_trials: int, name: str) -> str:
    plt = plt_agg()

    methods = [m for m in METHODS if m in set(raw.method)]
    pairs = raw.groupby(["task", "seed"]).method.nunique()
    full = set(pairs[pairs == len(methods)].index)
    raw = raw[[(t, s) in full for t, s in zip(raw.task, raw.seed, strict=True)]].copy()
    raw["scores_l"] = [np.array([np.nan if v is None else v for v in json.loads(s)], dtype=float) for s in raw.scores]
    lo = raw.groupby("task").scores_l.apply(lambda s: np.nanmin(np.concatenate(list(s))))
    hi = raw.groupby("task").scores_l.apply(lambda s: np.nanmax(np.concatenate(list(s))))

    def regret_curve(row: pd.Series) -> np.ndarray:
        s = np.nan_to_num(row.scores_l, nan=lo[row.task])  # a failed trial is the worst
        span = max(hi[row.task] - lo[row.task], 1e-12)
        r = (hi[row.task] - np.maximum.accumulate(s)) / span
        return np.concatenate([r, np.full(max(0, n_trials - len(r)), r[-1] if len(r) else 1.0)])[:n_trials]

    raw["regret_l"] = raw.apply(regret_curve, axis=1)
    curves = {m: pd.DataFrame(np.stack(raw[raw.method == m].regret_l.to_list()),
                              index=pd.MultiIndex.from_frame(raw[raw.method == m][["task", "seed"]]))
              .groupby(level=0).mean() for m in methods}
    n_tasks, n_seeds = len(next(iter(curves.values()))), raw.seed.nunique()
    budgets = [b for b in BUDGETS if b <= n_trials]
    table = pd.DataFrame({
        f"regret@{b}": {m: "{:.3f} [{:.3f}, {:.3f}]".format(*bootstrap_ci(curves[m][b - 1].to_numpy())) for m in methods}
        for b in budgets})
    ranks = pd.DataFrame({f"rank@{b}": pd.DataFrame({m: curves[m][b - 1] for m in methods}).rank(axis=1).mean()
                          for b in budgets}).round(2)
    time_rows = {}
    for m in methods:
        g = raw[raw.method == m]
        time_rows[m] = {}
        for s in SECONDS:
            vals = []
            for reg, el in zip(g.regret_l, g.elapsed, strict=True):
                el = np.array(json.loads(el))
                k = int(np.searchsorted(el, s, side="right"))
                vals.append(reg[min(k, len(reg)) - 1] if k > 0 else 1.0)
            time_rows[m][f"{s} s"] = round(float(np.mean(vals)), 3)
    setup = raw.groupby("method").setup_s.mean().reindex(methods).round(2)
    secs = raw.assign(total=[json.loads(e)[-1] if json.loads(e) else np.nan for e in raw.elapsed]) \
        .groupby("method").total.mean().reindex(methods).round(1)
    # Per task-seed against cold SMAC of the same task and seed (the issue's measures).
    per_seed = {m: pd.DataFrame(np.stack(raw[raw.method == m].regret_l.to_list()),
                                index=pd.MultiIndex.from_frame(raw[raw.method == m][["task", "seed"]])).sort_index()
                for m in methods}
    neg: dict[str, dict[str, str]] = {}
    multi: list[str] = []  # tasks with several complete seeds
    floor: dict[int, float] = {}  # cold SMAC worse than cold SMAC of another seed (chance's share)
    if "smac" in per_seed:
        base = per_seed["smac"]
        multi = [t for t, g in base.groupby(level=0) if len(g) > 1]
        for bud in (10, 25):
            if bud <= n_trials and multi:
                pairs_worse = []
                for t in multi:
                    v = base.loc[t][bud - 1].to_numpy()
                    pairs_worse += [float(v[j] > v[i] + 1e-12) for i in range(len(v)) for j in range(len(v)) if i != j]
                floor[bud] = float(np.mean(pairs_worse))
        target = base[n_trials - 1].to_numpy()
        for m in methods:
            mine = per_seed[m].loc[base.index]
            hit = mine.to_numpy() <= target[:, None] + 1e-12
            first_hit = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)
            boot = np.median(np.random.default_rng(0).choice(first_hit, size=(2000, len(first_hit))), axis=1)
            lo_b, hi_b = np.percentile(boot, [2.5, 97.5])

            def trials(v: float) -> str:
                return f"{v:.0f}" if np.isfinite(v) else f">{n_trials}"

            row = {f"median trials to cold SMAC@{n_trials}": f"{trials(float(np.median(first_hit)))} "
                                                              f"[{trials(lo_b)}, {trials(hi_b)}]",
                   f"reaches it in {n_trials}": f"{np.isfinite(first_hit).mean():.0%}"}
            for bud in (10, 25):
                if bud <= n_trials and m != "smac":
                    worse = (mine[bud - 1] > base[bud - 1] + 1e-12).to_numpy(dtype=float)
                    _, wlo, whi = bootstrap_ci(worse)
                    row[f"worse than cold SMAC @{bud}"] = f"{worse.mean():.0%} [{wlo:.0%}, {whi:.0%}]"
            if multi and m != "smac":  # against every cold SMAC seed of the task: chance's share is smaller
                for bud in (10, 25):
                    if bud <= n_trials:
                        mine_multi = per_seed[m][[t in multi for t in per_seed[m].index.get_level_values(0)]]
                        worst_cold = base[bud - 1].groupby(level=0).max()
                        w = np.array([v > worst_cold[t] + 1e-12 for (t, _), v in mine_multi[bud - 1].items()], dtype=float)
                        row[f"worse than every cold SMAC seed @{bud} ({len(multi)} tasks)"] = f"{w.mean():.0%}"
            neg[m] = row
    zero_shot = []
    for m in ZERO_SHOT:
        g = raw[(raw.method == m) & raw.first_is_default.eq(False) & raw.default_score.notna()]
        n_default_first = int(((raw.method == m) & raw.first_is_default.eq(True)).sum())
        if not len(g) and not n_default_first:
            continue
        first = np.array([s[0] for s in g.scores_l])
        d = g.default_score.to_numpy(dtype=float)
        zero_shot.append({"warm start": m, "task-seeds": len(g) + n_default_first,
                          "top-1 is the default": n_default_first,
                          "top-1 better": int((first > d + 1e-12).sum()), "equal": int((np.abs(first - d) <= 1e-12).sum()),
                          "worse": int((first < d - 1e-12).sum()),
                          "at least as good (default-first counted as equal)":
                              f"{((first >= d - 1e-12).sum() + n_default_first) / (len(g) + n_default_first):.0%}",
                          "mean top-1 - default": round(float(np.mean(first - d)), 4) if len(g) else np.nan})
    lines = [
        "# Warm starts, live mode (real fits, leave-one-task-out)",
        "",
        f"{n_tasks} classification tasks, {len(full)} task-seeds (seeds 0-{n_seeds - 1}; a task-seed counts once "
        f"every method ran on it), {n_trials} trials each through `autometa.tune` "
        "(real fits, the task's own cross-validation, balanced accuracy); the meta-database without the held-out "
        "task drives the warm starts. Normalized regret of the best so far (0 = best score any live trial reached on "
        "the task, 1 = worst), mean over tasks (seeds averaged) [95% bootstrap interval]. "
        "Methods: experiments/warmstart_live.py.",
        "",
        table.to_markdown(),
        "",
        "Average rank (1 = best):",
        "",
        ranks.to_markdown(),
        "",
        "Mean regret against wall time (warm-start setup included):",
        "",
        pd.DataFrame(time_rows).T.to_markdown(),
        "",
        pd.DataFrame({"setup s": setup, f"seconds for {n_trials} trials": secs}).to_markdown(),
        "",
        "Against cold SMAC on the same task and seed: trials each method needs to reach cold SMAC's final best "
        "(median over task-seeds [95% bootstrap interval]), and the share of task-seeds where it is worse than cold "
        "SMAC (negative transfer) [95% bootstrap interval]:",
        "",
        pd.DataFrame(neg).T.to_markdown() if neg else "(cold SMAC not run)",
        "",
        *([f"Chance's share, on the {len(multi)} tasks with several seeds: cold SMAC of one seed is worse than cold "
           "SMAC of another seed of the same task on "
           + " and ".join(f"{v:.0%} at {b} trials" for b, v in floor.items())
           + " of the ordered seed pairs. The last columns count a task-seed as negative transfer only when the "
           "method is worse than every cold SMAC seed of its task; a method no better than cold SMAC would be so "
           "by chance on about 1 in (seeds + 1) task-seeds (a third with two seeds, a quarter with three).", ""]
          if floor else []),
        "Zero-shot, real fits: the warm start's first configuration (top-1) against the package default "
        "(histogram gradient boosting, evaluated later in the same run, with the same folds):",
        "",
        pd.DataFrame(zero_shot).set_index("warm start").to_markdown() if zero_shot else "(no warm start ran)",
    ]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(1, n_trials + 1)
    for m in methods:
        c = curves[m].to_numpy()
        mean, se = c.mean(axis=0), c.std(axis=0, ddof=1) / np.sqrt(len(c)) * 1.96
        axes[0].plot(x, mean, label=m)
        axes[0].fill_between(x, np.maximum(mean - se, 1e-4), mean + se, alpha=0.12)
        axes[1].plot(SECONDS, [time_rows[m][f"{s} s"] for s in SECONDS], "-o", ms=3, label=m)
    for ax, xl in zip(axes, ("trials", "seconds (warm-start setup included)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel("mean normalized regret")
    axes[0].set_title(f"Live mode: {n_tasks} tasks x {n_seeds} seeds (95% CI)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(results_path(name, ".png"))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-tasks", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-trials", type=int, default=50)
    ap.add_argument("--methods", default=",".join(ISSUE15))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--name", default="warmstart_live50", help="Stem of the output files under experiments/results/.")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    raw_path = results_path(args.name, "_raw.csv")
    raw = pd.read_csv(raw_path) if raw_path.is_file() else pd.DataFrame()
    methods = args.methods.split(",")
    if set(methods) - set(METHODS):
        sys.exit(f"unknown methods {sorted(set(methods) - set(METHODS))}; choose from {', '.join(METHODS)}")
    if not args.report_only:
        from dask.distributed import as_completed

        db = shipped_db()
        names = choose_tasks(db, args.n_tasks)
        print("tasks:", ", ".join(names), flush=True)
        done = set(zip(raw.method, raw.task, raw.seed, strict=True)) if len(raw) else set()
        jobs = [(m, t, s) for s in range(args.seeds) for t in names for m in methods if (m, t, s) not in done]
        client = dask_client(args.workers, args.scheduler)
        futures = [client.submit(run_one, m, t, s, args.n_trials, pure=False) for m, t, s in jobs]
        t0 = time.perf_counter()
        for n, fut in enumerate(as_completed(futures), start=1):
            try:
                row = fut.result()
            except Exception as exc:  # noqa: BLE001 - one failed run must not lose the others
                print(f"run failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            pd.DataFrame([row]).to_csv(raw_path, mode="a", header=not raw_path.is_file(), index=False)
            print(f"{n}/{len(jobs)} {row['method']} {row['task']} seed {row['seed']}, {time.perf_counter() - t0:.0f} s",
                  flush=True)
        client.close()
        raw = pd.read_csv(raw_path)
    if raw.empty:
        sys.exit("no runs yet")
    text = report(raw, args.n_trials, args.name)
    results_path(args.name, ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
