"""How well does a cost-aware warm start predict what its trials will cost? Predicted trial
seconds (``autometa.warmstart.predicted_trial_seconds``: the shipped meta-dataset's fit
times, scaled to the table's training rows) against the measured trials of the same
configurations, on real tables LEFT OUT of the meta-database.

For each table: the portfolio's first ``--n`` suggestions (without the cost-aware
ordering), predicted, then evaluated by ``autometa.tune`` (the public API, real fits in a
worker process, the protocol a 60 s run chooses for the table, a per-trial limit of ``--limit`` seconds, no refit).
A trial that hits the limit is censored at it. The measurements are kept (with each
trial's configuration); the predictions are made again from the current code at each report. Reported per table: Spearman correlation
between predicted and measured seconds (the whole trial, as the budget pays it, and its
fits alone; the first trial also pays the worker's start), the median ratio measured / predicted, the share
within 3x, and how well "more than a quarter of a 60 s budget" is called (the decision
the starters make with the prediction).

    python experiments/cost_prediction.py [--n 12] [--limit 45]

Resumable (finished tables are kept in cost_prediction_raw.csv). Writes
experiments/results/cost_prediction.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import machine_line, results_path  # noqa: E402
from heldout_start import load_table  # noqa: E402
from vs_peers import HELDOUT  # noqa: E402

#: held-out tables of 635 to 27,765 rows, classification and regression
TABLES = ["Stat2Data/Hawks", "Ecdat/Catsup", "modeldata/ames", "ISLR/Default", "ggplot2/txhousing",
          "Ecdat/VietNamI"]
BUDGET = 60.0


def _task(name: str, budget: float = BUDGET):  # type: ignore[no-untyped-def]
    from autometa import Task

    package, item = name.split("/")
    _, _, _, label, drops = next(h for h in HELDOUT if h[1] == package and h[2] == item)
    df, problem = load_table(package, item, label, drops)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(df, label=label, seed=0, time_budget_s=budget, problem_type="regression" if problem == "regression" else None)


def run_table(name: str, n: int, limit: float) -> pd.DataFrame:
    """Measure: the portfolio's first ``n`` suggestions as the first trials of one ``tune``."""
    from autometa import tune
    from autometa.evaluation import choose_protocol
    from autometa.metadb import open_metadb
    from autometa.spaces import get_space
    from autometa.warmstart import PortfolioWarmStarter

    # the protocol a 60 s run chooses for this table (what the predictions assume), and a
    # budget long enough for every suggestion to run (to its per-trial limit)
    chosen = choose_protocol(_task(name), BUDGET).kind
    task = _task(name, budget=3600.0)
    db = open_metadb(None)
    configs = [s.config for s in PortfolioWarmStarter(db, cost_aware=False).suggest(
        task, get_space(str(task.problem_type)), n=n)]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = tune(task, optimizer="random", warm_start=None, initial_configs=configs, n_trials=len(configs),
                      per_trial_time_limit_s=limit, refit=False, out_dir=tmp,
                      protocol="cv" if chosen == "repeated-cv" else chosen)
    return pd.DataFrame([{
        "table": name, "rows": len(task.y), "protocol": chosen, "family": rec.family, "status": rec.status,
        "measured_s": round(min(rec.duration_s, limit), 3),
        "fit_s": round(rec.fit_time_s, 3) if rec.ok else round(min(rec.duration_s, limit), 3),
        "censored": rec.status == "timeout", "config": json.dumps(rec.config, sort_keys=True),
    } for rec in result.history])


def predict(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``predicted_s`` from the current code (the measurements do not depend on it)."""
    from autometa.metadb import open_metadb
    from autometa.warmstart import predicted_trial_seconds

    db = open_metadb(None)
    out = []
    for name, g in df.groupby("table", sort=False):
        pred = predicted_trial_seconds(db, _task(str(name)), [json.loads(c) for c in g["config"]])
        out.append(g.assign(predicted_s=np.round(pred, 3)))
    return pd.concat(out)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    from scipy.stats import spearmanr

    out = []
    for (table, rows), g in list(df.groupby(["table", "rows"], sort=False)) + [(("all", 0), df)]:
        g = g[np.isfinite(g["predicted_s"])]
        ratio = g["measured_s"] / g["predicted_s"].clip(lower=1e-3)
        costly_pred = g["predicted_s"] > BUDGET / 4
        costly_true = g["measured_s"] > BUDGET / 4
        out.append({
            "table": table, "rows": rows if table != "all" else "", "trials": len(g),
            "spearman": round(float(spearmanr(g["predicted_s"], g["measured_s"]).statistic), 2) if len(g) > 2 else np.nan,
            "spearman (fits only)": round(float(spearmanr(g["predicted_s"], g["fit_s"]).statistic), 2)
            if len(g) > 2 else np.nan,
            "median measured/predicted": round(float(ratio.median()), 2),
            "within 3x": f"{float(((ratio >= 1 / 3) & (ratio <= 3)).mean()):.0%}",
            "> 15 s: called / true / both": f"{int(costly_pred.sum())} / {int(costly_true.sum())} / "
                                          f"{int((costly_pred & costly_true).sum())}",
            "timeouts": int(g["censored"].sum()),
        })
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--limit", type=float, default=45.0)
    ap.add_argument("--tables", default=",".join(TABLES))
    args = ap.parse_args(argv)
    raw = results_path("cost_prediction_raw", ".csv")
    done = pd.read_csv(raw) if raw.is_file() else pd.DataFrame(columns=["table"])
    for name in args.tables.split(","):
        if name in set(done["table"]):
            continue
        print(name, flush=True)
        done = pd.concat([done, run_table(name, args.n, args.limit)], ignore_index=True)
        done.to_csv(raw, index=False)  # resumable: a finished table is not redone
    df = predict(done[done["table"].isin(args.tables.split(","))].reset_index(drop=True))
    summary = summarize(df)
    md = [
        "# Predicted against measured trial seconds (`experiments/cost_prediction.py`)", "",
        machine_line(), "",
        f"The portfolio's first {args.n} suggestions per held-out table, predicted from the shipped "
        f"fit times and then evaluated by `autometa.tune` (the protocol a 60 s run chooses, one worker, limit {args.limit:.0f} s "
        "per trial; a timeout counts as the limit). \"> 15 s\": trials predicted / measured to take more than "
        "a quarter of a 60 s budget, the ones a cost-aware start moves last.", "",
        summary.to_markdown(index=False), "",
        "Per trial:", "", df.drop(columns=["config"]).to_markdown(index=False), "",
    ]
    results_path("cost_prediction", ".md").write_text("\n".join(md))
    results_path("cost_prediction", ".json").write_text(json.dumps(
        {"summary": summary.to_dict(orient="records"), "trials": df.to_dict(orient="records")}, indent=1))
    print(summary.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
