"""Tuned optima for the shipped meta-dataset: a real SMAC search per suite task, started from
that task's stored fixed design, recorded as evaluations in metadata/evaluations_tuned/.

    python experiments/build_tuned.py [--n-new 64] [--kind classification] [--max-tasks N]
                                      [--workers 2 | --scheduler tcp://HOST:PORT]

Per task this runs the shipped :func:`autometa.tune` (``optimizer="smac"``, seed 0) with

- ``initial_configs`` = the task's stored fixed design (every family, design order), and
- ``evaluator`` = :class:`StoredFirstEvaluator`: a configuration stored in
  metadata/evaluations/<task>.csv gets its stored result back (exact match of the canonical
  configuration key, no fit), any other is evaluated for real by the shipped
  :class:`autometa.evaluation.Evaluator` under the build protocol.

The trials run on one Dask client for the whole build (``tune(dask_client=...)``, the
shipped parallel path): a local cluster of ``--workers`` worker processes by default, or the
cluster of ``--scheduler``; ``--workers 1`` runs them in this process's own evaluation
process instead. SMAC proposes while trials are pending.

So SMAC's model starts from the 256 stored evaluations at no cost, and ``--n-new`` real
new trials follow. The build protocol is the fixed design's: 3-fold (stratified) CV with
seed 0 on the same seeded, stratified subsample of at most 1,000 rows, 30 s per trial
(experiments/protocol_agreement.py measured how well it ranks like the live protocol;
experiments/results/protocol_agreement.md). Only the new trials are written, one CSV per
task in the shipped format plus each configuration's JSON (they are not in the fixed
design's configurations.csv); ``autometa.metadb.load_shipped`` loads them under the source
``autometa-suite-tuned``.

Resumable: each task's run directory (``--work``, default autometa-out/build_tuned/, which
git ignores) is a resumable ``tune`` run, and a task whose CSV exists is skipped. The
MANIFEST's ``tuned`` entry (protocol, counts, seconds) is rewritten after every task.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

sys.path.insert(0, str(Path(__file__).parent))
from build_metadb import N_FOLDS, SEED, _subsample, slug  # noqa: E402
from common import dask_client  # noqa: E402
from suite import load_suite, load_task_frame  # noqa: E402

from autometa import Task, package_versions, tune  # noqa: E402
from autometa.evaluation import BaseEvaluator, Evaluator, TrialResult  # noqa: E402
from autometa.metrics import tracked_metrics  # noqa: E402
from autometa.spaces import SPACE_VERSION, config_hash, config_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
META = ROOT / "metadata"
TUNED_DIR = "evaluations_tuned"
ROW_CAP = 1000
#: Why the build keeps the fixed design's cheap protocol (recorded in the MANIFEST).
PROTOCOL_DECISION = (
    "kept: on 5 classification tasks of 150-2,412 rows x 24 fixed-design configurations (3 families), the cheap "
    "protocol ranks like the live one (autometa.evaluation.make_splits on the whole table) with median Spearman "
    "0.91 (0.84 on the two tasks above the 1,000-row cap; 0.36 on a near-chance task), and the stored design it "
    "replays was measured with it; not measured above 2,412 rows (experiments/results/protocol_agreement.md)"
)
log = logging.getLogger("build_tuned")


class StoredFirstEvaluator(BaseEvaluator):
    """Stored results first, real evaluations for the rest.

    Parameters
    ----------
    stored : mapping
        Canonical configuration key (:func:`autometa.spaces.config_key`) -> the stored
        :class:`~autometa.evaluation.TrialResult` of that configuration.
    live : BaseEvaluator
        Evaluates every configuration not in ``stored``.

    Attributes
    ----------
    n_replayed, n_live : int
        How many evaluations were answered from ``stored`` / by ``live``.
    """

    def __init__(self, stored: Mapping[str, TrialResult], live: BaseEvaluator) -> None:
        self.stored = dict(stored)
        self.live = live
        self.n_replayed = 0
        self.n_live = 0

    def evaluate(self, config: Mapping[str, Any], *, time_limit_s: float | None = None,
                 deadline: float | None = None) -> TrialResult:
        hit = self.stored.get(config_key(config))
        if hit is not None:
            self.n_replayed += 1
            return hit
        self.n_live += 1
        return self.live.evaluate(config, time_limit_s=time_limit_s, deadline=deadline)

    def refit(self, config: Mapping[str, Any]) -> tuple[Any, str | None]:
        return self.live.refit(config)

    def close(self) -> None:
        self.live.close()


def stored_results(evaluations: pd.DataFrame, configs: Mapping[str, dict[str, Any]], metric: str) -> dict[str, TrialResult]:
    """The stored rows of one task as TrialResults, by configuration key (design order)."""
    out: dict[str, TrialResult] = {}
    for r in evaluations.to_dict("records"):
        cfg = configs.get(r["config_hash"])
        if cfg is None:
            continue
        ok = r["status"] == "ok" and pd.notna(r.get(metric))
        scores = {m: float(r[m]) for m in evaluations.columns if m in _METRICS and pd.notna(r[m])} if ok else {}
        folds = [float(s) for s in str(r.get("fold_scores") or "").split(";") if s and s != "nan"] if ok else []
        out[config_key(cfg)] = TrialResult(
            config=dict(cfg), status="ok" if ok else (str(r["status"]) if r["status"] != "ok" else "crash"),
            scores=scores, fold_scores=folds, fit_time_s=float(r["fit_time_s"] or 0.0),
            error=None if ok else (str(r.get("error")) if pd.notna(r.get("error")) else "stored evaluation failed"),
        )
    return out


_METRICS = ("balanced_accuracy", "accuracy", "roc_auc", "log_loss", "rmse", "mae", "r2")


def initial_design(stored: Mapping[str, TrialResult], metric: str, greater_is_better: bool,
                   per_family: int) -> list[dict[str, Any]]:
    """SMAC's initial design: the stored design, or (``per_family`` > 0) its ``per_family``
    best successful configurations of each family, best first within each family.

    A subset keeps the fixed cost per task down: SMAC 2.4's intensifier compares every new
    configuration with every rejected one (ConfigSpace equality), about 0.25 s per ask with
    256 stored configurations on this machine, so replaying all of them costs a minute per
    task before the first new trial.
    """
    if per_family <= 0:
        return [r.config for r in stored.values()]
    sign = 1.0 if greater_is_better else -1.0
    by_family: dict[str, list[TrialResult]] = {}
    for r in stored.values():
        if r.ok:
            by_family.setdefault(str(r.config["family"]), []).append(r)
    out = []
    for results in by_family.values():
        out += [r.config for r in sorted(results, key=lambda r: -sign * r.scores[metric])[:per_family]]
    return out


def build_protocol_task(row: Mapping[str, Any]) -> tuple[Task, list[tuple[np.ndarray, np.ndarray]], int]:
    """The task as the fixed design saw it (the seeded <=1,000-row subsample) and its
    3-fold splits; also the full row count."""
    df, target, problem_type = load_task_frame(row)
    n_full = len(df)
    df = _subsample(df, target, problem_type, ROW_CAP)
    task = Task(df, label=target, problem_type=problem_type, seed=SEED, drop_id_columns=False)
    k = min(N_FOLDS, task.n_splits)
    cv = (StratifiedKFold if task.is_classification else KFold)(n_splits=k, shuffle=True, random_state=SEED)
    labels = task.y.astype(str) if task.is_classification else None
    return task, list(cv.split(np.arange(len(task.y)), labels)), n_full


def tune_task(row: Mapping[str, Any], *, meta: Path, work: Path, n_new: int, time_limit: float,
              budget_s: float, configs: Mapping[str, dict[str, Any]], per_family: int = 0,
              client: Any = None) -> dict[str, Any]:
    """Run (or resume) the tuned search of one task and write its new evaluations."""
    task_id = str(row["task_id"])
    out_path = meta / TUNED_DIR / f"{slug(task_id)}.csv"
    if out_path.exists():
        return {"task_id": task_id, "skipped": True}
    t0 = time.perf_counter()
    warnings.simplefilter("ignore")
    task, splits, n_full = build_protocol_task(row)
    metric = task.metric_obj
    stored = stored_results(pd.read_csv(meta / "evaluations" / f"{slug(task_id)}.csv"), configs, metric.name)
    initial = initial_design(stored, metric.name, metric.greater_is_better, per_family)
    live = Evaluator(task, time_limit_s=time_limit, splits=splits, n_jobs=1)
    ev = StoredFirstEvaluator(stored, live)
    try:
        result = tune(task, optimizer="smac", warm_start=None, initial_configs=initial,
                      evaluator=ev, n_trials=len(initial) + n_new, time_budget_s=budget_s,
                      per_trial_time_limit_s=time_limit, out_dir=work / slug(task_id), refit=False,
                      dask_client=client)
    finally:
        ev.close()
    new = [r for r in result.history if config_key(r.config) not in stored]
    metrics = [m.name for m in tracked_metrics(task.problem_type)]
    rows = [{
        "config_hash": config_hash(r.config), "family": r.family, "trial": r.number, "status": r.status,
        "fit_time_s": round(r.fit_time_s, 4), **{m: r.scores.get(m) for m in metrics},
        "fold_scores": ";".join(f"{s:.6g}" for s in r.fold_scores), "error": (r.error or "")[:200],
        "config_json": json.dumps(r.config, sort_keys=True),
    } for r in new]
    sign = 1.0 if metric.greater_is_better else -1.0
    stored_ok = [r.scores[metric.name] for r in stored.values() if r.ok]
    new_ok = [r.scores[metric.name] for r in new if r.ok]
    tmp = out_path.with_suffix(".tmp")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["config_hash", "family", "trial", "status", "fit_time_s", *metrics, "fold_scores",
                                "error", "config_json"]).to_csv(tmp, index=False)
    tmp.replace(out_path)
    return {
        "task_id": task_id, "skipped": False, "metric": metric.name, "n_rows_used": len(task.y), "n_rows_full": n_full,
        "stored": len(stored), "initial": len(initial), "new": len(new), "new_ok": len(new_ok),
        "stored_best": sign * max(sign * s for s in stored_ok) if stored_ok else math.nan,
        "new_best": sign * max(sign * s for s in new_ok) if new_ok else math.nan,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def write_manifest(meta: Path, n_new: int, per_family: int, time_limit: float, budget_s: float,
                   summaries: list[dict[str, Any]]) -> dict:
    """Record the tuned build in MANIFEST.json (key ``tuned``) and restamp ``updated_at``,
    so that every store loads the new evaluations on its next read."""
    path = meta / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    old = manifest.get("tuned", {})
    files = sorted((meta / TUNED_DIR).glob("*.csv"))
    suite = load_suite(meta / "suite.csv").set_index("task_id")
    n_eval, per_kind, per_task = 0, {"classification": 0, "regression": 0}, []
    for f in files:
        per_task.append(len(pd.read_csv(f, usecols=["config_hash"])))
        n_eval += per_task[-1]
        pt = suite.loc[f.stem.replace("__", "/"), "problem_type"] if f.stem.replace("__", "/") in suite.index else ""
        per_kind["regression" if pt == "regression" else "classification"] += 1
    seconds = {**old.get("seconds_per_task", {}), **{s["task_id"]: s["seconds"] for s in summaries if not s.get("skipped")}}
    manifest["tuned"] = {
        "description": "Tuned optima: per suite task, a seeded SMAC search in the joint space started from the task's "
                       "stored fixed design (replayed, not refit), then new real trials (experiments/build_tuned.py).",
        "source": "autometa-suite-tuned",
        "directory": TUNED_DIR,
        "protocol": {"resampling": f"{N_FOLDS}-fold CV (stratified for classification), seed {SEED}, the fixed "
                                   "design's protocol (experiments/results/protocol_agreement.md)",
                     "row_cap": ROW_CAP, "per_trial_time_limit_s": time_limit, "per_task_budget_s": budget_s,
                     "optimizer": "smac (autometa.tune, seed 0)",
                     "initial_design": (f"the {per_family} best stored fixed-design configurations per family, "
                                        "their stored scores replayed" if per_family > 0
                                        else "the whole stored fixed design, its stored scores replayed"),
                     "new_trials_per_task": n_new, "space_version": SPACE_VERSION,
                     "agreement_with_live_protocol": PROTOCOL_DECISION},
        "counts": {"tasks": len(files), **{f"tasks_{k}": v for k, v in per_kind.items()}, "evaluations": n_eval,
                   "new_trials_per_task": {"min": min(per_task, default=0), "median": float(np.median(per_task))
                                           if per_task else 0.0, "max": max(per_task, default=0)}},
        "seconds_total": round(sum(seconds.values()), 1),
        "seconds_per_task": dict(sorted(seconds.items())),
        "versions": package_versions(),
    }
    manifest["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return manifest


def suite_order(meta: Path, kind: str) -> pd.DataFrame:
    """Tasks with a stored fixed design, classification first (the benchmarks use those),
    each kind cheapest first (capped rows x features x classes)."""
    suite = load_suite(meta / "suite.csv")
    have = {f.stem for f in (meta / "evaluations").glob("*.csv")}
    suite = suite[suite.task_id.map(slug).isin(have)]
    suite = suite.assign(_reg=suite.problem_type.eq("regression"),
                         _cost=suite.n_rows.clip(upper=ROW_CAP) * suite.n_features * suite.n_classes.fillna(1).clip(lower=1))
    if kind != "all":
        suite = suite[suite._reg == (kind == "regression")]
    return suite.sort_values(["_reg", "_cost"]).drop(columns=["_reg", "_cost"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-new", type=int, default=64, help="real new trials per task after the stored design")
    ap.add_argument("--kind", choices=("all", "classification", "regression"), default="all")
    ap.add_argument("--max-tasks", type=int, default=None)
    ap.add_argument("--tasks", default="", help="comma-separated task ids (default: the suite)")
    ap.add_argument("--initial-per-family", type=int, default=8,
                    help="SMAC's initial design: the best k stored configurations per family (0: all stored)")
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds per trial")
    ap.add_argument("--task-budget", type=float, default=1800.0, help="wall seconds per task (tune's budget)")
    ap.add_argument("--metadata", type=Path, default=META)
    ap.add_argument("--workers", type=int, default=2, help="local Dask worker processes (1: no Dask)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (instead of --workers)")
    ap.add_argument("--work", type=Path, default=ROOT / "autometa-out" / "build_tuned")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    configs = {h: json.loads(c) for h, c in pd.read_csv(args.metadata / "configurations.csv")[["hash", "config_json"]]
               .itertuples(index=False)}
    suite = suite_order(args.metadata, args.kind)
    if args.tasks:
        suite = suite[suite.task_id.isin(args.tasks.split(","))]
    if args.max_tasks:
        suite = suite.head(args.max_tasks)
    rows = suite.to_dict("records")
    log.info("tuned build: %d tasks, %d new SMAC trials each", len(rows), args.n_new)
    client = dask_client(args.workers, args.scheduler) if args.scheduler or args.workers > 1 else None
    summaries = []
    for i, row in enumerate(rows, 1):
        try:
            s = tune_task(row, meta=args.metadata, work=args.work, n_new=args.n_new, time_limit=args.time_limit,
                          budget_s=args.task_budget, configs=configs, per_family=args.initial_per_family,
                          client=client)
        except Exception as exc:  # noqa: BLE001 - one bad task must not stop the build
            log.warning("[%d/%d] %s FAILED: %s: %s", i, len(rows), row["task_id"], type(exc).__name__, str(exc)[:300])
            continue
        if s.get("skipped"):
            continue
        summaries.append(s)
        log.info("[%d/%d] %s: %d new (%d ok), best %s %.4f -> %.4f, %.0f s", i, len(rows), s["task_id"], s["new"],
                 s["new_ok"], s["metric"], s["stored_best"], s["new_best"], s["seconds"])
        write_manifest(args.metadata, args.n_new, args.initial_per_family, args.time_limit, args.task_budget, summaries)
    if client is not None:
        client.close()


if __name__ == "__main__":
    main()
