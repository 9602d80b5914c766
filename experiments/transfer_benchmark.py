"""Leave-one-task-out benchmark of warm starts and surrogate transfer, HPO-B style, in
table mode: every method searches the held-out task's pool of stored configurations
(the fixed design: 256 configurations over 8 families), evaluations are looked up in the
dense matrix, and the meta-database *without the held-out task* drives the warm start.

Methods
-------
random           uniform order of the pool
defaults         each family's package default, then random
knn              the kNN warm start alone (25 configurations, package default second,
                 learned default third, as ``suggest_config``), then random; its first
                 evaluation is the zero-shot top-1 suggestion
portfolio        greedy portfolio of 25 (zero-shot), then random
knn-portfolio    greedy portfolio of 25 conditioned on the 10 nearest tasks (the others only
                 break ties), then random
smac             SMAC3's random-forest surrogate (``smac.model.random_forest``, as
                 autometa's SMACOptimizer configures it) and
                 expected improvement scored on every unseen pool configuration (the exact
                 acquisition maximum on a discrete pool), 20% interleaved random picks as
                 SMAC's HPO facade, 5 random initial configurations
smac+knn         the same after the kNN warm start (25 configurations, package default
                 second, learned default third), as ``autometa tune --warm-start knn``
smac+portfolio   the same after the 25-configuration portfolio
smac+knn-portfolio  the same after the conditioned portfolio
smac+box         smac restricted to the bounding box of the 10 nearest tasks' best
                 configurations until the box is used up (search-space pruning)
optuna           Optuna's TPE (autometa's OptunaOptimizer, multivariate, 10 startup trials);
                 each proposal is snapped to the nearest unseen pool configuration of its family
optuna+knn       the same after the kNN warm start
optuna+portfolio the same after the portfolio
gp               a Gaussian process of the task alone (the target model of the ensembles),
                 expected improvement, 5 random initial configurations
rgpe, tstr       the transfer ensembles (autometa.transfer), from the first evaluation on
rgpe+knn         the first 5 kNN configurations, then RGPE

Metrics: normalized regret (0 = best configuration of the pool, 1 = worst) of the best so
far after 1, 5, 10, 25, 50 evaluations, mean over tasks with 95% bootstrap intervals
(seeds averaged per task first); average rank across methods; the evaluations each
method needs to reach cold SMAC's final mean regret; the share of task-seeds where a
method is worse than cold SMAC at 10 and 25 evaluations (negative transfer); and regret
against time, where time is the stored fit time of the evaluated configurations plus the
method's own measured overhead.

Zero-shot: the share of held-out tasks on which the top-1 suggestion (kNN, portfolio,
conditioned portfolio) scores better than the package default (autometa's first default,
histogram gradient boosting, and the package default of the suggestion's own family).

Runs on Dask: a LocalCluster by default, ``--scheduler ADDRESS`` for a running cluster.
Resumable: finished (method, task, seed) runs are kept in the raw CSV and skipped.
``--name`` picks the output files (raw CSV, markdown, PNG) under experiments/results/.

    python experiments/transfer_benchmark.py [--budget 50] [--seeds 3] [--workers 2]
    python experiments/transfer_benchmark.py --name warmstart_benchmark --seeds 3 \
        --methods random,defaults,knn,portfolio,knn-portfolio,smac,smac+knn,smac+portfolio,...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
METRIC = "balanced_accuracy"
BUDGETS = (1, 5, 10, 25, 50)
SECONDS = (10, 30, 100, 300, 1000)
ALL_METHODS = ("random", "defaults", "knn", "portfolio", "knn-portfolio", "smac", "smac+knn", "smac+portfolio",
               "smac+knn-portfolio", "smac+box", "optuna", "optuna+knn", "optuna+portfolio", "gp", "rgpe", "tstr",
               "rgpe+knn")
SURROGATE_METHODS = {"gp", "rgpe", "tstr", "rgpe+knn"}
N_INIT = 5
PORTFOLIO_NEIGHBORS = 10


def _memoize(db) -> None:
    """The study reads the same frames hundreds of times (one warm starter per held-out
    task): answer repeated reads from memory (copies, so no caller can alter another's)."""
    import copy

    for name in ("performance_matrix", "metafeatures", "tasks", "configurations"):
        fn, memo = getattr(db, name), {}

        def cached(*args, _fn=fn, _memo=memo, **kwargs):
            key = (args, tuple(sorted(kwargs.items())))
            if key not in _memo:
                _memo[key] = _fn(*args, **kwargs)
            return copy.deepcopy(_memo[key])

        setattr(db, name, cached)


# -- data shared by every run -------------------------------------------------------------


def prepare(max_tasks: int | None, surrogates: bool = True) -> dict:
    """Everything a run needs, computed once: pools, regrets, fit times, meta-features,
    warm-start orders per held-out task, and the fitted surrogates of all tasks."""
    from autometa.metadb import SQLMetaDB
    from autometa.metadb._shipped import load_shipped
    from autometa.metadb._store import config_hash
    from autometa.spaces import FAMILIES, fixed_design, get_space
    from autometa.transfer import encode_configs, fit_surrogate_store
    from autometa.warmstart import KNNWarmStarter, PortfolioWarmStarter, normalized_regret

    db = SQLMetaDB("sqlite://")
    load_shipped(db, ROOT / "metadata")
    _memoize(db)
    tasks = db.tasks()
    matrix = db.performance_matrix(METRIC)
    clf = [t for t in matrix.index if tasks.loc[t, "problem_type"] in ("binary", "multiclass")]
    complete = matrix.loc[clf]
    complete = complete.loc[complete.notna().mean(axis=1) >= 0.9]
    complete = complete.loc[:, complete.notna().mean(axis=0) >= 0.5]
    names = sorted(complete.index)[:max_tasks] if max_tasks else sorted(complete.index)
    regret = normalized_regret(complete.loc[names], greater_is_better=True).fillna(1.0)  # a failure is the worst
    configs = db.configurations()
    hashes = list(regret.columns)
    space = get_space("binary")
    X = encode_configs(space, [configs[h] for h in hashes])
    fit_time = pd.DataFrame(np.nan, index=names, columns=hashes)
    for t in names:
        f = ROOT / "metadata" / "evaluations" / f"{t.replace('/', '__')}.csv"
        d = pd.read_csv(f, usecols=["config_hash", "fit_time_s"]).set_index("config_hash")["fit_time_s"]
        fit_time.loc[t] = d.reindex(hashes).to_numpy()
    fit_time = fit_time.fillna(fit_time.median().median())
    mf = db.metafeatures()
    defaults = [config_hash(fixed_design("binary", f, n=1)[0]) for f in FAMILIES]
    orders: dict[str, dict[str, list[str]]] = {}
    for t in names:
        knn = KNNWarmStarter(db, metric=METRIC, problem_type="binary", exclude=[t])
        sugg = [config_hash(s.config) for s in knn.suggest(mf.loc[t].to_dict(), n=25)]
        pf = PortfolioWarmStarter(db, metric=METRIC, problem_type="binary", size=25, exclude=[t])
        # as suggest_config: top kNN suggestion, package default, learned default, then the rest
        guard = list(dict.fromkeys(sugg[:1] + [defaults[0], pf.hashes[0]] + sugg[1:]))[:25]
        cpf = PortfolioWarmStarter(db, metric=METRIC, problem_type="binary", size=25, exclude=[t],
                                   metafeatures=mf.loc[t].to_dict(), neighbors=PORTFOLIO_NEIGHBORS)
        box = [config_hash(s.config) for s in knn.suggest(mf.loc[t].to_dict(), n=10)]
        orders[t] = {"knn": guard, "portfolio": list(pf.hashes), "knn-portfolio": list(cpf.hashes),
                     "defaults": defaults, "box": box}
    store = fit_surrogate_store(db, metric=METRIC, problem_type="binary") if surrogates else None
    family_default = {f: config_hash(fixed_design("binary", f, n=1)[0]) for f in FAMILIES}
    return {"names": names, "hashes": hashes, "regret": regret, "fit_time": fit_time, "X": X, "orders": orders,
            "metafeatures": {t: mf.loc[t].to_dict() for t in names}, "store": store,
            "configs": {h: configs[h] for h in hashes}, "scores": complete.loc[names],
            "family_default": family_default}


def zero_shot(data: dict) -> pd.DataFrame:
    """Per held-out task: does the top-1 suggestion of each zero-shot method score better
    (3-fold CV balanced accuracy) than the package default, and than the package default of
    its own family? Ties (the same score) are counted apart."""
    scores, fam_default = data["scores"], data["family_default"]
    hgb = data["orders"][data["names"][0]]["defaults"][0]
    rows = []
    for t in data["names"]:
        row = {"task": t}
        for method in ("knn", "portfolio", "knn-portfolio"):
            top = data["orders"][t][method][0]
            own = fam_default[data["configs"][top]["family"]]
            s_top, s_hgb, s_own = scores.loc[t, top], scores.loc[t, hgb], scores.loc[t, own]
            row[f"{method}:vs_default"] = float(np.sign(np.nan_to_num(s_top, nan=-1) - np.nan_to_num(s_hgb, nan=-1)))
            row[f"{method}:vs_family_default"] = float(np.sign(np.nan_to_num(s_top, nan=-1) - np.nan_to_num(s_own, nan=-1)))
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")


# -- one run --------------------------------------------------------------------------------


def _ei_pick(mean: np.ndarray, std: np.ndarray, best: float, unseen: np.ndarray) -> int:
    from autometa.transfer import expected_improvement

    ei = expected_improvement(mean, std, best)
    ei = np.where(unseen, ei, -np.inf)
    top = np.flatnonzero(ei >= ei.max() - 1e-12)
    return int(top[0])


class _Run:
    def __init__(self, data: dict, task: str, seed: int, budget: int) -> None:
        self.data, self.task, self.budget = data, task, budget
        self.y = data["regret"].loc[task].to_numpy(dtype=float)
        self.cost = data["fit_time"].loc[task].to_numpy(dtype=float)
        self.index = {h: i for i, h in enumerate(data["hashes"])}
        self.rng = np.random.default_rng(seed)
        self.seen: list[int] = []
        self.overhead: list[float] = []

    @property
    def unseen(self) -> np.ndarray:
        mask = np.ones(len(self.y), dtype=bool)
        mask[self.seen] = False
        return mask

    def add(self, i: int, overhead: float) -> None:
        if i in self.seen:  # a method proposing a seen configuration: take a random unseen one
            i = int(self.rng.choice(np.flatnonzero(self.unseen)))
        self.seen.append(i)
        self.overhead.append(overhead)

    def random(self) -> int:
        return int(self.rng.choice(np.flatnonzero(self.unseen)))

    def fixed(self, hashes: list[str], limit: int | None = None) -> None:
        for h in hashes[: limit or len(hashes)]:
            if len(self.seen) >= self.budget:
                return
            i = self.index.get(h)
            if i is not None and i not in self.seen:
                self.add(i, 0.0)

    def done(self) -> bool:
        return len(self.seen) >= self.budget

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        reg = np.minimum.accumulate(self.y[self.seen])
        secs = np.cumsum(self.cost[self.seen] + np.asarray(self.overhead))
        return reg, secs


def _smac_loop(run: _Run, box: list[int] | None = None) -> None:
    from autometa.optimizers._smac import smac_random_forest
    from autometa.spaces import get_space

    space = get_space("binary")
    X = run.data["X"]
    while not run.done():
        t0 = time.perf_counter()
        if len(run.seen) < N_INIT:
            i = run.random()
        elif run.rng.random() < 0.2:  # SMAC's interleaved random configurations
            i = run.random()
        else:
            model = smac_random_forest(space, seed=int(run.rng.integers(2**31 - 1)), log_y=False)
            model.train(X[run.seen], run.y[run.seen].reshape(-1, 1))
            mean, var = model.predict(X)
            unseen = run.unseen
            if box is not None:
                in_box = np.zeros_like(unseen)
                in_box[box] = True
                if (unseen & in_box).any():
                    unseen = unseen & in_box
            i = _ei_pick(mean.ravel(), np.sqrt(np.maximum(var.ravel(), 1e-12)), float(run.y[run.seen].min()), unseen)
        run.add(i, time.perf_counter() - t0)


def _box_indices(run: _Run) -> list[int]:
    from ConfigSpace.util import deactivate_inactive_hyperparameters

    from autometa.spaces import get_space
    from autometa.transfer import bounding_box

    data = run.data
    space = get_space("binary")
    best = [data["configs"][h] for h in data["orders"][run.task]["box"] if h in data["configs"]]
    box = bounding_box(space, best + [data["configs"][h] for h in data["orders"][run.task]["defaults"]
                                      if data["configs"][h]["family"] in {c["family"] for c in best}])
    out = []
    for i, h in enumerate(data["hashes"]):
        c = data["configs"][h]
        try:
            deactivate_inactive_hyperparameters(dict(c), box).check_valid_configuration()
            out.append(i)
        except Exception:  # noqa: BLE001 - outside the box
            continue
    return out


def _optuna_loop(run: _Run) -> None:
    from autometa.optimizers import OptunaOptimizer
    from autometa.spaces import get_space
    from autometa.transfer import SpaceLayout, encode_configs

    space = get_space("binary", seed=int(run.rng.integers(2**31 - 1)))
    layout = SpaceLayout(space)
    X = run.data["X"]
    fams = layout.family_of(X)
    Xf = np.nan_to_num(X, nan=-0.5)
    initial = [run.data["configs"][h] for h in run.data.get("initial", [])]
    opt = OptunaOptimizer(space, seed=int(run.rng.integers(2**31 - 1)), initial_configs=initial)
    while not run.done():
        t0 = time.perf_counter()
        cfg = opt.ask()
        x = np.nan_to_num(encode_configs(space, [cfg])[0], nan=-0.5)
        cand = np.flatnonzero(run.unseen & (fams == cfg["family"]))
        if len(cand) == 0:
            cand = np.flatnonzero(run.unseen)
        i = int(cand[np.argmin(((Xf[cand] - x) ** 2).sum(axis=1))])
        opt.tell(run.data["configs"][run.data["hashes"][i]], float(run.y[i]))
        run.add(i, time.perf_counter() - t0)


def _ensemble_loop(run: _Run, kind: str, n_random: int, store_tasks: bool = True) -> None:
    from autometa.spaces import get_space
    from autometa.transfer import RGPE, TSTR

    data = run.data
    space = get_space("binary")
    store = data["store"].subset([run.task])
    if not store_tasks:
        store = store.subset(store.tasks)
    cls = RGPE if kind == "rgpe" else TSTR
    ens = cls(store, space, seed=int(run.rng.integers(2**31 - 1)), metafeatures=data["metafeatures"][run.task],
              n_samples=128) if cls is RGPE else cls(store, space, seed=0, metafeatures=data["metafeatures"][run.task])
    X = data["X"]
    t0 = time.perf_counter()
    ens.precompute(X)
    setup = time.perf_counter() - t0
    while not run.done():
        t0 = time.perf_counter()
        if len(run.seen) < n_random:
            i = run.random()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ens.fit(X[run.seen], run.y[run.seen])
                mean, var = ens.predict(X)
                if run.seen:
                    i = _ei_pick(mean, np.sqrt(var), ens.incumbent_value(), run.unseen)
                else:  # nothing observed yet: the prior's best guess
                    i = int(np.argmin(np.where(run.unseen, mean, np.inf)))
        run.add(i, time.perf_counter() - t0 + setup)
        setup = 0.0


def run_one(data: dict, method: str, task: str, seed: int, budget: int) -> dict:
    """One (method, held-out task, seed) search; returns its regret and time curves."""
    warnings.simplefilter("ignore")
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)
    run = _Run(data, task, seed, budget)
    orders = data["orders"][task]
    t_start = time.perf_counter()
    if method == "random":
        while not run.done():
            run.add(run.random(), 0.0)
    elif method in ("defaults", "knn", "portfolio", "knn-portfolio"):
        run.fixed(orders[method])
        while not run.done():
            run.add(run.random(), 0.0)
    elif method == "smac":
        _smac_loop(run)
    elif method in ("smac+knn", "smac+portfolio", "smac+knn-portfolio"):
        run.fixed(orders[method.split("+")[1]])
        _smac_loop(run)
    elif method == "smac+box":
        _smac_loop(run, box=_box_indices(run))
    elif method == "optuna":
        _optuna_loop(run)
    elif method in ("optuna+knn", "optuna+portfolio"):
        run.data = {**data, "initial": orders[method.split("+")[1]]}
        _optuna_loop(run)
    elif method == "gp":
        _ensemble_loop(run, "rgpe", N_INIT, store_tasks=False)
    elif method in ("rgpe", "tstr"):
        _ensemble_loop(run, method, 0)
    elif method == "rgpe+knn":
        run.fixed(orders["knn"], limit=5)
        _ensemble_loop(run, "rgpe", 0)
    else:
        raise ValueError(f"unknown method {method!r}")
    reg, secs = run.curve()
    return {"method": method, "task": task, "seed": seed, "regret": json.dumps([round(float(v), 6) for v in reg]),
            "seconds": json.dumps([round(float(v), 4) for v in secs]),
            "overhead_s": round(float(np.sum(run.overhead)), 4), "wall_s": round(time.perf_counter() - t_start, 3)}


