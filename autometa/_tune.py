"""The tuning loop: optimizer proposals -> robust evaluation -> history on disk -> refit."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from ConfigSpace import ConfigurationSpace

from autometa.evaluation import Evaluator, TrialResult
from autometa.exceptions import InputError, ResumeError
from autometa.optimizers import BACKENDS, config_key, make_optimizer
from autometa.spaces import FAMILY_KEY, config_to_dict, family_defaults, get_space
from autometa.task import Task

__all__ = ["tune", "default_initial_configs", "TuneResult", "TrialRecord", "Progress", "package_versions"]

logger = logging.getLogger(__name__)

_VERSIONED = ("autometa", "scikit-learn", "numpy", "pandas", "scipy", "ConfigSpace", "smac", "optuna", "joblib")
_MAX_DUPLICATE_ASKS = 50


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a saved model depends on."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, as written to ``trials.jsonl``."""

    number: int
    config: dict[str, Any]
    status: str
    loss: float
    scores: dict[str, float]
    fold_scores: list[float]
    fit_time_s: float
    duration_s: float
    error: str | None
    finished_at: str

    @property
    def family(self) -> str:
        return str(self.config.get(FAMILY_KEY, ""))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> str:
        d = asdict(self)
        d["scores"] = {k: (None if _nan(v) else v) for k, v in d["scores"].items()}
        d["loss"] = None if _nan(self.loss) else self.loss
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> TrialRecord:
        d = json.loads(line)
        d["scores"] = {k: (math.nan if v is None else v) for k, v in d["scores"].items()}
        d["loss"] = math.nan if d["loss"] is None else d["loss"]
        return cls(**d)


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


@dataclass(frozen=True)
class Progress:
    """What a callback learns after each trial."""

    record: TrialRecord
    n_trials: int
    best_score: float | None
    elapsed_s: float
    time_budget_s: float
    max_trials: int | None


