"""autometa tune (CLI, fixed budget) vs scikit-learn HistGradientBoosting defaults.

For each of 10 real classification datasets: a stratified 70/30 split; `autometa tune`
runs as a user would run it (a subprocess on the training CSV, wall clock measured from
outside) and its saved model predicts the 30%; HistGradientBoostingClassifier with
default settings (native categorical support) is fit on the same 70% and scored on the
same 30%. Metric: balanced accuracy (autometa's default for classification).

    python experiments/vs_hgb_defaults.py [--budget 60] [--seeds 0]

Resumable: rows already in the output CSV are skipped. Writes
experiments/results/vs_hgb_defaults.csv and .md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from datasets import CLASSIFICATION, load  # noqa: E402

from autometa import Task, load_model  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def run_one(package: str, item: str, label: str, seed: int, budget: float, backend: str) -> dict:
    df = load(package, item)
    df = df[df[label].notna()]
    train, test = train_test_split(df, test_size=0.3, random_state=seed, stratify=df[label])
    with tempfile.TemporaryDirectory() as tmp:
        train_csv = Path(tmp) / f"{item}.csv"
        train.to_csv(train_csv, index=False)
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "autometa.cli", "tune", str(train_csv), "--label", label,
               "--time-budget", str(budget), "--seed", str(seed), "--backend", backend, "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"autometa tune failed on {item}: {proc.stderr[-500:]}")
        saved = load_model(out / "model.joblib")
        pred = saved.predict(test)["prediction"]
        result = pd.read_json(out / "result.json", typ="series")
    y_test = test[label].astype(str)
    auto = balanced_accuracy_score(y_test, pred.astype(str))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(train, label=label, seed=seed)  # same cleaning: typed columns, IDs dropped
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    t0 = time.perf_counter()
    hgb.fit(task.X, task.y.astype(str))
    hgb_time = time.perf_counter() - t0
    X_test = saved.prepare(test)
    base = balanced_accuracy_score(y_test, hgb.predict(X_test))
    # The same defaults with classes weighted equally: what a user who knows the metric would try first.
    hgb_bal = HistGradientBoostingClassifier(categorical_features="from_dtype", class_weight="balanced", random_state=seed)
    hgb_bal.fit(task.X, task.y.astype(str))
    bal = balanced_accuracy_score(y_test, hgb_bal.predict(X_test))
    return {
        "dataset": f"{package}/{item}", "label": label, "seed": seed, "n_train": len(train), "n_test": len(test),
        "n_features": task.X.shape[1], "n_classes": task.y.nunique(),
        "hgb_default": round(base, 4), "hgb_balanced": round(bal, 4), "autometa": round(auto, 4),
        "delta": round(auto - base, 4), "delta_vs_balanced": round(auto - bal, 4),
        "autometa_cv": round(float(result["best_score"]), 4), "best_family": result["best_config"]["family"],
        "n_trials": int(result["n_trials"]), "budget_s": budget, "wall_s": round(wall, 1),
        "within_budget": wall <= budget + 0.5, "hgb_fit_s": round(hgb_time, 2), "backend": backend,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--backend", default="smac")
    ap.add_argument("--name", default="vs_hgb_defaults")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    csv = RESULTS / f"{args.name}.csv"
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    for seed in args.seeds:
        for package, item, label in CLASSIFICATION:
            if not done.empty and ((done.dataset == f"{package}/{item}") & (done.seed == seed)).any():
                continue
            row = run_one(package, item, label, seed, args.budget, args.backend)
            print(row, flush=True)
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            done.to_csv(csv, index=False)
    write_markdown(done, RESULTS / f"{args.name}.md", args.budget)


def write_markdown(df: pd.DataFrame, path: Path, budget: float) -> None:
    cols = ["dataset", "seed", "n_train", "n_features", "n_classes", "hgb_default", "hgb_balanced", "autometa",
            "delta", "delta_vs_balanced", "best_family", "n_trials", "wall_s"]
    wins = int((df.delta > 0).sum())
    ties = int((df.delta == 0).sum())
    per_ds = df.groupby("dataset")[["hgb_default", "hgb_balanced", "autometa"]].mean()
    ds_wins = int((per_ds.autometa > per_ds.hgb_default).sum())
    ds_wins_bal = int((per_ds.autometa > per_ds.hgb_balanced).sum())
    lines = [
        f"# autometa tune ({budget:g} s budget, wall clock) vs HistGradientBoosting defaults",
        "",
        "Held-out balanced accuracy on a stratified 30% test split; autometa sees only the 70% training split.",
        "",
        df[cols].to_markdown(index=False),
        "",
        f"autometa better than HGB defaults on {wins} of {len(df)} runs (tied on {ties}), and on {ds_wins} of "
        f"{len(per_ds)} datasets by mean over seeds; mean delta {df.delta.mean():+.4f} "
        f"(mean HGB {df.hgb_default.mean():.4f}, mean autometa {df.autometa.mean():.4f}). "
        f"Against HGB defaults with class_weight='balanced' (mean {df.hgb_balanced.mean():.4f}): better on "
        f"{int((df.delta_vs_balanced > 0).sum())} of {len(df)} runs and {ds_wins_bal} of {len(per_ds)} datasets, "
        f"mean delta {df.delta_vs_balanced.mean():+.4f}. "
        f"Max wall time {df.wall_s.max():.1f} s for a {budget:g} s budget "
        f"({int(df.within_budget.sum())} of {len(df)} within budget + 0.5 s).",
    ]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
