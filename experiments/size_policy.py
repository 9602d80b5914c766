"""What the learning-curve database says about successive halving (issue 18): how well the
scores of learners fitted on fewer rows pick the learner that is best on all of them.

LCDB (Mohr et al. 2022, the ``lcdb`` package): 20 scikit-learn learners at default
settings on 248 OpenML datasets, test accuracy at training sizes 16, 23, 32, ... up to
the dataset's size. For every dataset and smaller anchor, ``autometa.metadb.rung_agreement``
compares the learners' ranking with the one at the largest anchor: the rank correlation,
whether the final winner is kept by a cut to the best third (successive halving with
eta = 3), and the accuracy lost when it is not (regret). The rows of autometa's lowest
rung (``autometa.evaluation.HALVING_MIN_ROWS``) and its deepest halving come from this table.

    python experiments/size_policy.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, plt_agg, results_path  # noqa: E402

from autometa.evaluation import HALVING_ETA, HALVING_MIN_ROWS  # noqa: E402
from autometa.metadb import lcdb_curves, rung_agreement  # noqa: E402

NAME = "size_policy"
ROW_BINS = [0, 256, 512, 1024, 2048, 4096, 8192, 16384, 1e9]
SHARE_BINS = [0, 1 / 81, 1 / 27, 1 / 9, 1 / 3, 1]


def summarize(a: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return a.groupby(by, observed=True).agg(
        pairs=("survives", "size"), datasets=("dataset", "nunique"), winner_kept=("survives", "mean"),
        median_spearman=("spearman", "median"), mean_regret=("regret", "mean"),
        p90_regret=("regret", lambda x: float(np.quantile(x, 0.9)))).round(4)


def main() -> None:
    curves = lcdb_curves("accuracy")
    a = rung_agreement(curves, eta=HALVING_ETA)
    a.to_csv(results_path(NAME, ".csv"), index=False)
    a["rows_bin"] = pd.cut(a["rows"], ROW_BINS, right=False)
    a["share_bin"] = pd.cut(a["share"], SHARE_BINS, right=False)
    large = a[a["top_rows"] >= 8000]
    rungs = large[large["rows"] >= HALVING_MIN_ROWS]
    lines = [
        f"# {NAME}", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
        f"Machine: {json.dumps(machine_info())}", "",
        f"{curves['dataset'].nunique()} datasets, {len(a):,} (dataset, anchor) pairs; "
        f"{large['dataset'].nunique()} datasets have a top anchor of 8,000 rows or more.", "",
        "## By the rows of the lower anchor (datasets whose top anchor has 8,000 rows or more)", "",
        summarize(large, ["rows_bin"]).to_markdown(), "",
        "## By the lower anchor's share of the top one (same datasets, lower anchors of "
        f"{HALVING_MIN_ROWS:,} rows or more)", "",
        summarize(rungs, ["share_bin"]).to_markdown(), "",
        "## All datasets, by rows", "", summarize(a, ["rows_bin"]).to_markdown(), "",
        "winner_kept: share of pairs where the learner best at the top anchor is among the best third at the "
        "lower one; mean_regret / p90_regret: accuracy lost at the top anchor by keeping only that third.", "",
    ]
    plt = plt_agg()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    s = summarize(large, ["rows_bin"])
    mids = [f"{int(i.left):,}" for i in s.index]
    ax[0].plot(mids, s["winner_kept"], "o-", label="winner kept by a 1/3 cut")
    ax[0].plot(mids, s["median_spearman"], "s--", label="median Spearman")
    ax[0].set_xlabel("rows of the lower anchor (from)")
    ax[0].tick_params(axis="x", rotation=45)
    ax[0].legend(fontsize=7)
    ax[0].set_title("top anchor >= 8,000 rows", fontsize=9)
    ax[1].plot(mids, s["mean_regret"], "o-", label="mean")
    ax[1].plot(mids, s["p90_regret"], "s--", label="90th percentile")
    ax[1].set_xlabel("rows of the lower anchor (from)")
    ax[1].set_ylabel("accuracy lost")
    ax[1].tick_params(axis="x", rotation=45)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(results_path(NAME, ".png"), dpi=110)
    results_path(NAME, ".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