@dataclass(frozen=True)
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes
    ----------
    best_config : dict
        Active values of the best configuration (by the task's metric on validation).
    best_score : float
        Its validation score, in the metric's natural units.
    metric : str
    n_trials : int
        Trials in the history (resumed ones included).
    elapsed_s : float
        Wall time of this call (from ``start_time`` when given).
    history : list of TrialRecord
        Every trial, failed ones included, in order.
    model : Pipeline or None
        The best configuration refit on all data (None when ``refit=False`` or the refit failed).
    """

    best_config: dict[str, Any]
    best_score: float
    metric: str
    n_trials: int
    elapsed_s: float
    seed: int
    backend: str
    history: list[TrialRecord]
    model: Any = field(default=None, repr=False)
    task: dict[str, Any] = field(default_factory=dict, repr=False)
    package_versions: dict[str, str] = field(default_factory=dict, repr=False)
    refit_error: str | None = None

    @property
    def leaderboard(self) -> pd.DataFrame:
        """Trials ranked by the metric (failed ones last), one row each."""
        rows = []
        for r in self.history:
            row: dict[str, Any] = {"trial": r.number, "family": r.family, "status": r.status}
            row.update({k: v for k, v in r.scores.items()})
            row["fit_time_s"] = round(r.fit_time_s, 3)
            row["error"] = r.error
            rows.append(row)
        df = pd.DataFrame(rows)
        if df.empty:
            return df
        if self.metric not in df:
            df[self.metric] = math.nan
        greater = self.task.get("greater_is_better", True)
        df["_ok"] = df["status"].eq("ok")
        df = df.sort_values(["_ok", self.metric], ascending=[False, not greater], na_position="last")
        df = df.drop(columns="_ok").reset_index(drop=True)
        df.index = df.index + 1
        df.index.name = "rank"
        return df

    def summary(self) -> dict[str, Any]:
        """The JSON content of ``result.json``."""
        return {
            "best_config": self.best_config,
            "best_score": self.best_score,
            "metric": self.metric,
            "n_trials": self.n_trials,
            "n_failed": sum(not r.ok for r in self.history),
            "elapsed_s": round(self.elapsed_s, 3),
            "seed": self.seed,
            "backend": self.backend,
            "task": self.task,
            "refit_error": self.refit_error,
            "package_versions": self.package_versions,
        }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _RunDir:
    """The output directory of a run: ``run.json`` (identity), ``trials.jsonl`` (append-only),
    ``result.json`` and the model, written atomically at the end."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity
        self.trials_path = path / "trials.jsonl"

    def open(self) -> list[TrialRecord]:
        """Create the directory, or check it holds the same run and return its finished trials."""
        run_json = self.path / "run.json"
        if run_json.exists():
            old = json.loads(run_json.read_text())
            diff = [k for k in self.identity if old.get(k) != self.identity[k]]
            if diff:
                raise ResumeError(
                    f"Output directory '{self.path}' holds a different run (its {', '.join(diff)} differ); "
                    "choose another --out or delete that directory."
                )
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            _atomic_write(run_json, json.dumps(self.identity, indent=2, sort_keys=True))
        records = []
        if self.trials_path.exists():
            for line in self.trials_path.read_text().splitlines():
                try:
                    records.append(TrialRecord.from_json(line))
                except (json.JSONDecodeError, TypeError, KeyError):
                    continue  # a line cut short by an interruption: that trial runs again
        return records

    def append(self, record: TrialRecord) -> None:
        with self.trials_path.open("a") as fh:
            fh.write(record.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def default_initial_configs(space: ConfigurationSpace, task: Task) -> list[dict[str, Any]]:
    """Each family's default, in the space's order. When the metric weighs classes equally
    (balanced accuracy) and the classes are imbalanced, families that can weight classes
    start from ``class_weight="balanced"``: the default that matches the metric."""
    configs = [config_to_dict(c) for c in family_defaults(space)]
    if task.metric == "balanced_accuracy":
        counts = task.y.value_counts()
        if counts.min() < 0.8 * counts.max():
            for c in configs:
                key = f"{c[FAMILY_KEY]}:class_weight"
                if key in c:
                    c[key] = "balanced"
    return configs


def _valid_in(config: Mapping[str, Any], space: ConfigurationSpace) -> bool:
    """Whether a configuration is a point of ``space`` (a pruned space drops some)."""
    from ConfigSpace.util import deactivate_inactive_hyperparameters

    try:
        c = deactivate_inactive_hyperparameters(dict(config), space)
        c.check_valid_configuration()
        return all(k in space for k in config) and config_to_dict(c) == config_to_dict(config)
    except Exception:  # noqa: BLE001 - outside the (pruned) space
        return False


def tune(
    task: Task,
    *,
    backend: str = "smac",
    n_trials: int | None = None,
    time_budget_s: float | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    initial_configs: Sequence[Mapping[str, Any]] | None = None,
    families: Sequence[str] | None = None,
    per_trial_time_limit_s: float | None = None,
    memory_limit_mb: int | None = None,
    n_jobs: int = 1,
    isolation: str = "process",
    refit: bool = True,
    callbacks: Sequence[Callable[[Progress], None]] = (),
    start_time: float | None = None,
    transfer: Any | None = None,
    space: ConfigurationSpace | None = None,
) -> TuneResult:
    """Search the combined pipeline space for the best configuration of ``task``.

    Parameters
    ----------
    task : Task
    backend : {"smac", "optuna", "random"}
    n_trials : int, optional
        Stop after this many trials (resumed ones count). Unlimited by default: the
        time budget stops the search.
    time_budget_s : float, optional
        Wall-clock budget of the whole call, refit included; ``task.time_budget_s`` by default.
    out_dir : path-like, optional
        Where ``run.json``, ``trials.jsonl``, ``result.json`` and ``model.joblib`` go. An
        existing directory of the same run is resumed: finished trials are not redone.
    initial_configs : sequence of mappings, optional
        Configurations to evaluate first (warm start). By default, each family's default.
    families : sequence of str, optional
        Restrict the search to these model families.
    per_trial_time_limit_s : float, optional
        Wall-time limit of one trial; by default a quarter of the budget (at least 5 s).
    memory_limit_mb : int, optional
        Memory limit of the evaluation process.
    n_jobs : int
        Threads per model fit.
    isolation : {"process", "none"}
        See :class:`~autometa.evaluation.Evaluator`.
    refit : bool
        Refit the best configuration on all data.
    callbacks : sequence of callables
        Called with a :class:`Progress` after every trial.
    start_time : float, optional
        ``time.perf_counter()`` when the run began (e.g. before the data was loaded), so
        that the budget covers it.
    transfer : {"rgpe", "tstr"} or TransferEnsemble, optional
        Surrogate transfer from the meta-database (:mod:`autometa.transfer`): the
        ensemble becomes SMAC's model or Optuna's sampler. A name builds the ensemble
        from the default meta-database (its fitting time counts in the budget).
    space : ConfigurationSpace, optional
        A custom (e.g. pruned, :func:`autometa.transfer.bounding_box`) search space of
        autometa's hyperparameters; overrides ``families``.
    """
    t0 = time.perf_counter() if start_time is None else start_time
    budget = float(task.time_budget_s if time_budget_s is None else time_budget_s)
    if not math.isfinite(budget) or budget <= 0:
        raise InputError(f"The time budget must be a positive number of seconds; got {time_budget_s!r}.")
    if n_trials is not None and n_trials < 1:
        raise InputError(f"n_trials must be at least 1; got {n_trials!r}.")
    if backend not in BACKENDS:
        raise InputError(f"Unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}.")
    deadline = t0 + budget
    per_trial = per_trial_time_limit_s if per_trial_time_limit_s is not None else max(5.0, budget / 4)
    metric = task.metric_obj
    metric_name = metric.name

    if space is None:
        space = get_space(str(task.problem_type), families=families, seed=task.seed)
    elif FAMILY_KEY not in space:
        raise InputError(f"A custom search space must have the {FAMILY_KEY!r} hyperparameter of autometa's spaces.")
    initial = default_initial_configs(space, task) if initial_configs is None else list(initial_configs)
    initial = [c for c in initial if _valid_in(c, space)]
    if isinstance(transfer, str):
        if transfer == "none":
            transfer = None
        else:
            from autometa.transfer import transfer_for_task

            transfer = transfer_for_task(task, transfer, space=space)
    optimizer = make_optimizer(backend, space, seed=task.seed, initial_configs=initial, transfer=transfer)

    run_dir = None
    history: list[TrialRecord] = []
    if out_dir is not None:
        identity = {
            "task_fingerprint": task.fingerprint(),
            "label": task.label,
            "metric": task.metric,
            "problem_type": task.problem_type,
            "seed": int(task.seed),
            "backend": backend,
            "families": list(space[FAMILY_KEY].choices),  # type: ignore[attr-defined]
        }
        run_dir = _RunDir(Path(out_dir), identity)
        history = run_dir.open()
    seen: dict[str, TrialRecord] = {config_key(r.config): r for r in history}
    optimizer.tell_many((r.config, r.loss, r.ok) for r in history)

    def fail_loss() -> float:
        ok = [r.loss for r in history if r.ok]
        if ok:
            return max(ok)
        worst = metric.to_loss(metric.worst)
        return worst if math.isfinite(worst) else 1e6

    def best() -> TrialRecord | None:
        ok = [r for r in history if r.ok]
        return min(ok, key=lambda r: r.loss) if ok else None

    def refit_reserve() -> float:
        b = best()
        if b is None or not refit:
            return 0.0
        k = max(1, len(b.fold_scores))
        # One fit on all rows (a fold fit scaled up), saving the model, and slack.
        return 1.0 + 0.03 * budget + 1.5 * b.fit_time_s / k * (1.0 + 1.0 / k)

    evaluator = Evaluator(task, memory_limit_mb=memory_limit_mb, n_jobs=n_jobs, isolation=isolation)
    model, refit_error = None, None
    try:
        duplicates = 0
        while n_trials is None or len(history) < n_trials:
            remaining = deadline - time.perf_counter() - refit_reserve()
            if remaining < min(1.0, 0.02 * budget):
                break
            config = optimizer.ask()
            key = config_key(config)
            if key in seen:  # proposed again (or done before a resume): reuse the result
                optimizer.tell(config, seen[key].loss if seen[key].ok else fail_loss(), ok=seen[key].ok)
                duplicates += 1
                if duplicates > _MAX_DUPLICATE_ASKS:
                    break
                continue
            duplicates = 0
            trial_deadline = time.perf_counter() + remaining
            res = evaluator.evaluate(config, time_limit_s=per_trial, deadline=trial_deadline)
            if res.status == "timeout" and time.perf_counter() >= trial_deadline - 0.05:
                msg = f"stopped when the time budget ran out ({remaining:.1f} s were left)"
                res = TrialResult(**{**res.__dict__, "error": msg})
            loss = metric.to_loss(res.scores[metric_name]) if res.ok else math.nan
            record = TrialRecord(
                number=len(history),
                config=res.config,
                status=res.status,
                loss=loss,
                scores=res.scores,
                fold_scores=res.fold_scores,
                fit_time_s=res.fit_time_s,
                duration_s=res.duration_s,
                error=res.error,
                finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            optimizer.tell(config, loss if res.ok else fail_loss(), ok=res.ok)
            history.append(record)
            seen[key] = record
            if run_dir is not None:
                run_dir.append(record)
            logger.info(
                "trial %d %s: %s %s (%.1f s)%s", record.number, record.family, record.status,
                f"{task.metric}={record.scores[metric_name]:.4f}" if record.ok else "",
                record.duration_s, f" {record.error}" if record.error else "",
            )
            b = best()
            for cb in callbacks:
                cb(
                    Progress(
                        record=record,
                        n_trials=len(history),
                        best_score=None if b is None else b.scores[metric_name],
                        elapsed_s=time.perf_counter() - t0,
                        time_budget_s=budget,
                        max_trials=n_trials,
                    )
                )

        b = best()
        if b is None:
            reasons = sorted({r.error or r.status for r in history})[:3]
            raise InputError(
                f"No configuration succeeded in {len(history)} trial(s) ({'; '.join(reasons) or 'no time to run any'}); "
                "raise --time-budget or check the data."
            )
        if refit:
            ranked = sorted((r for r in history if r.ok), key=lambda r: r.loss)
            for cand in ranked[:3]:  # fall back to the runner-up if the best cannot be refit
                model, refit_error = evaluator.refit(cand.config)
                if model is not None:
                    b = cand
                    break
    finally:
        evaluator.close()

    result = TuneResult(
        best_config=config_to_dict(b.config),
        best_score=float(b.scores[metric_name]),
        metric=str(task.metric),
        n_trials=len(history),
        elapsed_s=time.perf_counter() - t0,
        seed=int(task.seed),
        backend=backend,
        history=history,
        model=model,
        task={**task.describe(), "greater_is_better": metric.greater_is_better},
        package_versions=package_versions(),
        refit_error=refit_error if model is None else None,
    )
    if run_dir is not None:
        from autometa.model import save_model

        if model is not None:
            save_model(model, run_dir.path / "model.joblib", task=task, best_config=result.best_config)
        result.leaderboard.to_csv(run_dir.path / "leaderboard.csv")
        # result.json last: its presence says the run finished.
        summary = {**result.summary(), "elapsed_s": round(time.perf_counter() - t0, 3)}
        _atomic_write(run_dir.path / "result.json", json.dumps(summary, indent=2, default=str))
    return result
