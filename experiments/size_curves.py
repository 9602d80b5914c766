"""The meta-database across sizes (issue 18, point 3): every family's default on the large
real tables at growing row counts, like LCDB's anchors, stored as evaluations.

For each large task (``large_tasks.py``) one 25% holdout is fixed; the family defaults
(``DefaultsWarmStarter``, the first trials of every search) are fitted on nested
stratified samples of the other 75% of 1,000, 2,000, 4,000, ... rows and on all of them,
through ``autometa.evaluation.Evaluator(budget=...)`` (the code path of successive
halving), one thread, 90 s per fit, and validated on the whole holdout. Each evaluation
goes into a meta-database (``--metadb``, source ``own``, run key ``rows=<n>``) and to
``experiments/results/size_curves_raw.csv`` (resumable).

Reported: the family whose default is best at each size (does the winner change as data
grows?), and each family's fit-time growth with rows (the slope of log fit time against
log rows between the two largest sizes that finished), against the exponents autometa's
protocol policy uses (``autometa.evaluation.default_fit_row_exponent``).

    python experiments/size_curves.py [--metadb sqlite:///sizes.db] [--tasks a,b]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, plt_agg, results_path  # noqa: E402
from large_tasks import TASK_BY_NAME  # noqa: E402

import autometa  # noqa: E402
from autometa.evaluation import Evaluator, choose_protocol, default_fit_row_exponent, make_splits  # noqa: E402
from autometa.metadb import EvalRecord, SQLMetaDB  # noqa: E402
from autometa.spaces import get_space  # noqa: E402
from autometa.warmstart import DefaultsWarmStarter  # noqa: E402

NAME = "size_curves"
DEFAULT_TASKS = ("insteval_rating", "diamonds_price", "movies_rating", "mortgages_home", "fertility_morekids")
FIRST_ANCHOR = 1_000
TIME_LIMIT_S = 90.0


def anchors(n_train: int) -> list[int]:
    out, a = [], FIRST_ANCHOR
    while a < n_train:
        out.append(a)
        a *= 2
    return [*out, n_train]


def run_task(name: str, done: pd.DataFrame, db: SQLMetaDB | None) -> list[dict]:
    large = TASK_BY_NAME[name]
    task = autometa.Task(large.load(), label=large.label, problem_type=large.problem_type, seed=0)
    splits = make_splits(task, choose_protocol(task, protocol="holdout"))
    n_train = len(splits[0][0])
    space = get_space(str(task.problem_type), seed=0)
    configs = [s.config for s in DefaultsWarmStarter(second_defaults=False).suggest(task, space, 25)]  # one per family
    rows: list[dict] = []
    if db is not None:
        db.add_source("own", "own", description="runs of autometa tune")
        db.add_task(f"large/{name}", source="own", problem_type=str(task.problem_type), target=large.label,
                    n_rows=int(task.X.shape[0]), n_features=int(task.X.shape[1]),
                    n_classes=len(task.classes) if task.classes else None, fingerprint=task.fingerprint())
    slow: set[str] = set()  # a family that timed out is not tried on more rows
    with Evaluator(task, splits=splits, time_limit_s=TIME_LIMIT_S, keep_oof=False, n_jobs=1) as ev:
        for n in anchors(n_train):
            for cfg in configs:
                fam = str(cfg["family"])
                if len(done) and ((done["task"] == name) & (done["rows"] == n) & (done["family"] == fam)).any():
                    continue
                if fam in slow:
                    continue
                res = ev.evaluate(cfg, budget=min(1.0, n / n_train))
                row = {"task": name, "problem_type": str(task.problem_type), "metric": task.metric, "rows": n,
                       "n_train": n_train, "family": fam, "status": res.status,
                       "score": res.scores.get(task.metric) if res.ok else None, "fit_time_s": res.fit_time_s,
                       "duration_s": round(res.duration_s, 3)}
                print(json.dumps(row), flush=True)
                rows.append(row)
                raw = results_path(NAME, "_raw.csv")  # every row at once: an interrupted build loses one fit
                pd.DataFrame([row]).to_csv(raw, mode="a", header=not raw.exists(), index=False)
                if res.status == "timeout":
                    slow.add(fam)
                if db is not None:
                    db.add_evaluations(f"large/{name}", [EvalRecord(cfg, dict(res.scores), status=res.status,
                                                                    fit_time_s=res.fit_time_s, run_key=f"rows={n}")],
                                       source="own")
    return rows


def growth(d: pd.DataFrame) -> float:
    """Slope of log fit time against log rows between the two largest finished sizes."""
    ok = d[(d["status"] == "ok") & (d["fit_time_s"] > 0.05)].sort_values("rows")
    if len(ok) < 2:
        return math.nan
    a, b = ok.iloc[-2], ok.iloc[-1]
    return float(np.log(b["fit_time_s"] / a["fit_time_s"]) / np.log(b["rows"] / a["rows"]))


def report(df: pd.DataFrame) -> None:
    lines = [f"# {NAME}", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             f"Machine: {json.dumps(machine_info())}", "", "## The best family default at each size", "",
             "| task | metric | " + " | ".join(f"{a:,}" for a in anchors(10**9)[:8]) + " | all |",
             "|---|---|" + "---|" * 9]
    changes = 0
    for name, g in df.groupby("task", sort=False):
        greater = g["metric"].iloc[0] != "rmse"
        cells, winners = [], []
        for n, h in g.groupby("rows"):
            ok = h[h["status"] == "ok"]
            if ok.empty:
                continue
            best = ok.loc[ok["score"].idxmax() if greater else ok["score"].idxmin()]
            winners.append(best["family"])
            cells.append((n, f"{best['family'].replace('hist_gradient_boosting', 'hgb')} {best['score']:.3f}"))
        changes += int(len(set(winners)) > 1)
        by_n = dict(cells)
        row = [by_n.get(a, "") for a in anchors(10**9)[:8]] + [cells[-1][1] if cells else ""]
        lines.append(f"| {name} | {g['metric'].iloc[0]} | " + " | ".join(row) + " |")
    lines += ["", f"The winning default changes with the rows on {changes} of {df['task'].nunique()} tasks.", "",
              "## Fit-time growth with rows", "",
              "Exponent b of fit time ~ rows^b between the two largest sizes each family finished, per task, "
              "against the exponent the protocol policy assumes (for the first task's problem type; the policy's "
              "covers fit and validation). Two points on a shared machine: noisy. A kNN's fit only stores the "
              "rows; its cost is in prediction, which fit time leaves out.", "",
              "| family | policy | " + " | ".join(df["task"].unique()) + " | median |", "|---|---|" + "---|" * (df["task"].nunique() + 1)]
    for fam, g in df.groupby("family"):
        per = [growth(g[g["task"] == t]) for t in df["task"].unique()]
        pt = str(df.loc[df["family"] == fam, "problem_type"].iloc[0])
        lines.append(f"| {fam} | {default_fit_row_exponent(str(fam), pt):.2f} | "
                     + " | ".join("-" if math.isnan(v) else f"{v:.2f}" for v in per)
                     + f" | {np.nanmedian(per) if not all(math.isnan(v) for v in per) else math.nan:.2f} |")
    timeouts = df[df["status"] == "timeout"][["task", "family", "rows"]]
    if len(timeouts):
        lines += ["", f"Timed out ({TIME_LIMIT_S:.0f} s): " + ", ".join(
            f"{r.family} on {r.task} at {r.rows:,} rows" for r in timeouts.itertuples()) + "."]
    results_path(NAME, ".md").write_text("\n".join(lines) + "\n")
    plt = plt_agg()
    tasks = list(df["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), squeeze=False)
    for ax, name in zip(axes[0], tasks, strict=True):
        g = df[(df["task"] == name) & (df["status"] == "ok")]
        for fam, h in g.groupby("family"):
            ax.plot(h["rows"], h["score"], "o-", ms=3, label=fam.replace("hist_gradient_boosting", "hgb"))
        ax.set_xscale("log")
        ax.set_title(f"{name} ({g['metric'].iloc[0] if len(g) else ''})", fontsize=9)
        ax.set_xlabel("training rows")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(results_path(NAME, ".png"), dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    ap.add_argument("--metadb", default=None, help="a meta-database URL to record the evaluations in")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    raw = results_path(NAME, "_raw.csv")
    df = pd.read_csv(raw) if raw.exists() else pd.DataFrame()
    if not args.report_only:
        db = SQLMetaDB(args.metadb, shipped=False) if args.metadb else None
        for name in args.tasks.split(","):
            if run_task(name, df, db):
                df = pd.read_csv(raw)
    report(df)


if __name__ == "__main__":
    main()
