"""Tunability per family (Probst et al. 2019) and hyperparameter importance (fANOVA) on the
shipped meta-dataset: how much tuning gains over the package default and over a learned
default, and which hyperparameters carry it.

    python experiments/tunability.py

Writes experiments/results/tunability.{csv,md}. Preliminary while the meta-dataset is built.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from autometa.defaults import hyperparameter_importance, tunability, tunability_table
from autometa.metadb import SQLMetaDB
from autometa.metadb._shipped import load_shipped

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


def main() -> None:
    warnings.simplefilter("ignore")
    db = SQLMetaDB("sqlite://")
    load_shipped(db, ROOT / "metadata")
    parts, lines = [], ["# Tunability and hyperparameter importance (preliminary)", ""]
    for metric, pt, label in (("balanced_accuracy", "binary", "classification"), ("r2", "regression", "regression")):
        rows = tunability(db, metric=metric, problem_type=pt)
        tbl = tunability_table(rows)
        tbl.insert(0, "kind", label)
        parts.append(tbl)
        lines += [f"## {label} ({metric}; tunability = mean over tasks of best stored - default)", "",
                  tbl.drop(columns="kind").to_markdown(floatfmt=".4f"), ""]
        mean_pkg, mean_learned = tbl.tunability_vs_package_default.mean(), tbl.tunability_vs_learned_default.mean()
        lines += [f"Mean over families: {mean_pkg:.4f} against the package default, {mean_learned:.4f} against "
                  f"the learned default (leave-one-task-out): learned defaults remove "
                  f"{100 * (1 - mean_learned / mean_pkg):.0f}% of the tunability.", ""]
        if pt == "binary":
            lines += ["Most important hyperparameter per family (fANOVA share of variance, mean over tasks):", ""]
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
