"""Build the shipped meta-dataset: a fixed design of configurations per model family,
evaluated on every task of the curated suite (metadata/suite.csv), plus each task's
meta-features.

    python experiments/build_metadb.py [--workers 2 | --scheduler tcp://HOST:PORT] [--max-tasks N]
                                       [--families a,b] [--time-limit 60]

The tasks run on a Dask client: a local cluster of ``--workers`` single-threaded worker
processes by default, or the cluster of ``--scheduler``. Each task is one Dask task; its
configurations are evaluated there, each in its own killable evaluation process.

Protocol: 3-fold (stratified) CV with seed 0 on at most ``--row-cap`` rows (a seeded,
stratified subsample; the cap is recorded per task), each configuration in a killable
worker process with a per-trial time limit. Resumable at the granularity of one
(task, family): results are written to metadata/evaluations/<task>.csv after each family,
so an interrupted build loses at most one family of one task per worker. Progress and
time go to the log and to metadata/MANIFEST.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from common import dask_client  # noqa: E402
from suite import load_suite, load_task_frame  # noqa: E402

from autometa import Task, package_versions  # noqa: E402
from autometa.evaluation import Evaluator  # noqa: E402
from autometa.metrics import tracked_metrics  # noqa: E402
from autometa.spaces import (  # noqa: E402
    FAMILIES,
    SPACE_VERSION,
    config_hash,  # noqa: E402
    fixed_design,
)

ROOT = Path(__file__).resolve().parents[1] / "metadata"
N_CONFIGS = 32
N_FOLDS = 3
SEED = 0
log = logging.getLogger("build_metadb")


def slug(task_id: str) -> str:
    return task_id.replace("/", "__")


def designs() -> dict[tuple[str, str], list[dict]]:
    """(problem kind, family) -> the fixed design; identical on every run."""
    out = {}
    for kind, pt in (("classification", "binary"), ("regression", "regression")):
        for fam in FAMILIES:
            out[(kind, fam)] = fixed_design(pt, fam, n=N_CONFIGS, seed=SEED)
    return out


def write_configurations(design: dict[tuple[str, str], list[dict]]) -> None:
    rows = []
    for (kind, fam), configs in design.items():
        for i, c in enumerate(configs):
            rows.append({"hash": config_hash(c), "kind": kind, "family": fam, "design_index": i,
                         "config_json": json.dumps(c, sort_keys=True)})
    pd.DataFrame(rows).to_csv(ROOT / "configurations.csv", index=False)


def _subsample(df: pd.DataFrame, target: str, problem_type: str, cap: int) -> pd.DataFrame:
    if len(df) <= cap:
        return df
    strat = df[target] if problem_type != "regression" else None
    try:
        keep, _ = train_test_split(df, train_size=cap, random_state=SEED, stratify=strat)
    except ValueError:  # a class too small to stratify: plain sample
        keep = df.sample(cap, random_state=SEED)
    return keep.sort_index()


def run_task(row: dict, design: dict, families: list[str], row_cap: int, time_limit: float) -> dict:
    """Evaluate every missing (family, configuration) of one task; a task that fails is
    logged and skipped, never stopping the build."""
    try:
        return _run_task(row, design, families, row_cap, time_limit)
    except Exception as exc:  # noqa: BLE001 - one bad task must not lose the others
        return {"task_id": row["task_id"], "skipped": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _run_task(row: dict, design: dict, families: list[str], row_cap: int, time_limit: float) -> dict:
    """Evaluate every missing (family, configuration) of one task; returns a summary."""
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    out_path = ROOT / "evaluations" / f"{slug(row['task_id'])}.csv"
    done = pd.read_csv(out_path) if out_path.exists() else pd.DataFrame()
    done_fams = set(done["family"]) if not done.empty else set()
    todo = [f for f in families if f not in done_fams]
    mf_path = ROOT / "metafeatures" / f"{slug(row['task_id'])}.json"
    if not todo and mf_path.exists():
        return {"task_id": row["task_id"], "skipped": True}
    df, target, problem_type = load_task_frame(row)
    n_full = len(df)
    df = _subsample(df, target, problem_type, row_cap)
    task = Task(df, label=target, problem_type=problem_type, seed=SEED, drop_id_columns=False)
    kind = "regression" if task.problem_type == "regression" else "classification"

    if not mf_path.exists():
        try:
            from autometa.metafeatures import EXTRACTOR_VERSION, extract

            mf = {"extractor_version": EXTRACTOR_VERSION, "n_rows_full": n_full,
                  "values": {k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v))
                             for k, v in extract(task).items()}}
            mf_path.parent.mkdir(parents=True, exist_ok=True)
            mf_path.write_text(json.dumps(mf, sort_keys=True))
        except ImportError:
            pass

    k = min(N_FOLDS, task.n_splits)
    cv = (StratifiedKFold if task.is_classification else KFold)(n_splits=k, shuffle=True, random_state=SEED)
    labels = task.y.astype(str) if task.is_classification else None  # numeric class codes stratify as labels
    splits = list(cv.split(np.arange(len(task.y)), labels))
    metrics = [m.name for m in tracked_metrics(task.problem_type)]
    rows = [] if done.empty else done.to_dict("records")
    with Evaluator(task, time_limit_s=time_limit, splits=splits, n_jobs=1) as ev:
        for fam in todo:
            for i, cfg in enumerate(design[(kind, fam)]):
                res = ev.evaluate(cfg)
                rows.append({
                    "config_hash": config_hash(cfg), "family": fam, "design_index": i, "status": res.status,
                    "fit_time_s": round(res.fit_time_s, 4),
                    **{m: res.scores.get(m) for m in metrics},
                    "fold_scores": ";".join(f"{s:.6g}" for s in res.fold_scores),
                    "error": (res.error or "")[:200],
                })
            tmp = out_path.with_suffix(".tmp")
            out_path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(tmp, index=False)
            tmp.replace(out_path)
    return {"task_id": row["task_id"], "n_rows_used": len(task.y), "n_rows_full": n_full, "folds": k,
            "families": todo, "seconds": round(time.perf_counter() - t0, 1), "skipped": False}


def write_manifest(suite: pd.DataFrame, families: list[str], row_cap: int, time_limit: float, seconds: float) -> dict:
    files = sorted((ROOT / "evaluations").glob("*.csv"))
    n_eval, complete = 0, 0
    for f in files:
        d = pd.read_csv(f, usecols=["family"])
        n_eval += len(d)
        complete += int(set(d.family) >= set(families))
    manifest_path = ROOT / "MANIFEST.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest = {
        "name": "autometa-suite",
        "description": "Own runs: a fixed design per model family on the curated suite of real tasks (metadata/suite.csv).",
        "sources": sorted(set(suite.source)),
        "protocol": {"resampling": f"{N_FOLDS}-fold CV (stratified for classification), seed {SEED}",
                     "row_cap": row_cap, "per_trial_time_limit_s": time_limit,
                     "design": f"{N_CONFIGS} per family: the package default + scrambled Sobol points (autometa.spaces.fixed_design)",
                     "space_version": SPACE_VERSION},
        "counts": {"tasks_in_suite": int(len(suite)), "tasks_with_evaluations": len(files),
                   "tasks_complete": complete, "families": families, "evaluations": n_eval,
                   "tasks_with_metafeatures": len(list((ROOT / "metafeatures").glob("*.json")))},
        "versions": package_versions(),
        "build_seconds_total": round(float(old.get("build_seconds_total", 0)) + seconds, 1),
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if "tuned" in old:  # the tuned optima's entry (experiments/build_tuned.py) stays
        manifest["tuned"] = old["tuned"]
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", "--n-jobs", type=int, default=2, help="local Dask worker processes")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (instead of --workers)")
    ap.add_argument("--max-tasks", type=int, default=None)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--row-cap", type=int, default=1000)
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--order", choices=("rows", "cost"), default="rows",
                    help="rows: small tasks first; cost: cheapest first by capped rows x features x classes")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    families = [f for f in args.families.split(",") if f]
    suite = load_suite(ROOT / "suite.csv")
    if args.order == "cost":
        cost = suite.n_rows.clip(upper=args.row_cap) * suite.n_features * suite.n_classes.fillna(1).clip(lower=1)
        suite = suite.assign(_cost=cost).sort_values("_cost").drop(columns="_cost")
    else:
        suite = suite.sort_values("n_rows")
    if args.max_tasks:
        suite = suite.head(args.max_tasks)
    design = designs()
    write_configurations(design)
    t0 = time.perf_counter()
    rows = suite.to_dict("records")
    from dask.distributed import as_completed

    client = dask_client(args.workers, args.scheduler)
    log.info("building: %d tasks x %d families x %d configurations on %s", len(rows), len(families), N_CONFIGS,
             client)
    done, last = 0, time.perf_counter()
    futures = [client.submit(run_task, r, design, families, args.row_cap, args.time_limit, pure=False) for r in rows]
    for fut in as_completed(futures):
        try:
            summary = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker loses its task's unfinished family, not the build
            summary = {"task_id": "?", "error": f"{type(exc).__name__}: {exc}"[:300]}
        done += 1
        if summary.get("error"):
            log.warning("[%d/%d] %s FAILED: %s", done, len(rows), summary["task_id"], summary["error"])
        elif not summary.get("skipped"):
            log.info("[%d/%d] %s: %s rows (of %s), %s s", done, len(rows), summary["task_id"], summary["n_rows_used"],
                     summary["n_rows_full"], summary["seconds"])
        if done % 5 == 0 or done == len(rows):
            now = time.perf_counter()
            write_manifest(load_suite(ROOT / "suite.csv"), families, args.row_cap, args.time_limit, now - last)
            last = now
    client.close()
    log.info("done in %.0f s", time.perf_counter() - t0)


if __name__ == "__main__":
    main()
