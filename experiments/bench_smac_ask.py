"""SMAC's random-forest surrogate as SMAC 2.4's HPO facade builds it (max_leaf_nodes=2**20,
n_jobs=-1) against autometa's settings (max_leaf_nodes=None, n_jobs=1): the time of one
model fit on 10/30/50 configurations of autometa's space, and the mean time of
SMACOptimizer.ask over 40 trials (random losses, seeded).

    python experiments/bench_smac_ask.py

Writes experiments/results/bench_smac_ask.md.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from smac.model.random_forest import RandomForest

import autometa.optimizers._smac as smac_mod
from autometa.optimizers import SMACOptimizer
from autometa.spaces import get_space

RESULTS = Path(__file__).resolve().parent / "results"
OURS = smac_mod.smac_random_forest


def facade_forest(space, *, seed=0, log_y=True):
    """The HPO facade's forest: SMAC's defaults for max_leaf_nodes and n_jobs."""
    return RandomForest(space, log_y=log_y, n_trees=10, bootstrapping=True, ratio_features=1.0, min_samples_split=2,
                        min_samples_leaf=1, max_depth=2**20, seed=seed)


def fit_seconds(make, X, y, n) -> float:
    t = time.perf_counter()
    make(get_space("binary"), seed=0, log_y=False).train(X[:n], y[:n].reshape(-1, 1))
    return time.perf_counter() - t


def mean_ask(make) -> float:
    smac_mod.smac_random_forest = make
    try:
        opt = SMACOptimizer(get_space("binary", seed=0), seed=0)
        rng = np.random.default_rng(0)
        times = []
        for _ in range(40):
            t = time.perf_counter()
            c = opt.ask()
            times.append(time.perf_counter() - t)
            opt.tell(c, float(rng.random()))
        return float(np.mean(times))
    finally:
        smac_mod.smac_random_forest = OURS


def main() -> None:
    warnings.simplefilter("ignore")
    space = get_space("binary", seed=0)
    X = np.array([c.get_array() for c in space.sample_configuration(50)])
    y = np.random.default_rng(0).random(50)
    rows = []
    for name, make in (("SMAC facade defaults", facade_forest), ("autometa", OURS)):
        fits = [fit_seconds(make, X, y, n) for n in (10, 30, 50)]
        rows.append(f"| {name} | " + " | ".join(f"{f:.3f}" for f in fits) + f" | {mean_ask(make):.3f} |")
    text = "\n".join([
        "# SMAC random-forest surrogate: fit and ask time",
        "",
        "| forest settings | fit on 10 (s) | fit on 30 (s) | fit on 50 (s) | mean ask over 40 trials (s) |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_smac_ask.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
