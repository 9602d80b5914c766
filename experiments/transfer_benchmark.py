"""Leave-one-task-out benchmark of warm starts and surrogate transfer in table mode, run
through the shipped product: every (method, held-out task, seed) is one
``autometa.tune(...)`` call on the task's real data, whose objective is a
:class:`autometa.evaluation.ReplayEvaluator` over that task's stored evaluations (the
fixed design of the shipped meta-dataset: 256 configurations, 32 per family, 3-fold CV
balanced accuracy on at most 1,000 rows). SMAC, Optuna, random search, the warm
starters, the box pruner and RGPE/TST-R are the package's own; the meta-database every
part reads leaves the held-out task out (``exclude=[task]``).

The replay
----------
A proposal that is a stored configuration gets its stored scores; any other proposal
gets the scores of the *nearest stored configuration of its family* (unit-cube
encoding), as ``ReplayEvaluator`` does, and not a per-task surrogate benchmark's
prediction (YAHPO style). Why: every replayed score is then a real measurement, whereas
a surrogate fitted on 32 points per family would add its own model error, of a size
comparable to the differences between methods, and would favour the optimizers whose
model resembles it. The drawback: the landscape is piecewise constant (plateaus), so a
continuous optimizer cannot gain from a proposal between stored points, and two
proposals may replay the same stored configuration. The report gives the share of
proposals that were stored configurations exactly.

Methods (each one ``tune`` call; ``warm_start="none"`` unless named)
-------
random              optimizer="random"
defaults            optimizer="random", warm_start="defaults" (each family's default first)
smac                optimizer="smac", cold (SMAC's own initial design)
smac+defaults       SMAC after each family's default (the package's default start)
smac+knn            SMAC after KNNWarmStarter(db, exclude=[task])
smac+portfolio      SMAC after PortfolioWarmStarter(db, exclude=[task])
smac+knn-portfolio  SMAC after PortfolioWarmStarter(db, exclude=[task], neighbors=10)
smac+box            SMAC in BoxPruner(db, exclude=(task,))'s space
optuna              optimizer="optuna" (TPE), cold
optuna+knn          TPE after the kNN start
optuna+portfolio    TPE after the portfolio
rgpe, tstr          SMAC with transfer=SurrogateTransfer("rgpe"|"tstr", metadb=db, exclude=[task])
rgpe+knn            RGPE after the kNN start
optuna+rgpe         TPE with the RGPE ensemble as its sampler
smac+predictor      SMAC after PredictorWarmStarter(db, exclude=<the task's fold>): the learned
                    performance predictor is fitted once per fold of a 5-fold split of the
                    tasks (a fit takes minutes), so each held-out task's whole fold is left out
pmf                 SMAC with transfer=PMFTransfer(db, exclude=[task]) (matrix factorization)
optuna+pmf          TPE with the PMF as its sampler
guarded             SMAC with transfer=GuardedTransfer(db, exclude=[task]) (PMF guarded by the
                    task's own GP)
portfolio10+guarded SMAC after the portfolio's first 10 suggestions (n_initial=10), then the guard
portfolio+guarded   the same after the portfolio's 25
knn10+guarded       SMAC after the kNN start's first 10, then the guard

Every run: ``n_trials=--budget`` (50), ``refit=False``, a time budget that never binds,
the stored meta-features (``metafeatures=``, nothing extracted), seed = the run's seed.

Metrics: normalized regret of the best so far (0 = best stored configuration of the
task, 1 = worst; a failed trial counts as the worst) after 1, 5, 10, 25, 50 trials, mean
over tasks (seeds averaged per task) with 95% bootstrap intervals; average rank; per
task-seed the trials a method needs to reach cold SMAC's 50-trial regret (median); the
share of task-seeds where a method is worse than cold SMAC at 10 and 25 trials (negative
transfer); regret against time, where a trial costs the stored fit time of the
replayed configuration plus the run's measured overhead for it (the wall time between
two trials, setup before the first included). Zero-shot: the replayed score of each
warm starter's first suggestion (and of its first meta-learned one) against the
package default's.

Runs on Dask (a LocalCluster of ``--workers`` processes, or ``--scheduler ADDRESS``);
resumable: finished runs are kept in the raw CSV and skipped. ``--name`` picks the output
files under experiments/results/.

    python experiments/transfer_benchmark.py --name warmstart_benchmark_facade --max-tasks 40 --seeds 2 \\
        --methods random,smac,smac+defaults,smac+knn,smac+portfolio,smac+knn-portfolio,optuna,optuna+portfolio,rgpe

Issue 15's rerun (the report's first section: --core issue15):

    python experiments/transfer_benchmark.py --name transfer_benchmark_issue15 --max-tasks 40 --seeds 2 \\
        --no-zero-shot --core issue15 \\
        --methods smac,smac+knn,smac+portfolio,smac+predictor,pmf,guarded,portfolio10+guarded
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("AUTOMETA_CACHE_DIR", "/tmp/autometa-bench-cache")  # the fitted surrogates, fitted once

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    bootstrap_ci,
    classification_tasks,
    dask_client,
    fmt_ci,
    machine_line,
    plt_agg,
    process_cached,
    results_path,
    shipped_db,
    stored_task,
)

METRIC = "balanced_accuracy"
BUDGETS = (1, 5, 10, 25, 50)
SECONDS = (1, 2, 5, 10, 20, 50)
ALL_METHODS = ("random", "defaults", "smac", "smac+defaults", "smac+knn", "smac+portfolio", "smac+knn-portfolio",
               "smac+box", "smac+predictor", "optuna", "optuna+knn", "optuna+portfolio", "rgpe", "tstr", "rgpe+knn",
               "optuna+rgpe", "pmf", "optuna+pmf", "guarded", "portfolio10+guarded", "knn10+guarded",
               "portfolio+guarded")
TRANSFER_METHODS = {"rgpe", "tstr", "rgpe+knn", "optuna+rgpe"}
PREDICTOR_METHODS = {"smac+predictor"}
#: The predictor warm start is fitted once per fold of tasks (5 folds, as in
#: predictor_zero_shot.py: a fit takes minutes), leaving the held-out task's whole fold out.
PREDICTOR_FOLDS = 5
PORTFOLIO_NEIGHBORS = 10
REFERENCE = "smac"
#: The methods of the first, larger study (every task-seed); the others ran on fewer.
CORE_METHODS = ("random", "smac", "smac+defaults", "smac+knn", "smac+portfolio", "smac+knn-portfolio", "optuna",
                "optuna+portfolio", "rgpe")
#: The methods of issue 15's rerun (--core issue15).
ISSUE15_METHODS = ("smac", "optuna", "smac+knn", "smac+portfolio", "smac+predictor", "rgpe", "pmf", "guarded")
CORES = {"default": CORE_METHODS, "issue15": ISSUE15_METHODS}
ISSUE15_PREAMBLE = (
    "# Issue 15: PMF, the negative-transfer guard and the warm starts in table mode\n\n"
    "Methods (experiments/transfer_benchmark.py): `smac` cold SMAC; `optuna` cold TPE; `smac+knn`, "
    "`smac+portfolio` SMAC after that warm start (25 suggestions); `rgpe` SMAC with the RGPE ensemble as its "
    "model; `pmf` SMAC with `transfer=PMFTransfer` (matrix factorization, the task's embedding inferred from its "
    "trials); `guarded` SMAC with `transfer=GuardedTransfer` (PMF and the task's own GP, weighted by "
    "leave-one-out ranking, the meta-model's weight falling to zero when contradicted); in the second section "
    "also `portfolio10+guarded`, the portfolio's first 10 suggestions and then the guard. Methods without a warm "
    "start begin with SMAC's 5 random configurations. The `optuna` and `rgpe` rows are the runs of "
    "warmstart_benchmark_facade_raw.csv (their code did not change since; a rerun of one task-seed each replayed "
    "identically), so their time columns come from another, less loaded run; every other row was run for this "
    "report, on the same meta-dataset (the shipped fixed design, 256 configurations per task), seed 0 first. "
    "Only task-seeds on which every listed method ran are compared. The predictor warm start (`smac+predictor`, "
    "one predictor fit per fold of tasks, minutes each) was not rerun: the machine was shared by several jobs "
    "and the runs went to the transfer methods.\n"
)


def tune_kwargs(method: str, db: Any, task: str) -> dict[str, Any]:
    """The ``tune`` arguments of a method for one held-out task (public parts only)."""
    from autometa.transfer import BoxPruner, GuardedTransfer, PMFTransfer, SurrogateTransfer
    from autometa.warmstart import KNNWarmStarter, PortfolioWarmStarter, PredictorWarmStarter

    def knn() -> Any:
        return KNNWarmStarter(db, exclude=[task])

    def rgpe(kind: str = "rgpe") -> Any:
        return SurrogateTransfer(kind, metadb=db, exclude=[task])

    def guarded() -> Any:
        return GuardedTransfer(db, exclude=[task])

    table: dict[str, Any] = {
        "random": lambda: {"optimizer": "random", "warm_start": "none"},
        "defaults": lambda: {"optimizer": "random", "warm_start": "defaults"},
        "smac": lambda: {"optimizer": "smac", "warm_start": "none"},
        "smac+defaults": lambda: {"optimizer": "smac", "warm_start": "defaults"},
        "smac+knn": lambda: {"optimizer": "smac", "warm_start": knn()},
        "smac+portfolio": lambda: {"optimizer": "smac", "warm_start": PortfolioWarmStarter(db, exclude=[task])},
        "smac+knn-portfolio": lambda: {"optimizer": "smac", "warm_start": PortfolioWarmStarter(
            db, exclude=[task], neighbors=PORTFOLIO_NEIGHBORS)},
        "smac+box": lambda: {"optimizer": "smac", "warm_start": "none", "prune": BoxPruner(db, exclude=(task,))},
        "optuna": lambda: {"optimizer": "optuna", "warm_start": "none"},
        "optuna+knn": lambda: {"optimizer": "optuna", "warm_start": knn()},
        "optuna+portfolio": lambda: {"optimizer": "optuna", "warm_start": PortfolioWarmStarter(db, exclude=[task])},
        "rgpe": lambda: {"optimizer": "smac", "warm_start": "none", "transfer": rgpe()},
        "tstr": lambda: {"optimizer": "smac", "warm_start": "none", "transfer": rgpe("tstr")},
        "rgpe+knn": lambda: {"optimizer": "smac", "warm_start": knn(), "transfer": rgpe()},
        "optuna+rgpe": lambda: {"optimizer": "optuna", "warm_start": "none", "transfer": rgpe()},
        "smac+predictor": lambda: {"optimizer": "smac", "warm_start": PredictorWarmStarter(
            db, exclude=predictor_fold(db, task))},
        "pmf": lambda: {"optimizer": "smac", "warm_start": "none", "transfer": PMFTransfer(db, exclude=[task])},
        "optuna+pmf": lambda: {"optimizer": "optuna", "warm_start": "none", "transfer": PMFTransfer(db, exclude=[task])},
        "guarded": lambda: {"optimizer": "smac", "warm_start": "none", "transfer": guarded()},
        "portfolio+guarded": lambda: {"optimizer": "smac", "warm_start": PortfolioWarmStarter(db, exclude=[task]),
                                      "transfer": guarded()},
        "portfolio10+guarded": lambda: {"optimizer": "smac", "warm_start": PortfolioWarmStarter(db, exclude=[task]),
                                        "transfer": guarded(), "n_initial": 10},
        "knn10+guarded": lambda: {"optimizer": "smac", "warm_start": knn(), "transfer": guarded(), "n_initial": 10},
    }
    return table[method]()


def predictor_fold(db: Any, task: str) -> list[str]:
    """The tasks of ``task``'s fold (every fifth task of the seeded order): what its
    predictor warm start leaves out."""
    names = process_cached("all_tasks", lambda: choose_tasks(db, None))
    fold = names.index(task) % PREDICTOR_FOLDS
    return [t for i, t in enumerate(names) if i % PREDICTOR_FOLDS == fold]


def fit_predictor_fold(fold: int) -> int:
    """Fit (into the on-disk cache) the predictor that leaves fold ``fold`` out."""
    warnings.simplefilter("ignore")
    from autometa.warmstart import PredictorWarmStarter

    db = shipped_db()
    names = process_cached("all_tasks", lambda: choose_tasks(db, None))
    PredictorWarmStarter(db, exclude=predictor_fold(db, names[fold])).predictor(METRIC, "binary")
    return fold


def _run_after(_dependency: Any, *args: Any) -> dict[str, Any]:
    return run_one(*args)


def choose_tasks(db: Any, max_tasks: int | None) -> list[str]:
    """The complete classification tasks in a fixed seeded order: ``--max-tasks N`` takes
    a prefix, so a larger study keeps the tasks of a smaller one."""
    names = classification_tasks(db, METRIC)
    order = np.random.default_rng(0).permutation(len(names))
    picked = [names[i] for i in order]
    return picked[:max_tasks] if max_tasks else picked


def _evaluator(task: str) -> Any:
    """The task's replay objective and its pool's best and worst stored scores (once per
    worker process and task)."""

    def make() -> tuple[Any, float, float]:
        from autometa.evaluation import ReplayEvaluator
        from autometa.spaces import get_space

        db = shipped_db()
        kind = str(db.tasks().loc[task, "problem_type"])
        ev = ReplayEvaluator.from_metadb(db, task, get_space(kind, seed=0), metric=METRIC)
        stored = [row["scores"].get(METRIC, np.nan) for row in db.scores(task).values() if row["status"] == "ok"]
        stored = np.asarray([s for s in stored if s is not None and np.isfinite(s)], dtype=float)
        return ev, float(stored.max()), float(stored.min())

    return process_cached(("replay", task), make)


def _metafeatures(task: str) -> dict[str, float]:
    return process_cached(("mf", task), lambda: {k: float(v) for k, v in shipped_db().metafeatures().loc[task].items()
                                                 if pd.notna(v)})


def run_one(method: str, task: str, seed: int, budget: int) -> dict[str, Any]:
    """One (method, held-out task, seed) run of ``autometa.tune`` on the replay objective."""
    warnings.simplefilter("ignore")
    import threadpoolctl

    from autometa import tune

    threadpoolctl.threadpool_limits(1)
    db = shipped_db()
    ev, best, worst = _evaluator(task)
    data = stored_task(task, seed, METRIC, time_budget_s=1e6)
    mf = _metafeatures(task)
    kwargs = tune_kwargs(method, db, task)
    n_initial = kwargs.pop("n_initial", 25)
    trials: list[dict[str, Any]] = []
    last = {"elapsed": 0.0, "exact": ev.n_exact}

    def on_trial(p: Any) -> None:
        r = p.record
        trials.append({"score": float(r.scores[METRIC]) if r.ok else None, "fit": float(r.fit_time_s or 0.0),
                       "overhead": p.elapsed_s - last["elapsed"], "exact": int(ev.n_exact > last["exact"])})
        last["elapsed"], last["exact"] = p.elapsed_s, ev.n_exact

    t0 = time.perf_counter()
    result = tune(data, metadb=db, n_trials=budget, time_budget_s=1e6, metafeatures=mf, evaluator=ev, refit=False,
                  n_initial=n_initial, callbacks=[on_trial], start_time=t0, **kwargs)
    wall = time.perf_counter() - t0
    return {"method": method, "task": task, "seed": seed, "n_trials": len(trials),
            "scores": json.dumps([None if t["score"] is None else round(t["score"], 6) for t in trials]),
            "fit_s": json.dumps([round(t["fit"], 4) for t in trials]),
            "overhead_s": json.dumps([round(t["overhead"], 4) for t in trials]),
            "exact": json.dumps([t["exact"] for t in trials]), "pool_best": round(best, 6),
            "pool_worst": round(worst, 6), "setup": json.dumps(result.setup, default=str), "wall_s": round(wall, 3)}


def zero_shot_one(task: str) -> dict[str, Any]:
    """The replayed score of each warm starter's first suggestion, of its first
    meta-learned suggestion (source other than ``default``), of the task's package default
    (as ``tune`` proposes it) and of the stored package default (the fixed design's first
    configuration of the first family)."""
    warnings.simplefilter("ignore")
    from autometa.spaces import FAMILIES, default_initial_configs, fixed_design, get_space
    from autometa.warmstart import KNNWarmStarter, PortfolioWarmStarter

    db = shipped_db()
    ev, best, worst = _evaluator(task)
    data = stored_task(task, 0, METRIC)
    mf = _metafeatures(task)
    space = get_space(str(data.problem_type), seed=0)

    def score(config: Any) -> float:
        res = ev.evaluate(config)
        return float(res.scores[METRIC]) if res.ok else float("nan")

    n_exact = ev.n_exact
    row: dict[str, Any] = {"task": task, "pool_best": best, "pool_worst": worst,
                           "default": score(default_initial_configs(space, data)[0]),
                           "default_stored_exactly": ev.n_exact > n_exact,
                           # the fixed design's first point: the package default as stored (class weights unset)
                           "stored_default": score(fixed_design("binary", next(iter(FAMILIES)), n=1)[0])}
    starters = {"knn": KNNWarmStarter(db, exclude=[task]), "portfolio": PortfolioWarmStarter(db, exclude=[task]),
                "knn-portfolio": PortfolioWarmStarter(db, exclude=[task], neighbors=PORTFOLIO_NEIGHBORS)}
    for name, starter in starters.items():
        sugg = starter.suggest(data, space, 25, metafeatures=mf)
        learned = next((s for s in sugg if s.source != "default"), None)
        row[f"{name}:first"] = score(sugg[0].config)
        row[f"{name}:first_source"] = sugg[0].source
        row[f"{name}:learned"] = score(learned.config) if learned is not None else float("nan")
    return row


# -- reporting ------------------------------------------------------------------------------


def _regret_curves(raw: pd.DataFrame, budget: int) -> pd.DataFrame:
    """One row per run: best-so-far normalized regret after each trial (padded with the
    last value when a run stopped early) and the cumulative seconds."""
    reg, secs = [], []
    for r in raw.itertuples():
        s = np.array([np.nan if v is None else v for v in json.loads(r.scores)], dtype=float)
        span = max(r.pool_best - r.pool_worst, 1e-12)
        g = np.clip((r.pool_best - s) / span, 0.0, 1.0)
        g = np.minimum.accumulate(np.nan_to_num(g, nan=1.0)) if len(g) else np.ones(1)
        g = np.concatenate([g, np.full(max(0, budget - len(g)), g[-1])])[:budget]
        t = np.cumsum(np.array(json.loads(r.fit_s)) + np.maximum(np.array(json.loads(r.overhead_s)), 0.0))
        reg.append(g)
        secs.append(t)
    out = raw[["method", "task", "seed"]].copy()
    out["regret"] = reg
    out["seconds"] = secs
    return out


def _worse_than_every_seed(mine: pd.Series, base: pd.Series, *, own: bool) -> float | None:
    """The noise-aware negative transfer: the share of task-seeds whose regret is above that
    of every seed of the reference on the same task (tasks with at least two reference
    seeds). For the reference itself (``own``), each seed against its other seeds: how
    often cold SMAC is "worse than cold SMAC" by chance, the floor of the plain share."""
    per_task = base.groupby(level=0)
    if per_task.size().max() < 2:
        return None
    hits = []
    for (task, seed), v in mine.items():
        others = per_task.get_group(task)
        if own:
            others = others.drop(index=(task, seed))
        if len(others) >= (1 if own else 2):
            hits.append(v > others.max() + 1e-12)
    return float(np.mean(hits)) if hits else None


def _distinct(scores: str, fit_s: str) -> int:
    """Distinct stored configurations a run replayed, told apart by (score, stored fit
    time): proposals that fell on the same stored point share both (a plateau)."""
    return len(set(zip(json.loads(scores), json.loads(fit_s), strict=True)))


def _time_regret(reg: np.ndarray, secs: np.ndarray, s: float) -> float:
    k = int(np.searchsorted(secs, s, side="right"))
    return float(reg[min(k, len(reg)) - 1]) if k > 0 else 1.0


def report(raw: pd.DataFrame, budget: int, name: str, zs: pd.DataFrame | None = None,
           core: tuple[str, ...] = CORE_METHODS) -> str:
    """The markdown report (and PNGs): the core methods on every task-seed they all ran,
    then, when other methods ran too, all methods on the task-seeds every one ran."""
    present = [m for m in ALL_METHODS if m in set(raw.method)]
    core = [m for m in core if m in present]
    if not core or core == present:
        return _section(raw, present, budget, results_path(name, ".png"), zs)
    text = _section(raw, core, budget, results_path(name, ".png"), zs)
    return text + "\n" + _section(raw, present, budget, results_path(name, "_all_methods.png"), None, level="##")


def _section(raw: pd.DataFrame, methods: list[str], budget: int, png: Path, zs: pd.DataFrame | None,
             level: str = "#") -> str:
    plt = plt_agg()
    raw = raw[raw.method.isin(methods)]
    # only the (task, seed) pairs every method has run: all methods see the same runs
    pairs = raw.groupby(["task", "seed"]).method.nunique()
    full = set(pairs[pairs == len(methods)].index)
    raw = raw[[(t, s) in full for t, s in zip(raw.task, raw.seed, strict=True)]]
    runs = _regret_curves(raw, budget)
    per_seed = {m: pd.DataFrame(np.stack(g.regret.to_list()), index=pd.MultiIndex.from_frame(g[["task", "seed"]]))
                for m, g in runs.groupby("method")}
    curves = {m: per_seed[m].groupby(level=0).mean() for m in methods}
    tasks = sorted(curves[methods[0]].index)
    n_seeds = int(raw.seed.nunique())
    n_pairs = len(full)
    seeds_text = (f"x {n_seeds} seeds" if n_pairs == len(tasks) * n_seeds else
                  f"({n_pairs} task-seeds: {n_seeds} seeds on {n_pairs - len(tasks)} tasks, 1 on the others)")
    budgets = [b for b in BUDGETS if b <= budget]
    table = pd.DataFrame({f"regret@{b}": {m: fmt_ci(curves[m][b - 1]) for m in methods} for b in budgets})
    ranks = pd.DataFrame({f"rank@{b}": pd.DataFrame({m: curves[m][b - 1] for m in methods}).rank(axis=1).mean()
                          for b in budgets}).round(2)

    ref = REFERENCE if REFERENCE in per_seed else methods[0]
    base = per_seed[ref]
    summary: dict[str, dict[str, Any]] = {}
    for m in methods:
        mine = per_seed[m].loc[base.index]
        target = base[budget - 1].to_numpy()
        hit = mine.to_numpy() <= target[:, None] + 1e-12
        first = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)
        med = float(np.median(first))
        boot = np.median(np.random.default_rng(0).choice(first, size=(2000, len(first))), axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])

        def trials(v: float) -> str:
            return f"{v:.0f}" if np.isfinite(v) else f">{budget}"

        mean_hit = np.flatnonzero(curves[m].mean().to_numpy() <= float(curves[ref][budget - 1].mean()) + 1e-12)
        row: dict[str, Any] = {
            f"median trials to reach {ref}@{budget}": f"{trials(med)} [{trials(lo)}, {trials(hi)}]",
            f"share reaching it in {budget}": f"{np.isfinite(first).mean():.0%}",
            "mean curve reaches the mean at": (f"{mean_hit[0] + 1}" if len(mean_hit) else f">{budget}"),
        }
        for b in (10, 25):
            if b > budget:
                continue
            if m != ref:
                worse = (mine[b - 1] > base[b - 1] + 1e-12).to_numpy(dtype=float)
                _, wlo, whi = bootstrap_ci(worse)
                row[f"worse than {ref} @{b}"] = f"{worse.mean():.0%} [{wlo:.0%}, {whi:.0%}]"
            floor = _worse_than_every_seed(mine[b - 1], base[b - 1], own=m == ref)
            if floor is not None:
                row[f"worse than every {ref} seed @{b}"] = f"{floor:.0%}"
        summary[m] = row
    g = raw.groupby("method")
    over = {m: np.mean([np.sum(json.loads(o)) for o in g.get_group(m).overhead_s]) for m in methods}
    exact = {m: np.nanmean([np.mean(json.loads(e)) if json.loads(e) else np.nan for e in g.get_group(m).exact])
             for m in methods}
    timing = pd.DataFrame({
        "wall s/run (mean)": {m: round(float(g.get_group(m).wall_s.mean()), 2) for m in methods},
        "overhead s/run": {m: round(float(over[m]), 2) for m in methods},
        "stored fit s/run": {m: round(float(np.mean([np.sum(json.loads(f)) for f in g.get_group(m).fit_s])), 1)
                             for m in methods},
        "proposals stored exactly": {m: f"{exact[m]:.0%}" for m in methods},
        f"distinct stored configurations replayed (of {budget})": {m: round(float(np.mean(
            [_distinct(sc, f) for sc, f in zip(g.get_group(m).scores, g.get_group(m).fit_s, strict=True)])), 1)
            for m in methods},
    })
    time_rows = {}
    for m in methods:
        rm = runs[runs.method == m]
        time_rows[m] = {f"{s} s": round(float(np.mean([_time_regret(r, t, s) for r, t in
                                                       zip(rm.regret, rm.seconds, strict=True)])), 3)
                        for s in SECONDS}

    lines = [
        f"{level} Warm starts and surrogate transfer through `autometa.tune`, leave-one-task-out (table mode)"
        + ("" if level == "#" else f": all {len(methods)} methods"),
        "",
        f"{len(tasks)} classification tasks of the shipped meta-dataset {seeds_text}, {budget} trials per run. "
        "Each run is one `autometa.tune` call with the shipped optimizer, warm starter, pruner or transfer "
        "(excluding the held-out task) and a `ReplayEvaluator` over the held-out task's 256 stored evaluations "
        "(3-fold CV balanced accuracy, at most 1,000 rows). A proposal that is not stored replays the nearest "
        "stored configuration of its family: every score is a real measurement (a per-task surrogate fitted on 32 "
        "points per family would add its own error), at the price of plateaus between stored points. "
        "Normalized regret of the best so far (0 = best stored configuration, 1 = worst; a failure is the worst), "
        "mean over tasks (seeds averaged) [95% bootstrap interval]. Methods: experiments/transfer_benchmark.py.",
        "",
        table.to_markdown(),
        "",
        "Average rank across methods (1 = best):",
        "",
        ranks.to_markdown(),
        "",
        f"Per task-seed: trials needed to reach cold SMAC's regret after {budget} trials on the same task and seed "
        f"(median over task-seeds [95% bootstrap interval]; '>{budget}' when most never do; cold SMAC's own value is "
        f"the trial its final best was found); the trial at which the mean regret curve first reaches cold SMAC's mean regret after {budget} "
        "trials; and the share of task-seeds where a method is worse than cold SMAC at "
        "10 and 25 trials (negative transfer) [95% bootstrap interval over task-seeds]:",
        "",
        pd.DataFrame(summary).T.to_markdown(),
        "",
        "Mean regret against time (each trial costs the stored fit time of the replayed configuration plus the "
        "run's measured overhead for it, setup included):",
        "",
        pd.DataFrame(time_rows).T.to_markdown(),
        "",
        "Time per run on this machine (Dask worker processes sharing its cores with other jobs) and the share of proposals "
        "that were stored configurations (the rest replayed their nearest stored neighbour), and how many distinct "
        "stored configurations a run's trials replayed (fewer: more trials fell on a plateau already visited):",
        "",
        timing.to_markdown(),
        "",
        "Reading it: a trial that replays a stored configuration already visited brings no new score, so the "
        "replay penalizes local search around the incumbent (SMAC's, and RGPE's through SMAC), which would see a "
        "slightly different real score there; random search rarely revisits. With `transfer=` and no warm start, "
        "SMAC's own 5 random initial configurations come first, so RGPE and cold SMAC share their first 5 trials. "
        "The warm starts evaluate their 25 suggestions before the optimizer proposes anything (`n_initial=25`).",
    ]
    if zs is not None:
        lines += _zero_shot_lines(zs.loc[zs.index.intersection(tasks)])
    lines += ["", machine_line()]

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(1, budget + 1)
    for m in methods:
        c = curves[m].to_numpy()
        mean = c.mean(axis=0)
        half = 1.96 * c.std(axis=0, ddof=1) / np.sqrt(len(c)) if len(c) > 1 else np.zeros_like(mean)
        style = "--" if m in ("random", "defaults") else "-"
        axes[0].plot(x, mean, style, label=m)
        axes[0].fill_between(x, np.maximum(mean - half, 1e-4), mean + half, alpha=0.1)
        axes[1].plot(SECONDS, [time_rows[m][f"{s} s"] for s in SECONDS], style + "o", ms=3, label=m)
    for ax, xl in zip(axes, ("trials", "seconds (stored fit time + measured overhead)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel("mean normalized regret")
    axes[0].set_title(f"autometa.tune on replayed tasks: {len(tasks)} tasks, {n_pairs} task-seeds (95% CI)")
    axes[1].legend(ncol=2)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return "\n".join(lines) + "\n"


def _zero_shot_lines(zs: pd.DataFrame) -> list[str]:
    if zs.empty:
        return []
    span = (zs.pool_best - zs.pool_worst).clip(lower=1e-12)

    def regret(col: str) -> float:
        return float(((zs.pool_best - zs[col].fillna(zs.pool_worst)) / span).mean())

    rows = {}
    for method in ("knn", "portfolio", "knn-portfolio"):
        for which, label in (("first", "first suggestion"), ("learned", "first meta-learned suggestion")):
            row = {}
            for ref, ref_label in (("stored_default", "stored package default"), ("default", "task's default")):
                d = zs[f"{method}:{which}"].fillna(-1.0) - zs[ref].fillna(-1.0)
                row[f"better than the {ref_label}"] = f"{(d > 1e-12).mean():.0%}"
                row[f"tie ({ref_label})"] = f"{(d.abs() <= 1e-12).mean():.0%}"
            row["mean regret"] = f"{regret(f'{method}:{which}'):.3f}"
            rows[f"{method}, {label}"] = row
    share_default_first = {m: (zs[f"{m}:first_source"] == "default").mean() for m in ("knn", "portfolio", "knn-portfolio")}
    not_stored = 1.0 - zs["default_stored_exactly"].astype(bool).mean()
    return ["", f"Zero-shot, {len(zs)} held-out tasks: the replayed score of each warm starter's first suggestion and "
            "of its first meta-learned one (source other than the package default) against the stored package "
            "default (histogram gradient boosting's defaults, the fixed design's first configuration; mean regret "
            f"{regret('stored_default'):.3f}) and against the task's default as `tune` proposes it (mean regret "
            f"{regret('default'):.3f}). On {not_stored:.0%} of the tasks the task's default sets "
            "`class_weight='balanced'` (balanced accuracy on imbalanced classes), which the fixed design did not "
            "store, so it replays the nearest stored configuration of its family; this holds for every family's "
            "default in the defaults warm start too. The first suggestion is the package default itself on "
            + ", ".join(f"{m} {v:.0%}" for m, v in share_default_first.items()) + " of the tasks "
            "(PortfolioWarmStarter puts the default first by design; KNNWarmStarter does when the task is farther "
            "from the meta-database than any stored task is from its nearest neighbour).", "",
            pd.DataFrame(rows).T.to_markdown()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--max-tasks", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="Address of a running Dask scheduler (default: a LocalCluster).")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-zero-shot", action="store_true", help="Skip the zero-shot jobs.")
    ap.add_argument("--core", default="default", choices=sorted(CORES),
                    help="The methods of the report's first section (default: the first study's).")
    ap.add_argument("--name", default="transfer_benchmark", help="Stem of the output files under experiments/results/.")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    raw_path, zs_path = results_path(args.name, "_raw.csv"), results_path(args.name, "_zeroshot.csv")
    methods = args.methods.split(",")
    unknown = set(methods) - set(ALL_METHODS)
    if unknown:
        sys.exit(f"unknown methods {sorted(unknown)}; choose from {', '.join(ALL_METHODS)}")
    raw = pd.read_csv(raw_path) if raw_path.is_file() else pd.DataFrame()
    if not args.report_only:
        from dask.distributed import as_completed

        t0 = time.perf_counter()
        db = shipped_db()
        names = choose_tasks(db, args.max_tasks)
        if TRANSFER_METHODS & set(methods):  # fit the stored surrogates once, before the workers read the cache
            from autometa.transfer import fit_surrogate_store

            fit_surrogate_store(db, metric=METRIC, problem_type="binary")
        print(f"{len(names)} tasks ready in {time.perf_counter() - t0:.0f} s", flush=True)
        done = set(zip(raw.method, raw.task, raw.seed, strict=True)) if len(raw) else set()
        zs_done = set(pd.read_csv(zs_path).task) if zs_path.is_file() else set()
        jobs = [(m, t, s) for s in range(args.seeds) for t in names for m in methods if (m, t, s) not in done]
        client = dask_client(args.workers, args.scheduler)
        futures = {client.submit(zero_shot_one, t, pure=False): ("zero-shot", t, 0) for t in names
                   if t not in zs_done and not args.no_zero_shot}
        # the predictor warm start's fold fits (minutes each) are jobs too; its runs wait for their fold's
        all_names = choose_tasks(db, None)
        fold_fits = {}
        if PREDICTOR_METHODS & {m for m, _, _ in jobs}:
            fold_fits = {f: client.submit(fit_predictor_fold, f, pure=False) for f in range(PREDICTOR_FOLDS)}
            futures |= {fut: ("predictor-fit", str(f), 0) for f, fut in fold_fits.items()}
        for m, t, s in jobs:
            if m in PREDICTOR_METHODS:
                dep = fold_fits[all_names.index(t) % PREDICTOR_FOLDS]
                futures[client.submit(_run_after, dep, m, t, s, args.budget, pure=False)] = (m, t, s)
            else:
                futures[client.submit(run_one, m, t, s, args.budget, pure=False)] = (m, t, s)
        print(f"{len(jobs)} runs and {len(futures) - len(jobs)} zero-shot jobs on "
              f"{len(client.scheduler_info()['workers'])} Dask workers", flush=True)
        n = 0
        for fut in as_completed(list(futures)):
            n += 1
            what = futures[fut]
            try:
                row = fut.result()
            except Exception:  # noqa: BLE001 - one failed run must not lose the others; it reruns next time
                print(f"FAILED {what}:\n{''.join(traceback.format_exception(fut.exception()))}", flush=True)
                continue
            if what[0] == "predictor-fit":
                print(f"predictor fold {row} fitted, {time.perf_counter() - t0:.0f} s", flush=True)
                continue
            path = zs_path if what[0] == "zero-shot" else raw_path
            pd.DataFrame([row]).to_csv(path, mode="a", header=not path.is_file(), index=False)
            if n % 20 == 0 or n == len(futures):
                print(f"{n}/{len(futures)} done, {time.perf_counter() - t0:.0f} s", flush=True)
        client.close()
        raw = pd.read_csv(raw_path) if raw_path.is_file() else pd.DataFrame()
    if raw.empty:
        sys.exit("no runs yet")
    raw = raw.drop_duplicates(["method", "task", "seed"], keep="last")
    zs = pd.read_csv(zs_path).drop_duplicates("task", keep="last").set_index("task") if zs_path.is_file() else None
    text = report(raw, args.budget, args.name, zs, core=CORES[args.core])
    if args.core == "issue15":
        text = ISSUE15_PREAMBLE + "\n" + text
    results_path(args.name, ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