# -- reporting --------------------------------------------------------------------------------


def _ci(x: np.ndarray) -> tuple[float, float, float]:
    boot = np.random.default_rng(0).choice(x, size=(2000, len(x))).mean(axis=1)
    return float(x.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def _zero_shot_lines(zs: pd.DataFrame) -> list[str]:
    rows = {}
    for method in ("knn", "portfolio", "knn-portfolio"):
        rows[method] = {}
        for ref, label in (("vs_default", "package default (HGB)"), ("vs_family_default", "own family's default")):
            col = zs[f"{method}:{ref}"]
            rows[method][f"better than {label}"] = f"{(col > 0).mean():.0%}"
            rows[method][f"tie ({label})"] = f"{(col == 0).mean():.0%}"
    return ["", f"Zero-shot: share of the {len(zs)} held-out tasks on which the top-1 suggestion scores better than the "
            "package default (ties apart):", "", pd.DataFrame(rows).T.to_markdown()]


def report(raw: pd.DataFrame, budget: int, name: str = "transfer_benchmark", zs: pd.DataFrame | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in ALL_METHODS if m in set(raw.method)]
    # only (task, seed) pairs every method has run, so that all methods see the same runs
    pairs = raw.groupby(["task", "seed"]).method.nunique()
    full = set(pairs[pairs == len(methods)].index)
    raw = raw[[(t, s) in full for t, s in zip(raw.task, raw.seed, strict=True)]]
    curves = {}  # method -> tasks x budget (seeds averaged)
    per_seed = {}
    for m in methods:
        g = raw[raw.method == m]
        arr = np.array([json.loads(r)[:budget] for r in g.regret])
        per_seed[m] = pd.DataFrame(arr, index=pd.MultiIndex.from_arrays([g.task, g.seed]))
        curves[m] = per_seed[m].groupby(level=0).mean()
    tasks = sorted(set.intersection(*(set(c.index) for c in curves.values())))
    curves = {m: c.loc[tasks] for m, c in curves.items()}
    budgets = [b for b in BUDGETS if b <= budget]
    rows = []
    for m in methods:
        row = {"method": m}
        for b in budgets:
            mean, lo, hi = _ci(curves[m][b - 1].to_numpy())
            row[f"regret@{b}"] = f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    # average rank over tasks at each budget (ties share ranks)
    ranks = {}
    for b in budgets:
        frame = pd.DataFrame({m: curves[m][b - 1] for m in methods})
        ranks[f"rank@{b}"] = frame.rank(axis=1).mean()
    rank_table = pd.DataFrame(ranks).round(2)
    # evaluations to reach cold SMAC's final mean regret
    ref = "smac" if "smac" in curves else methods[0]
    target = float(curves[ref][budget - 1].mean())
    reach = {}
    for m in methods:
        mean_curve = curves[m].mean().to_numpy()
        hit = np.flatnonzero(mean_curve <= target + 1e-12)
        reach[m] = int(hit[0] + 1) if len(hit) else None
    # negative transfer: worse than cold SMAC on a task-seed
    neg = {}
    base = per_seed.get(ref)
    for m in methods:
        if base is None or m == ref:
            continue
        common = per_seed[m].index.intersection(base.index)
        mine, ref_runs = per_seed[m].loc[common], base.loc[common]
        neg[m] = {f"worse@{b}": round(float((mine[b - 1] > ref_runs[b - 1] + 1e-12).mean()), 3) for b in (10, 25) if b <= budget}
    # regret against time
    time_rows = {}
    for m in methods:
        g = raw[raw.method == m]
        vals = {s: [] for s in SECONDS}
        for reg_s, sec_s in zip(g.regret, g.seconds, strict=True):
            reg, sec = np.array(json.loads(reg_s)), np.array(json.loads(sec_s))
            for s in SECONDS:
                k = np.searchsorted(sec, s, side="right")
                vals[s].append(reg[k - 1] if k > 0 else 1.0)
        time_rows[m] = {f"{s} s": round(float(np.mean(v)), 3) for s, v in vals.items()}
    overhead = raw.groupby("method").overhead_s.mean().reindex(methods) / budget

    n_seeds = int(raw.seed.nunique())
    lines = [
        "# Warm starts and surrogate transfer, leave-one-task-out (table mode)",
        "",
        f"{len(tasks)} classification tasks of the shipped meta-dataset, {n_seeds} seeds each; every method searches "
        f"the held-out task's pool of {raw.shape[0] and len(json.loads(raw.regret.iloc[0])) and 256} stored configurations "
        "(3-fold CV balanced accuracy, at most 1,000 rows), and the meta-database without that task drives warm starts "
        "and transfer. Normalized regret of the best so far (0 = best of the pool, 1 = worst), mean over tasks "
        "[95% bootstrap interval]. Methods are described in experiments/transfer_benchmark.py.",
        "",
        table.to_markdown(),
        "",
        "Average rank across methods (1 = best):",
        "",
        rank_table.to_markdown(),
        "",
        f"Evaluations needed to reach cold SMAC's mean regret after {budget} evaluations ({target:.3f}), and the "
        "share of task-seeds where a method is worse than cold SMAC (negative transfer):",
        "",
        pd.DataFrame({"evaluations to reach": pd.Series(reach),
                      "speed-up": pd.Series({m: (round(budget / v, 1) if v else None) for m, v in reach.items()}),
                      **{k: pd.Series({m: v[k] for m, v in neg.items()}) for k in (next(iter(neg.values())) if neg else {})},
                      "overhead s/eval": overhead.round(3)}).to_markdown(),
        "",
        "Mean regret against time (stored fit time of the evaluated configurations + the method's own overhead):",
        "",
        pd.DataFrame(time_rows).T.to_markdown(),
    ] + (_zero_shot_lines(zs.loc[zs.index.intersection(tasks)]) if zs is not None else [])

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(1, budget + 1)
    for m in methods:
        c = curves[m].to_numpy()
        mean = c.mean(axis=0)
        se = c.std(axis=0, ddof=1) / np.sqrt(len(c)) * 1.96
        style = "--" if m in ("random", "defaults", "portfolio") else "-"
        axes[0].plot(x, mean, style, label=m)
        axes[0].fill_between(x, mean - se, mean + se, alpha=0.12)
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("evaluations")
    axes[0].set_ylabel("mean normalized regret (95% CI)")
    axes[0].set_title(f"Leave-one-task-out, {len(tasks)} tasks x {n_seeds} seeds")
    for m in methods:
        axes[1].plot(SECONDS, [time_rows[m][f"{s} s"] for s in SECONDS], "-o", label=m, ms=3)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("seconds (stored fit time + overhead)")
    axes[1].set_ylabel("mean normalized regret")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=120)
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--max-tasks", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="Address of a running Dask scheduler (default: a LocalCluster).")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--name", default="transfer_benchmark", help="Stem of the output files under experiments/results/.")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw_path = RESULTS / f"{args.name}_raw.csv"
    zs_path = RESULTS / f"{args.name}_zeroshot.csv"
    methods = args.methods.split(",")
    unknown = set(methods) - set(ALL_METHODS)
    if unknown:
        sys.exit(f"unknown methods {sorted(unknown)}; choose from {', '.join(ALL_METHODS)}")
    raw = pd.read_csv(raw_path) if raw_path.is_file() else pd.DataFrame()
    if not args.report_only:
        from dask.distributed import Client, LocalCluster, as_completed

        t0 = time.perf_counter()
        data = prepare(args.max_tasks, surrogates=bool(SURROGATE_METHODS & set(methods)))
        print(f"prepared {len(data['names'])} tasks in {time.perf_counter() - t0:.0f} s", flush=True)
        zero_shot(data).to_csv(zs_path)
        done = set(zip(raw.method, raw.task, raw.seed, strict=True)) if len(raw) else set()
        jobs = [(m, t, s) for s in range(args.seeds) for m in methods for t in data["names"]
                if (m, t, s) not in done]
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None))
        shared = client.scatter(data, broadcast=True)
        futures = [client.submit(run_one, shared, m, t, s, args.budget, pure=False) for m, t, s in jobs]
        print(f"{len(jobs)} runs on {len(client.scheduler_info()['workers'])} Dask workers", flush=True)
        buffer, n = [], 0
        for fut in as_completed(futures):
            buffer.append(fut.result())
            n += 1
            if len(buffer) >= 50 or n == len(jobs):
                pd.DataFrame(buffer).to_csv(raw_path, mode="a", header=not raw_path.is_file(), index=False)
                buffer = []
                print(f"{n}/{len(jobs)} runs, {time.perf_counter() - t0:.0f} s", flush=True)
        client.close()
        raw = pd.read_csv(raw_path)
    if raw.empty:
        sys.exit("no runs yet")
    zs = pd.read_csv(zs_path, index_col=0) if zs_path.is_file() else None
    text = report(raw, args.budget, args.name, zs)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
