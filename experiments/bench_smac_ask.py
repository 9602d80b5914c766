"""SMAC's random-forest surrogate: SMAC 2.4's HPO-facade settings (max_leaf_nodes=2**20,
n_jobs=-1) against the two settings autometa changes (max_leaf_nodes=None, n_jobs=1): the
time of one model fit on 10/30/50 configurations of autometa's space; and the mean time
of one ask over 40 trials (random losses, seeded) of SMAC's own HPO facade driven through
SMAC's ask/tell against the shipped ``autometa.optimizers.SMACOptimizer``.

    python experiments/bench_smac_ask.py

Writes experiments/results/bench_smac_ask.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from smac.model.random_forest import RandomForest

from autometa.optimizers import SMACOptimizer
from autometa.spaces import get_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_line, results_path  # noqa: E402

N_ASKS = 40


def forest(space, *, facade: bool, seed: int = 0):
    """SMAC's forest with the HPO facade's settings, or with autometa's two changes."""
    extra = {} if facade else {"max_leaf_nodes": None, "n_jobs": 1}
    return RandomForest(space, log_y=False, n_trees=10, bootstrapping=True, ratio_features=1.0, min_samples_split=2,
                        min_samples_leaf=1, max_depth=2**20, seed=seed, **extra)


def fit_seconds(facade: bool, X, y, n) -> float:
    t = time.perf_counter()
    forest(get_space("binary"), facade=facade).train(X[:n], y[:n].reshape(-1, 1))
    return time.perf_counter() - t


def mean_ask_facade() -> float:
    """SMAC's HPO facade with its own defaults (5 random initial configurations), ask/tell."""
    from smac import HyperparameterOptimizationFacade as HPO
    from smac import Scenario
    from smac.runhistory.dataclasses import TrialValue

    space = get_space("binary", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Scenario(space, deterministic=True, n_trials=10**7, seed=0, output_directory=Path(tmp))
        smac = HPO(scenario, lambda config, seed=0: 0.0, initial_design=HPO.get_initial_design(scenario, n_configs=5),
                   overwrite=True, logging_level=False)
        rng = np.random.default_rng(0)
        times = []
        for _ in range(N_ASKS):
            t = time.perf_counter()
            info = smac.ask()
            times.append(time.perf_counter() - t)
            smac.tell(info, TrialValue(cost=float(rng.random())))
    return float(np.mean(times))


def mean_ask_autometa() -> float:
    opt = SMACOptimizer(get_space("binary", seed=0), seed=0)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(N_ASKS):
        t = time.perf_counter()
        c = opt.ask()
        times.append(time.perf_counter() - t)
        opt.tell(c, float(rng.random()))
    return float(np.mean(times))


def main() -> None:
    warnings.simplefilter("ignore")
    space = get_space("binary", seed=0)
    X = np.array([c.get_array() for c in space.sample_configuration(50)])
    y = np.random.default_rng(0).random(50)
    rows = []
    for name, facade, ask in (("SMAC facade defaults", True, mean_ask_facade),
                              ("autometa (max_leaf_nodes=None, n_jobs=1)", False, mean_ask_autometa)):
        fits = [fit_seconds(facade, X, y, n) for n in (10, 30, 50)]
        rows.append(f"| {name} | " + " | ".join(f"{f:.3f}" for f in fits) + f" | {ask():.3f} |")
    text = "\n".join([
        "# SMAC random-forest surrogate: fit and ask time",
        "",
        "| forest settings | fit on 10 (s) | fit on 30 (s) | fit on 50 (s) | mean ask over 40 trials (s) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Ask times: SMAC's HPO facade with its own defaults driven through SMAC's ask/tell, and the shipped "
        "`autometa.optimizers.SMACOptimizer`.",
        "",
        machine_line(),
        "",
    ])
    results_path("bench_smac_ask", ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
