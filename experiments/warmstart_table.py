"""Leave-one-task-out warm-start study in table mode (evaluations looked up, no fitting).

For each stored classification task with a complete row in the shipped matrix, the
meta-database *without that task* drives each method; the method's configurations are
"evaluated" by looking up the held-out task's stored scores (3-fold CV balanced
accuracy), in order. Reported: normalized regret of the best configuration so far
after 1, 3, 5, 10 and 25 evaluations (0 = the best of the 256 stored configurations,
1 = the worst), mean over tasks with a 95% bootstrap interval, and the share of tasks
where a warm method is worse than random search.

Methods: random (mean of 20 orders), defaults (each family's default, then random),
knn (the 25 best configurations of the nearest tasks), knn+guard (suggest_config's
order: the package default among the first two), portfolio (greedy, 25).

    python experiments/warmstart_table.py

Writes experiments/results/warmstart_table.{csv,md,png}. Preliminary while the shipped
meta-dataset is being built: the number of tasks is in the output.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from autometa.metadb import SQLMetaDB
from autometa.metadb._shipped import load_shipped
from autometa.metadb._store import config_hash
from autometa.spaces import FAMILIES, fixed_design
from autometa.warmstart import KNNWarmStarter, PortfolioWarmStarter, normalized_regret

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
BUDGETS = (1, 3, 5, 10, 25)
METRIC = "balanced_accuracy"


def best_so_far(order: list[str], regret: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Regret of the best configuration after each evaluation; the method's own list,
    then the remaining configurations in random order."""
    seen = [h for h in dict.fromkeys(order) if h in regret.index]
    rest = [h for h in regret.index if h not in set(seen)]
    rng.shuffle(rest)
    seq = regret.loc[seen + rest].to_numpy()
    return np.minimum.accumulate(seq)


def main() -> None:
    warnings.simplefilter("ignore")
    db = SQLMetaDB("sqlite://")  # in memory
    load_shipped(db, ROOT / "metadata")
    tasks = db.tasks()
    matrix = db.performance_matrix(METRIC)
    clf = [t for t in matrix.index if tasks.loc[t, "problem_type"] in ("binary", "multiclass")]
    complete = matrix.loc[clf]
    complete = complete.loc[complete.notna().mean(axis=1) >= 0.9]
    names = list(complete.index)
    if len(names) < 5:
        sys.exit(f"only {len(names)} complete classification tasks: build more of the meta-dataset first")
    regret_all = normalized_regret(complete, greater_is_better=True)
    mf = db.metafeatures()
    defaults = [config_hash(fixed_design("binary", f, n=1)[0]) for f in FAMILIES]
    rows = []
    for i, t in enumerate(names):
        regret = regret_all.loc[t]
        rng = np.random.default_rng(i)
        knn = KNNWarmStarter(db, metric=METRIC, problem_type="binary", exclude=[t])
        sugg = knn.suggest(mf.loc[t].to_dict(), n=25)
        knn_order = [config_hash(s.config) for s in sugg]
        guard = knn_order[:1] + [defaults[0]] + knn_order[1:]
        pf = PortfolioWarmStarter(db, metric=METRIC, problem_type="binary", size=25, exclude=[t])
        curves = {
            "random": np.mean([best_so_far([], regret, np.random.default_rng(1000 * i + s)) for s in range(20)], axis=0),
            "defaults": best_so_far(defaults, regret, rng),
            "knn": best_so_far(knn_order, regret, rng),
            "knn+guard": best_so_far(guard, regret, rng),
            "portfolio": best_so_far(pf.hashes, regret, rng),
        }
        for method, c in curves.items():
            rows.append({"task": t, "method": method, **{f"regret@{b}": float(c[b - 1]) for b in BUDGETS}})
    df = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "warmstart_table.csv", index=False)

    def ci(x: np.ndarray) -> str:
        boot = np.random.default_rng(0).choice(x, size=(2000, len(x))).mean(axis=1)
        return f"{x.mean():.3f} [{np.percentile(boot, 2.5):.3f}, {np.percentile(boot, 97.5):.3f}]"

    cols = [f"regret@{b}" for b in BUDGETS]
    table = df.groupby("method", sort=False)[cols].agg(lambda s: ci(s.to_numpy()))
    rnd = df[df.method == "random"].set_index("task")
    worse = {
        m: {b: float((df[df.method == m].set_index("task")[f"regret@{b}"] > rnd[f"regret@{b}"] + 1e-12).mean())
            for b in (10, 25)}
        for m in ("defaults", "knn", "knn+guard", "portfolio")
    }
    lines = [
        "# Warm start, leave-one-task-out, table mode (preliminary)",
        "",
        f"{len(names)} classification tasks of the shipped meta-dataset with complete rows "
        f"({complete.shape[1]} configurations each; 3-fold CV balanced accuracy on at most 1,000 rows). "
        "Normalized regret of the best configuration so far (0 = best stored, 1 = worst), mean over tasks "
        "[95% bootstrap interval].",
        "",
        table.to_markdown(),
        "",
        "Share of tasks where the method is worse than random search (mean of 20 orders):",
        "",
        pd.DataFrame(worse).T.rename(columns={10: "@10", 25: "@25"}).to_markdown(floatfmt=".2f"),
    ]
    (RESULTS / "warmstart_table.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, g in df.groupby("method", sort=False):
        ax.plot(BUDGETS, [g[c].mean() for c in cols], marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    ax.set_xlabel("evaluations")
    ax.set_ylabel("mean normalized regret")
    ax.set_title(f"Leave-one-task-out warm start ({len(names)} tasks, preliminary)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "warmstart_table.png", dpi=120)
    print((RESULTS / "warmstart_table.md").read_text())


if __name__ == "__main__":
    main()
