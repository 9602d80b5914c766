"""Tunability per family (Probst et al. 2019) and hyperparameter importance (fANOVA) on the
shipped meta-dataset: how much tuning gains over the package default and over a learned
default, and which hyperparameters carry it.

Three views: all classification tasks (balanced accuracy), the binary tasks under ROC AUC
next to Probst et al.'s table (their metric and problem kind; the nearest of our families
to each of their learners), and the regression tasks (R2). Learned defaults are chosen
leave-one-task-out.

    python experiments/tunability.py

Writes experiments/results/tunability.{csv,md}.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pandas as pd

from autometa.defaults import hyperparameter_importance, tunability, tunability_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, shipped_db  # noqa: E402

#: Probst, Boulesteix & Bischl 2019, 38 binary OpenML datasets, AUC (shared/ANCHORS.md),
#: keyed by the nearest autometa family.
PROBST = {
    "linear": ("glmnet", 0.069, 0.024),
    "decision_tree": ("rpart", 0.038, 0.012),
    "knn": ("kknn", 0.031, 0.006),
    "svm": ("svm", 0.056, 0.042),
    "random_forest": ("ranger", 0.010, 0.006),
    "hist_gradient_boosting": ("xgboost", 0.043, 0.014),
}


def _reduction_line(tbl: pd.DataFrame) -> str:
    pkg, learned = tbl.tunability_vs_package_default.mean(), tbl.tunability_vs_learned_default.mean()
    return (f"Mean over families: {pkg:.4f} against the package default, {learned:.4f} against the learned default "
            f"(leave-one-task-out): learned defaults remove {100 * (1 - learned / pkg):.0f}% of the tunability.")


def main() -> None:
    warnings.simplefilter("ignore")
    db = shipped_db()
    tasks = db.tasks()
    not_binary = list(tasks.index[tasks.problem_type != "binary"])
    parts, lines = [], ["# Tunability and hyperparameter importance", ""]
    for exclude, metric, pt, label in (((), "balanced_accuracy", "binary", "classification"),
                                       (not_binary, "roc_auc", "binary", "binary classification, ROC AUC"),
                                       ((), "r2", "regression", "regression")):
        rows = tunability(db, metric=metric, problem_type=pt, exclude=exclude)
        tbl = tunability_table(rows)
        tbl.insert(0, "kind", label)
        parts.append(tbl)
        lines += [f"## {label} ({metric}; tunability = mean over tasks of best stored - default)", "",
                  tbl.drop(columns="kind").to_markdown(floatfmt=".4f"), "", _reduction_line(tbl), ""]
        if metric == "roc_auc":
            side = pd.DataFrame([
                {"autometa family": f, "Probst learner": PROBST[f][0],
                 "autometa vs package": tbl.loc[f, "tunability_vs_package_default"],
                 "Probst vs package": PROBST[f][1],
                 "autometa vs learned": tbl.loc[f, "tunability_vs_learned_default"],
                 "Probst vs learned": PROBST[f][2]} for f in PROBST if f in tbl.index])
            lines += ["Next to Probst et al. (38 binary OpenML datasets, AUC, tuned by random search with 100,000 "
                      "points per learner; ours: the best of 32 stored configurations per family, so our 'best' is "
                      "weaker and our tunability lower-bounded):", "", side.to_markdown(index=False, floatfmt=".3f"),
                      "", f"Probst et al.: learned defaults remove {100 * (1 - sum(v[2] for v in PROBST.values()) / sum(v[1] for v in PROBST.values())):.0f}% of the tunability (mean over the six learners).", ""]
        if metric == "balanced_accuracy":
            lines += ["Most important hyperparameters per family (fANOVA share of variance, mean over tasks):", ""]
            imp_rows = []
            for r in rows:
                imp = hyperparameter_importance(db, family=r.family, metric=metric, problem_type=pt)
                imp_rows.append({"family": r.family, "tasks": int(imp["tasks"].iloc[0]),
                                 **{f"#{i + 1}": f"{n} ({v:.2f})" for i, (n, v) in enumerate(imp["mean"].head(3).items())}})
            lines += [pd.DataFrame(imp_rows).to_markdown(index=False), ""]
    pd.concat(parts).to_csv(RESULTS / "tunability.csv")
    (RESULTS / "tunability.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
