"""What the experiments share: the results folder, machine information, the matplotlib
set-up, bootstrap intervals, the Dask client, the shipped meta-database in memory and the
rebuilt data of a stored task. Only public autometa names are used here, as in every
experiment.

    from common import RESULTS, bootstrap_ci, dask_client, machine_info, plt_agg, shipped_db, stored_task
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
METADATA = ROOT / "metadata"
if str(HERE) not in sys.path:  # so that experiments import each other (suite, build_metadb)
    sys.path.insert(0, str(HERE))

_PROCESS_CACHE: dict[Any, Any] = {}


def results_path(name: str, suffix: str) -> Path:
    """``experiments/results/<name><suffix>``, the folder created if needed."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}{suffix}"


def write_report(name: str, lines: list[str]) -> str:
    """``experiments/results/<name>.md`` from the report's lines, printed too; its text."""
    text = "\n".join(lines) + "\n"
    results_path(name, ".md").write_text(text)
    print(text)
    return text


def machine_info() -> dict[str, Any]:
    """Where a study ran: CPU count, platform, Python and the versions of the packages that
    matter for timings."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("autometa", "numpy", "scikit-learn", "smac", "optuna", "ConfigSpace", "dask", "distributed"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_1min_at_start": None if load is None else round(load, 2), "versions": versions}


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line of markdown naming the machine."""
    info = info or machine_info()
    v = ", ".join(f"{k} {val}" for k, val in info["versions"].items())
    return f"Machine: {info['cpus']} CPUs, {info['platform']}, Python {info['python']}; {v}."


def plt_agg() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, with the experiments' style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 120, "savefig.dpi": 120, "axes.grid": True, "grid.alpha": 0.3,
                         "legend.fontsize": 7})
    return plt


def bootstrap_ci(x: Any, *, n: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``x`` and its percentile bootstrap interval."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    boot = np.random.default_rng(seed).choice(x, size=(n, len(x))).mean(axis=1)
    tail = 50 * (1 - level)
    return float(x.mean()), float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


def fmt_ci(x: Any, digits: int = 3) -> str:
    mean, lo, hi = bootstrap_ci(x)
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def fmt_share_ci(x: Any) -> str:
    """The share of true values with its bootstrap interval, as percentages."""
    mean, lo, hi = bootstrap_ci(np.asarray(x, dtype=float))
    return f"{mean:.0%} [{lo:.0%}, {hi:.0%}]"


def dask_client(workers: int = 2, scheduler: str | None = None) -> Any:
    """A client of a running scheduler, or of a LocalCluster of single-threaded worker
    processes (which inherit this process's environment and niceness)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None))


def process_cached(key: Any, make: Callable[[], Any]) -> Any:
    """``make()`` once per process (e.g. once per Dask worker), then the same object."""
    if key not in _PROCESS_CACHE:
        _PROCESS_CACHE[key] = make()
    return _PROCESS_CACHE[key]


def shipped_db() -> Any:
    """An in-memory SQL meta-database holding the shipped meta-dataset of this checkout
    (metadata/, the data the experiments rebuild tasks from), loaded once per process
    through the public loader (``shipped=False``: not the package's copy on first read)."""

    def make() -> Any:
        from autometa.metadb import SQLMetaDB, load_shipped

        db = SQLMetaDB("sqlite://", shipped=False)
        load_shipped(db, METADATA)
        return db

    return process_cached("shipped_db", make)


def classification_tasks(db: Any, metric: str = "balanced_accuracy", min_complete: float = 0.9) -> list[str]:
    """The stored classification tasks with ``metric`` scores for at least ``min_complete``
    of the stored configurations, sorted."""
    return complete_tasks(db, metric, ("binary", "multiclass"), min_complete)


def complete_tasks(db: Any, metric: str, problem_types: tuple[str, ...], min_complete: float = 0.9) -> list[str]:
    """The stored tasks of ``problem_types`` with ``metric`` scores for at least
    ``min_complete`` of the stored configurations, sorted."""
    tasks = db.tasks()
    matrix = db.performance_matrix(metric)
    kind = [t for t in matrix.index if tasks.loc[t, "problem_type"] in problem_types]
    return sorted(t for t in kind if matrix.loc[t].notna().mean() >= min_complete)


def stored_task(name: str, seed: int, metric: str = "balanced_accuracy", time_budget_s: float = 3600) -> Any:
    """The :class:`autometa.Task` of a stored task with the very rows the meta-database
    was built on (the suite's table, subsampled to the manifest's row cap as build_metadb
    does)."""
    from build_metadb import _subsample
    from suite import load_suite, load_task_frame

    from autometa import Task

    def frame() -> tuple[Any, str, str]:
        suite = process_cached("suite", lambda: load_suite().set_index("task_id"))
        row = {"task_id": name, **suite.loc[name].to_dict()}
        df, target, problem_type = load_task_frame(row)
        manifest = json.loads((METADATA / "MANIFEST.json").read_text())
        return _subsample(df, target, problem_type, int(manifest.get("row_cap", 1000))), target, problem_type

    df, target, problem_type = process_cached(("frame", name), frame)
    return Task(df, label=target, problem_type=problem_type, seed=seed, metric=metric, drop_id_columns=False,
                time_budget_s=time_budget_s, name=name)
