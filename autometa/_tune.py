"""The facade: :func:`tune` wires task, pruning, warm start, transfer, optimizer,
evaluation, run directory and meta-database; each part is keyword-only and swappable.

The loop itself: optimizer proposals -> robust evaluation -> history on disk -> refit.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import logging
import math
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ConfigSpace import ConfigurationSpace

from autometa.ensemble import EnsembleClassifier, EnsembleRegressor, OOFPool, caruana_selection
from autometa.evaluation import (
    HOLDOUT_FRACTION,
    PROTOCOLS,
    BaseEvaluator,
    Evaluator,
    TrialResult,
    choose_protocol,
    default_fit_row_exponent,
    make_splits,
)
from autometa.exceptions import AutometaWarning, InputError, ResumeError
from autometa.metadb import SQLMetaDB, open_metadb
from autometa.optimizers import BACKENDS, BaseExecutor, BaseOptimizer, DaskExecutor, OptunaOptimizer, SerialExecutor
from autometa.spaces import FAMILY_KEY, config_hash, config_key, config_to_dict, get_space, in_space, trial_key
from autometa.task import Task
from autometa.transfer import TRANSFERS, BasePruner, BaseTransfer, BoxPruner, TransferEnsemble
from autometa.versions import package_versions
from autometa.warmstart import DEFAULT_WARM_START, WARM_STARTERS, BaseWarmStarter, DefaultsWarmStarter

__all__ = [
    "DEFAULT_WARM_START",
    "Progress",
    "TrialRecord",
    "TuneResult",
    "read_run",
    "tune",
]

logger = logging.getLogger(__name__)

_MAX_DUPLICATE_ASKS = 50

PRUNERS = ("box", "importance", "none")
#: How the final ensemble is made: ``auto`` refits the members on all rows when the
#: budget allows and uses their fold models otherwise; ``refit`` and ``folds`` force one.
ENSEMBLE_MODELS = ("auto", "refit", "folds")


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
    #: The share of the training rows the trial was fitted on (successive halving); None
    #: for all of them.
    budget: float | None = None

    @property
    def full(self) -> bool:
        """Fitted on all the training rows (not a lower rung of successive halving)."""
        return self.budget is None or self.budget >= 1.0

    @property
    def share(self) -> float:
        """The share of the training rows the trial was fitted on (1.0: all of them)."""
        return 1.0 if self.full else float(self.budget or 1.0)

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
        The best configuration refit on all data, or on a sample of the rows when a trial
        scored on a sample would not refit on all of them in the time left (``setup["refit"]``
        says so); None when ``refit=False`` or the refit failed.
    n_resumed : int
        Finished trials read back from ``out_dir`` (a resumed run), not redone.
    setup : dict
        What the meta-learning parts did before the first trial: the warm start (name,
        number of configurations, seconds, or why it fell back), pruning, transfer; and
        after the search, under ``"ensemble"``, whether the final model is an ensemble
        and why (or why not); under ``"refit"``, when the refit model is not the best
        trial's, which trial it is and why (the best one's refit would not fit in the
        time left, or failed), or when it is the best trial's on a sample of the rows
        (``share``, about how many ``rows``, and why).
    ensemble : dict or None
        When the final model (``model``) is a weighted ensemble of trials: its
        ``members`` (trial, weight, family, validation score, configuration), its
        out-of-fold ``score`` and that of the best single trial on the same rows
        (``single_best_score``), and ``model``: ``"refit"`` (members refit on all rows)
        or ``"folds"`` (the members' cross-validation fold models, averaged). None when
        the final model is the best single configuration; ``best_config`` and
        ``best_score`` always describe that one.
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
    n_resumed: int = 0
    setup: dict[str, Any] = field(default_factory=dict)
    ensemble: dict[str, Any] | None = None

    @property
    def leaderboard(self) -> pd.DataFrame:
        """Trials ranked by the metric (failed ones last), one row each.

        Under successive halving a ``budget`` column gives each trial's share of the
        training rows, and trials on more rows rank first (``best_config`` says which
        configuration is the result: one stopped on fewer rows can be).

        With an ensemble as the final model, a ``weight`` column gives each trial's weight
        in it and a first row of rank 0 (trial ``"ensemble"``) shows the ensemble, scored
        out of fold: the score selection optimized, optimistic like the trials' own.
        """
        rows = []
        weights = {m["trial"]: m["weight"] for m in self.ensemble["members"]} if self.ensemble else {}
        rungs = any(not r.full for r in self.history)
        for r in self.history:
            row: dict[str, Any] = {"trial": r.number, "family": r.family, "status": r.status}
            if rungs:  # successive halving: the share of the training rows, all-rows trials ranked first
                row["budget"] = round(r.share, 4)
            row.update({k: v for k, v in r.scores.items()})
            row["fit_time_s"] = round(r.fit_time_s, 3)
            row["error"] = r.error
            if self.ensemble:
                row["weight"] = weights.get(r.number, 0.0)
            rows.append(row)
        df = pd.DataFrame(rows)
        if df.empty:
            return df
        if self.metric not in df:
            df[self.metric] = math.nan
        greater = self.task.get("greater_is_better", True)
        df["_ok"] = df["status"].eq("ok")
        df["_rows"] = df["budget"] if rungs else 1.0
        df = df.sort_values(["_ok", "_rows", self.metric], ascending=[False, False, not greater], na_position="last")
        df = df.drop(columns=["_ok", "_rows"]).reset_index(drop=True)
        df.index = df.index + 1
        if self.ensemble:
            top = pd.DataFrame([{
                "trial": "ensemble", "family": f"ensemble of {len(self.ensemble['members'])}", "status": "ok",
                self.metric: self.ensemble["score"],
                "fit_time_s": round(sum(df.loc[df["trial"].isin(weights), "fit_time_s"]), 3), "error": None,
                "weight": 1.0,
            }], index=[0])
            df = pd.concat([top, df.astype({"trial": object})])[df.columns]
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
            "n_resumed": self.n_resumed,
            "final_model": "single" if self.ensemble is None else f"ensemble ({self.ensemble['model']})",
            "ensemble": self.ensemble,
            "setup": self.setup,
            "package_versions": self.package_versions,
        }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


#: How the evaluator's error begins when the memory limit is below what its worker holds.
_LIMIT_BELOW_WORKER = "the memory limit of"
#: How a refused resume names the settings of a run that differ.
_IDENTITY_NAMES = {"task_fingerprint": "data", "problem_type": "problem type"}


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
            # A run written before the protocol was recorded resumes under the chosen one.
            diff = [k for k in self.identity if old.get(k) != self.identity[k] and (k != "protocol" or k in old)]
            if diff:
                if set(diff) & {"label", "metric", "problem_type", "seed"}:
                    diff = [k for k in diff if k != "task_fingerprint"]  # the fingerprint covers those settings
                names = [_IDENTITY_NAMES.get(k, k) for k in diff]
                verb = "differ" if len(names) > 1 or names[0] in ("data", "families") else "differs"
                raise ResumeError(
                    f"Output directory '{self.path}' holds a different run (its {', '.join(names)} {verb}); "
                    "choose another --out or delete that directory."
                )
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            _atomic_write(run_json, json.dumps(self.identity, indent=2, sort_keys=True))
        records, cut = [], False
        if self.trials_path.exists():
            for line in self.trials_path.read_text().splitlines():
                try:
                    records.append(TrialRecord.from_json(line))
                except (json.JSONDecodeError, TypeError, KeyError):
                    cut = True  # a line cut short by an interruption: that trial runs again
        if cut:  # rewritten without it, so that the next trial does not continue the cut line
            _atomic_write(self.trials_path, "".join(r.to_json() + "\n" for r in records))
        return records

    def append(self, record: TrialRecord) -> None:
        with self.trials_path.open("a") as fh:
            fh.write(record.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_run(out_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], list[TrialRecord]]:
    """A finished run directory of :func:`tune`: its task description (``result.json``'s
    ``task`` plus the data fingerprint) and its trials; e.g. to record it in a
    meta-database later (:meth:`autometa.metadb.SQLMetaDB.add_run`)."""
    d = Path(out_dir)
    try:
        run = json.loads((d / "run.json").read_text())
        result = json.loads((d / "result.json").read_text())
    except FileNotFoundError:
        raise InputError(f"'{d}' is not a finished autometa tune directory (run.json/result.json missing).") from None
    trials = _RunDir(d, run).open()
    return {**result["task"], "fingerprint": run["task_fingerprint"]}, trials


def _record(db: SQLMetaDB, task: dict[str, Any], history: Sequence[TrialRecord], run_key: str,
            metafeatures: Mapping[str, float] | None, ensemble: Mapping[str, Any] | None = None) -> int:
    from autometa.metafeatures import EXTRACTOR_VERSION

    # a lower rung's score (fitted on a sample of the rows) is not an evaluation of the task
    return db.add_run(task, [asdict(r) for r in history if r.full], run_key=run_key, versions=package_versions(),
                      metafeatures=metafeatures, metafeatures_version=EXTRACTOR_VERSION, ensemble=ensemble)


#: Candidates besides the best whose refit the search leaves time for.
_RESERVE_MEMBERS = 4
#: The most of the budget the ensemble's extra refit reserve may take.
_MAX_ENSEMBLE_RESERVE = 0.15
#: Seconds kept for saving the model and results after the final fit.
_SAVE_SLACK_S = 0.5
#: Bytes per second assumed for loading the members' fold models and saving them again
#: as one model (measured about 100 MB/s each way on a busy 2-core machine; a margin kept).
_FOLD_IO_BYTES_PER_S = 40e6


#: A lower rung's time limit: its share of the per-trial limit at the family's growth rate,
#: with this margin. A trial slower than that on a sample of the rows would run out of
#: time on all of them.
_RUNG_LIMIT_MARGIN = 1.5
#: The shortest time limit of a lower rung, as a share of the per-trial limit: validation
#: on all the holdout's rows and the worker's fixed costs do not shrink with the training
#: rows (at 3 s, forests on a 27th of 178,000 rows timed out, and each timeout cost a
#: worker restart of about 6 s).
_RUNG_LIMIT_MIN_SHARE = 1.0 / 3.0
#: The least exponent by which a lower rung's fit time is grown to all the rows for the
#: refit reserve, before the run has measured the family's growth on promoted
#: configurations (histogram boosting's 0.35, measured between 5,000 and 20,000 rows,
#: understates 9- to 27-fold gains; 1.0 reserved so much that searches stopped halfway).
_RUNG_REFIT_MIN_EXPONENT = 0.5


def _rung_limit(per_trial: float, budget: float | None, config: Mapping[str, Any], problem_type: str) -> float:
    """The time limit of a trial on ``budget`` of the rows (successive halving): a
    configuration that would not fit on all the rows within ``per_trial`` is stopped on
    the lower rung already (measured: support vector machines on 12,800 of 38,500 rows
    took 30-36 s each to score at chance, then timed out on all of them)."""
    if budget is None or budget >= 1.0:
        return per_trial
    exponent = default_fit_row_exponent(str(config.get(FAMILY_KEY)), problem_type)
    return per_trial * min(1.0, max(_RUNG_LIMIT_MIN_SHARE, _RUNG_LIMIT_MARGIN * budget ** exponent))


def _rung_exponent(history: Sequence[TrialRecord], family: str) -> float | None:
    """How ``family``'s fit time grew with the rows in this run: the median over its
    configurations promoted to more rows (successive halving) of log(time ratio) / log(rows
    ratio), or None before any promotion."""
    times: dict[str, list[tuple[float, float]]] = {}
    for r in history:
        if r.ok and r.family == family and r.fit_time_s > 0:
            times.setdefault(config_key(r.config), []).append((r.share, r.fit_time_s))
    slopes = []
    for pts in times.values():
        (b1, t1), (b2, t2) = min(pts), max(pts)
        if b2 > b1:
            slopes.append(math.log(t2 / t1) / math.log(b2 / b1))
    return float(np.clip(np.median(slopes), 0.3, 2.5)) if slopes else None


def _refit_cost(r: TrialRecord, problem_type: str, history: Sequence[TrialRecord] = (), *,
                growth: float | None = None) -> float:
    """Expected seconds to refit trial ``r`` on all rows: one split's fit grown to the rows
    it gains (a k-fold split trains on (k-1)/k of them, the holdout on 3/4) at its
    family's rate (an SVM's time grows about with the square of the rows), with a
    margin. A lower rung of successive halving grows by the rate this run measured on
    the family's promoted configurations when it has one."""
    k = len(r.fold_scores)
    gain = 4.0 / 3.0 if k <= 1 else k / (k - 1.0)
    exponent = default_fit_row_exponent(str(r.config.get(FAMILY_KEY)), problem_type)
    cost = _own_rows_refit_s(r) * gain ** max(1.0, exponent)
    if not r.full:  # a lower rung of successive halving: 3-27 times the rows
        cost *= (1.0 / r.share) ** _refit_growth(r, problem_type, history, growth)
    return cost


def _refit_growth(r: TrialRecord, problem_type: str, history: Sequence[TrialRecord] = (),
                  growth: float | None = None) -> float:
    """The exponent by which a lower rung's fit time grows to more rows: the family's growth
    measured in this run, at least the family's own rate (fits on small samples are mostly
    fixed costs: a decision tree whose promotion measured 0.3 took 100 s to refit, where
    0.8 s grown by 0.3 promised 6 s); before a measurement, at least
    :data:`_RUNG_REFIT_MIN_EXPONENT`. (Taken as at least linear, a histogram-boosting trial
    on a 9th of 51,000 rows reserved 27 s of a 60 s budget for its refit and stopped the
    search after 28 s.)"""
    exponent = default_fit_row_exponent(str(r.config.get(FAMILY_KEY)), problem_type)
    measured = growth if growth is not None else _rung_exponent(history, r.family)
    return max(measured, exponent) if measured is not None else max(_RUNG_REFIT_MIN_EXPONENT, exponent)


def _own_rows_refit_s(r: TrialRecord) -> float:
    """Expected seconds to refit trial ``r`` on the rows of one of its splits: one split's
    fit, with the refit's margin."""
    return 1.5 * r.fit_time_s / max(1, len(r.fold_scores))


def _takes_share(ev: BaseEvaluator) -> bool:
    """Whether ``ev.refit`` fits on a sample of the rows (evaluators written before the
    ``share`` keyword existed do not take it)."""
    try:
        params = inspect.signature(ev.refit).parameters
    except (TypeError, ValueError):
        return False
    return "share" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _refit_share(r: TrialRecord, problem_type: str, history: Sequence[TrialRecord], seconds: float) -> float | None:
    """The largest share of all the rows that a lower-rung trial ``r`` is expected to refit
    on within ``seconds`` (its own fit time grown to more rows, as :func:`_refit_cost`),
    or None when even as many rows as it was scored on would not fit."""
    own = r.share * (1.0 - HOLDOUT_FRACTION) if len(r.fold_scores) <= 1 else r.share * (1.0 - 1.0 / len(r.fold_scores))
    base = _own_rows_refit_s(r)
    if r.full or base <= 0 or base > seconds:
        return None
    return min(1.0, own * (seconds / base) ** (1.0 / _refit_growth(r, problem_type, history)))


#: The most of the budget the final refit may be expected to take. A better trial whose
#: refit would take longer is passed over for the best one whose refit fits: a random
#: forest scored on an 81st of 1,000,000 rows (the first rung of successive halving) was
#: estimated at about 1,500 s to refit; it stopped a 300 s search after 42 s, and its refit
#: ran for minutes past the budget.
_MAX_REFIT_SHARE = 0.5
#: The share of the time left that a refit on a sample of the rows is sized to.
_SAMPLE_REFIT_SHARE = 0.7
#: The most of the budget the search keeps for refitting a trial scored on a sample of
#: the rows (on as many rows as then fit, at least those it was scored on).
_SAMPLE_REFIT_RESERVE = 0.25


def _ranked_trials(history: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Each successfully evaluated configuration once, at the most rows it was scored on,
    best first.

    Without successive halving: by loss. Under it, the configurations on the most rows
    come first, ordered by loss (SMAC's incumbent convention), but a configuration that
    stopped on fewer rows (its promotion timed out, or the search ended first) takes the
    lead when it beats the leader twice: on the largest rung both were scored on (the same
    training and validation rows), and with its own score against the leader's score on
    more rows. (Taking the best of the largest rung alone once made a decision tree
    scored 0.80 on a 9th of the rows the result over a boosting scored 0.87 on a 27th,
    whose promotion had timed out; the tree scored less than that on the 27th. The first
    test alone would put a forest that beat the boosting on an 81st, 0.860 against 0.855,
    before the boosting's 0.888 on a 9th.)"""
    by_config: dict[str, dict[float, TrialRecord]] = {}
    for r in history:
        if r.ok:
            rungs = by_config.setdefault(config_key(r.config), {})
            if r.share not in rungs or r.loss < rungs[r.share].loss:
                rungs[r.share] = r
    tops = [rungs[max(rungs)] for rungs in by_config.values()]
    ranked = sorted(tops, key=lambda r: (-r.share, r.loss, r.number))
    if not ranked:
        return []
    lead = ranked[0]
    for r in ranked[1:]:
        if r.share >= lead.share:
            continue
        mine = by_config[config_key(lead.config)]
        above = [s for s in mine if s >= r.share]  # the lead's score on the challenger's rows, or the nearest more
        if above and r.loss < mine[min(above)].loss and r.loss < lead.loss:
            lead = r
    return [lead, *(r for r in ranked if r is not lead)]


def _refit_candidates(history: Sequence[TrialRecord], problem_type: str, time_left: float,
                      n: int = 3, *, full_allowance: float | None = None) -> list[TrialRecord]:
    """Up to ``n`` successful trials in the order the final refit tries them: the order of
    :func:`_ranked_trials`, leaving out a trial whose refit is expected to take longer
    than ``time_left`` while others fit (a trial on all the rows: ``full_allowance``
    when given; its cost is scaled from its own fits, not grown from a sample). When none
    fits, the quickest refits come first.
    Costs are worked out in rank order and only until ``n`` trials fit (this runs before
    every trial the search submits)."""
    growth: dict[str, float | None] = {}  # a family's measured growth with the rows, worked out once

    def cost(r: TrialRecord) -> float:
        if not r.full and r.family not in growth:
            growth[r.family] = _rung_exponent(history, r.family)
        return _refit_cost(r, problem_type, growth=growth.get(r.family))

    # The ranking again without each lead whose refit does not fit: the next lead is the
    # best of the others (a ranking's tail is not that).
    remaining = [r for r in history if r.ok]
    fits: list[TrialRecord] = []
    passed: list[TrialRecord] = []
    while remaining and len(fits) < n:
        lead = _ranked_trials(remaining)[0]
        limit = full_allowance if lead.full and full_allowance is not None else time_left
        (fits if cost(lead) <= limit else passed).append(lead)
        key = config_key(lead.config)
        remaining = [r for r in remaining if config_key(r.config) != key]
    if not fits:
        return sorted(_ranked_trials(history), key=cost)[:n]
    return (fits + passed)[:n]


def _ensemble(
    task: Task, pool: OOFPool, history: Sequence[TrialRecord], ev: BaseEvaluator, *, size: int, mode: str,
    refit: bool, deadline: float,
) -> tuple[dict[str, Any] | None, Any, dict[str, Any]]:
    """Select an ensemble over the pool and make its model: ``(ensemble, model, setup)``.

    ``ensemble`` is None (and ``model`` None) when the best single trial stays the final
    model; ``setup`` says why in any case. ``model`` is None with an ensemble when
    ``refit`` is off.
    """
    t0 = time.perf_counter()
    cands = pool.candidates()
    info: dict[str, Any] = {"used": False, "size": size, "n_candidates": len(cands)}
    if len(cands) < 2:
        full = sum(r.ok and r.full for r in history)
        if full < len([r for r in history if r.ok]) and full < 2:  # successive halving, budget spent on lower rungs
            why = f"{full} successful trial(s) on all the rows (successive halving): too few to ensemble"
        else:
            why = ("no trial has out-of-fold predictions (the evaluator keeps none, e.g. a ReplayEvaluator)"
                   if not cands else "only one trial has out-of-fold predictions")
        return None, None, {**info, "reason": why}
    y = task.y.to_numpy()
    labels = np.unique(y) if task.is_classification else None
    metric = task.metric_obj
    sel = caruana_selection([c.oof for c in cands], y, metric, labels=labels, size=size)
    members = sel.members
    single = sel.single_scores[0]
    best_single = max(sel.single_scores, key=lambda v: -metric.to_loss(v) if math.isfinite(v) else -math.inf)
    info |= {"score": sel.score, "single_best_score": single, "n_members": len(members), "n_rows": sel.n_rows,
             "selection_seconds": round(time.perf_counter() - t0, 3)}
    if len(members) < 2:
        return None, None, {**info, "reason": f"selection kept one trial only (trial {cands[members[0]].number})"}
    if not metric.better(sel.score, best_single):
        return None, None, {**info, "reason": f"did not beat the best single trial on the pooled "
                                              f"out-of-fold predictions ({sel.score:.4f} vs {best_single:.4f})"}
    recs = [history[cands[i].number] for i in members]
    weights = [sel.weights[i] for i in members]
    ensemble = {
        "members": [{"trial": r.number, "weight": round(w, 6), "family": r.family,
                     "score": r.scores.get(metric.name), "config": config_to_dict(r.config)}
                    for r, w in zip(recs, weights, strict=True)],
        "score": sel.score, "single_best_score": single, "metric": metric.name, "size": size,
        "model": None,
    }
    if not refit:
        return {**ensemble, "model": "none"}, None, {**info, "used": True, "model": "none",
                                                     "reason": "refit off: selection only"}
    X = task.X
    cost = sum(_refit_cost(r, str(task.problem_type)) for r in recs)
    left = deadline - time.perf_counter()
    info |= {"refit_estimate_s": round(cost, 3), "time_left_s": round(left, 3)}
    have_folds = all(cands[i].has_fold_models for i in members)
    order = ["refit", "folds"] if mode == "refit" or (mode == "auto" and (cost <= left or not have_folds)) else [
        "folds", "refit"]
    reasons = []
    for kind in order:
        if kind == "folds":
            if not have_folds:
                reasons.append("no fold models (the evaluator keeps none, or the run was resumed)")
                continue
            nbytes = sum(pool.fold_model_bytes(cands[i].number) for i in members)
            io_s = nbytes / _FOLD_IO_BYTES_PER_S
            left_now = deadline - time.perf_counter()
            if mode == "auto" and io_s > left_now:
                reasons.append(f"no time to load and save the members' fold models ({nbytes / 1e6:.0f} MB, about "
                               f"{io_s:.1f} s needed, {left_now:.1f} s left)")
                continue
            info["fold_models_mb"] = round(nbytes / 1e6, 1)
            folds = [pool.fold_models(cands[i].number) or [] for i in members]
            ests = [m for f in folds for m in f]
            ws = [w / len(f) for f, w in zip(folds, weights, strict=True) for _ in f]
        else:
            if mode == "auto" and cost > left:
                reasons.append(f"no time to refit the members (about {cost:.1f} s needed, {left:.1f} s left)")
                continue
            ests = []
            for r in recs:
                m, err = ev.refit(r.config)
                if m is None:
                    reasons.append(f"trial {r.number} could not be refit ({err})")
                    break
                ests.append(m)
            if len(ests) < len(recs):
                continue
            ws = weights
        if labels is None:
            model: Any = EnsembleRegressor.from_fitted(ests, ws, n_features=X.shape[1], feature_names=list(X.columns))
        else:
            model = EnsembleClassifier.from_fitted(ests, ws, labels, n_features=X.shape[1],
                                                   feature_names=list(X.columns))
        why = "; ".join(reasons) or ("budget allows the refit" if kind == "refit" else "fold models chosen")
        info |= {"used": True, "model": kind, "reason": f"beats the best single trial on the pooled "
                                                        f"out-of-fold predictions ({sel.score:.4f} vs {best_single:.4f}; "
                                                        f"the leaderboard's trial scores are means over folds); {why}",
                 "seconds": round(time.perf_counter() - t0, 3)}
        return {**ensemble, "model": kind}, model, info
    return None, None, {**info, "reason": "; ".join(reasons) + "; the best single trial is refit instead",
                        "seconds": round(time.perf_counter() - t0, 3)}


def _no_success(history: Sequence[TrialRecord], budget: float, task: Task, elapsed_s: float,
                setup: Mapping[str, Any] | None = None) -> str:
    """The one line that says why a run found no model, and what to change."""
    size = f"{task.X.shape[0]} rows x {task.X.shape[1]} features"
    if not history:
        parts = [(k, v) for k, v in (setup or {}).items() if isinstance(v, dict) and v.get("seconds")]
        slowest = max(parts, key=lambda kv: float(kv[1]["seconds"]), default=None)
        if slowest is not None and float(slowest[1]["seconds"]) > 0.5 * elapsed_s:
            key, part = slowest
            name = part.get("fallback_from") or part.get("name") or key
            return (f"The time budget of {budget:g} s ran out before the first trial: {float(part['seconds']):.0f} of "
                    f"the {elapsed_s:.0f} s went to the {name} {key.replace('_', ' ')}, which reads the meta-database "
                    "and fits its models (on first use a new store is filled from the shipped meta-dataset and the "
                    "models are fitted; later runs load them from the cache); raise --time-budget, or use "
                    f"--{key.replace('_', '-')} {'defaults' if key == 'warm_start' else 'none'}.")
        return (f"The time budget of {budget:g} s ran out before the first trial ({elapsed_s:.0f} s went to loading "
                f"and set-up on {size}); raise --time-budget.")
    below = [r.error for r in history if r.status == "memory" and (r.error or "").startswith(_LIMIT_BELOW_WORKER)]
    if below:
        return f"No trial could run: {below[0]}."
    if all(r.status == "timeout" for r in history):
        longest = max(r.duration_s for r in history)
        return (f"No configuration succeeded in {len(history)} trial(s): all ran out of time (the longest was "
                f"stopped after {longest:.1f} s), too short to fit even one model on {size}; raise --time-budget "
                "(or --per-trial-limit) or subsample the data.")
    reasons = sorted({r.error or r.status for r in history})[:3]
    return (f"No configuration succeeded in {len(history)} trial(s) ({'; '.join(reasons)}); "
            "raise --time-budget or check the data.")


def _optimizer_factory(optimizer: Any) -> tuple[str, Callable[..., BaseOptimizer]]:
    """``(name, factory)`` of the optimizer part: a name or a BaseOptimizer subclass."""
    if isinstance(optimizer, str):
        if optimizer not in BACKENDS:
            raise InputError(f"Unknown optimizer {optimizer!r}; choose one of: {', '.join(BACKENDS)}.")
        return optimizer, BACKENDS[optimizer]
    if isinstance(optimizer, type) and issubclass(optimizer, BaseOptimizer):
        return str(getattr(optimizer, "name", optimizer.__name__)), optimizer
    raise InputError(
        f"The 'optimizer' parameter of tune must be one of {', '.join(BACKENDS)} or a BaseOptimizer subclass; "
        f"got {optimizer!r}."
    )


def _with_budget(task: Task, budget: float) -> Task:
    """``task`` whose ``time_budget_s`` is this run's budget (what a cost-aware starter
    plans for), without validating its data again."""
    if task.time_budget_s == budget:
        return task
    out = copy.copy(task)
    object.__setattr__(out, "time_budget_s", budget)
    return out


def _warm_starter(warm_start: Any, metadb: Any) -> BaseWarmStarter | None:
    if warm_start is None or warm_start == "none":
        return None
    if isinstance(warm_start, BaseWarmStarter):
        return warm_start
    if isinstance(warm_start, str) and warm_start in WARM_STARTERS:
        cls = WARM_STARTERS[warm_start]
        return cls() if cls is DefaultsWarmStarter else cls(metadb)  # type: ignore[call-arg]
    raise InputError(
        f"The 'warm_start' parameter of tune must be one of {', '.join([*WARM_STARTERS, 'none'])} or a "
        f"BaseWarmStarter; got {warm_start!r}."
    )


def _pruner(prune: Any, metadb: Any) -> BasePruner | None:
    if prune is None or prune == "none":
        return None
    if isinstance(prune, BasePruner):
        return prune
    if prune == "box":
        return BoxPruner(metadb)
    if prune == "importance":
        from autometa.defaults import ImportancePruner

        return ImportancePruner(metadb)
    raise InputError(f"The 'prune' parameter of tune must be one of {', '.join(PRUNERS)} or a BasePruner; got {prune!r}.")


def _transfer(transfer: Any, metadb: Any) -> BaseTransfer | TransferEnsemble | None:
    if transfer is None or transfer == "none":
        return None
    if isinstance(transfer, (BaseTransfer, TransferEnsemble)):
        return transfer
    if isinstance(transfer, str) and transfer in TRANSFERS:
        return TRANSFERS[transfer](metadb=metadb)
    raise InputError(
        f"The 'transfer' parameter of tune must be one of {', '.join(TRANSFERS)}, none, a BaseTransfer or a "
        f"TransferEnsemble; got {transfer!r}."
    )


def _stored_protocol(out_dir: Path) -> str | None:
    """The protocol kind an existing run directory was scored with, if it says."""
    try:
        return json.loads((out_dir / "run.json").read_text()).get("protocol")
    except (OSError, ValueError, AttributeError):
        return None


def tune(
    task: Task,
    *,
    optimizer: str | type[BaseOptimizer] = "smac",
    warm_start: str | BaseWarmStarter | None = DEFAULT_WARM_START,
    transfer: str | BaseTransfer | TransferEnsemble | None = None,
    prune: str | BasePruner | None = None,
    metadb: SQLMetaDB | str | None = None,
    record: bool = False,
    n_trials: int | None = None,
    time_budget_s: float | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    initial_configs: Sequence[Mapping[str, Any]] | None = None,
    n_initial: int = 25,
    families: Sequence[str] | None = None,
    space: ConfigurationSpace | None = None,
    metafeatures: Mapping[str, float] | None = None,
    evaluator: BaseEvaluator | None = None,
    per_trial_time_limit_s: float | None = None,
    memory_limit_mb: int | None = None,
    n_jobs: int = 1,
    isolation: str = "process",
    protocol: str = "auto",
    refit: bool = True,
    ensemble_size: int = 25,
    ensemble_nbest: int = 20,
    ensemble_model: str = "auto",
    callbacks: Sequence[Callable[[Progress], None]] = (),
    start_time: float | None = None,
    n_workers: int | None = None,
    dask_client: Any = None,
    storage: str | None = None,
    study_name: str | None = None,
    backend: str | None = None,
) -> TuneResult:
    """Search the combined pipeline space for the best configuration of ``task``.

    The parts, each keyword-only and swappable (a short name or an object of the
    documented base class), run in this order before the first trial, and their time
    counts in the budget: ``prune`` narrows the space, ``warm_start`` picks the first
    configurations inside it, ``transfer`` builds the surrogate that guides every later
    step, and ``optimizer`` proposes the rest. Names that read the meta-database use
    ``metadb``.

    Parameters
    ----------
    task : Task
    optimizer : {"smac", "optuna", "random"} or BaseOptimizer subclass
        Built with the (pruned) space, ``seed=task.seed``, the warm-start configurations
        as ``initial_configs`` and, when given, ``transfer=``.
    warm_start : {"defaults", "knn", "portfolio", "predictor", "none"} or BaseWarmStarter
        The first configurations: each family's default, for regression followed by a slow
        histogram boosting (the default, see :data:`DEFAULT_WARM_START`), the best configurations of the nearest stored tasks
        (:class:`~autometa.warmstart.KNNWarmStarter`), the greedy portfolio
        (:class:`~autometa.warmstart.PortfolioWarmStarter`), the learned performance
        predictor's picks (:class:`~autometa.warmstart.PredictorWarmStarter`), or nothing
        (the optimizer's own initial design). A meta-database starter that cannot serve the task (no
        stored task of its kind) falls back to the defaults with an
        :class:`~autometa.exceptions.AutometaWarning`.
    transfer : {"rgpe", "tstr", "pmf", "guarded", "none"}, BaseTransfer or TransferEnsemble, optional
        Surrogate transfer from the meta-database (:data:`autometa.transfer.TRANSFERS`):
        the ensemble becomes SMAC's model or Optuna's sampler.
    prune : {"box", "importance", "none"} or BasePruner, optional
        Prune the space from the meta-database: the bounding box of the nearest tasks'
        best configurations, or hyperparameters of low importance fixed to learned defaults.
    metadb : SQLMetaDB or str, optional
        The meta-database (or its URL) the named parts read and ``record`` writes to;
        the default store otherwise. A URL is opened at once: an unreachable one raises
        :class:`~autometa.exceptions.InputError` before any work.
    record : bool
        Add the trials to ``metadb`` when the run ends (own runs), so that later runs
        learn from this one. The CLI records by default.
    n_trials : int, optional
        Stop after this many trials (resumed ones count). Unlimited by default: the
        time budget stops the search.
    time_budget_s : float, optional
        Wall-clock budget of the whole call, refit included; ``task.time_budget_s`` by default.
    out_dir : path-like, optional
        Where ``run.json``, ``trials.jsonl``, ``result.json`` and ``model.joblib`` go. An
        existing directory of the same run is resumed: finished trials are not redone.
    initial_configs : sequence of mappings, optional
        Configurations to evaluate first, instead of the warm start's.
    n_initial : int
        The most configurations the warm start contributes.
    families : sequence of str, optional
        Restrict the search to these model families.
    space : ConfigurationSpace, optional
        A custom search space of autometa's hyperparameters; overrides ``families``.
    metafeatures : mapping, optional
        The task's meta-features, when known (e.g. stored); computed once otherwise, if a
        part needs them.
    evaluator : BaseEvaluator, optional
        The objective (default: :class:`~autometa.evaluation.Evaluator`, real fits with
        limits). A :class:`~autometa.evaluation.ReplayEvaluator` replays stored scores.
    per_trial_time_limit_s : float, optional
        Wall-time limit of one trial; by default a quarter of the budget (at least 5 s).
    memory_limit_mb : int, optional
        Memory limit of the evaluation process.
    n_jobs : int
        Threads per model fit.
    isolation : {"process", "none"}
        See :class:`~autometa.evaluation.Evaluator`.
    protocol : {"auto", "cv", "holdout", "successive-halving"}
        How each trial is validated (:func:`~autometa.evaluation.choose_protocol`):
        ``auto`` uses repeated CV on small tables, k-fold CV while the family defaults
        take at most half the budget under it, one 25% holdout on larger tables or
        shorter budgets, and on tables above 50,000 rows whose full-size fits would take
        much of the budget, successive halving: Hyperband brackets (SMAC's
        multi-fidelity facade) or asynchronous successive halving (Optuna's pruner) fit
        trials on a stratified sample of the holdout's training rows first and give
        three times the rows to the best third, the warm-start configurations forming
        the first rung. Each trial's
        :attr:`TrialRecord.budget` says its share of the rows; only trials on all of
        them join the ensemble or go into the meta-database. The result is the best
        configuration on the most rows, unless one stopped on fewer rows beats it both
        on the largest rung they share and outright; it is refit on all rows.
        ``result.setup["protocol"]`` says which and why. Ignored with a given
        ``evaluator``.
    refit : bool
        Refit the best configuration (or the ensemble) on all data.
    ensemble_size : int
        Rounds of greedy ensemble selection with replacement (Caruana et al. 2004) over
        the out-of-fold predictions of the ``ensemble_nbest`` best trials, after the
        search; 0 turns ensembles off. The ensemble becomes the final model when it beats
        the best single trial out of fold, has two members or more, and can be made in
        the time left (see ``ensemble_model``); ``result.setup["ensemble"]`` says what was
        chosen and why. The predictions are kept in ``out_dir/oof/``, so a resumed run
        has them too.
    ensemble_nbest : int
        The best trials whose predictions are kept (memory and disk) as candidates.
    ensemble_model : {"auto", "refit", "folds"}
        How the ensemble is made: its members refit on all rows (``refit``), their
        cross-validation fold models averaged (``folds``, no refit), or ``auto``: refit
        when the time left covers the members' refits, fold models otherwise. The time
        budget includes the refit: the search stops early enough to leave time for it.
    callbacks : sequence of callables
        Called with a :class:`Progress` after every trial.
    start_time : float, optional
        ``time.perf_counter()`` when the run began (e.g. before the data was loaded), so
        that the budget covers it.
    n_workers : int, optional
        Trials evaluated at once. Above 1 (or with ``dask_client``) the trials run on
        Dask workers (:class:`~autometa.optimizers.DaskExecutor`; the ``distributed``
        extra): a local cluster of ``n_workers`` worker processes, or the cluster of
        ``dask_client``. The optimizer proposes while trials run (SMAC from its model's
        batch, Optuna's TPE with a constant liar), the warm-start configurations go out
        first, each worker receives the data once, and every trial keeps its time and
        memory limits on its worker. A trial whose worker is lost is recorded as failed.
        Default: 1 here, every worker thread of ``dask_client``'s cluster.
    dask_client : distributed.Client or str, optional
        An existing Dask cluster (a client or a scheduler address,
        ``"tcp://HOST:PORT"``) to run the trials on; it is left running.
    storage : str, optional
        With ``optimizer="optuna"``: an Optuna RDB storage URL (PostgreSQL, SQLite) that
        holds the study, so that several processes or machines share one study (and
        optuna-dashboard can read it). Each process still journals its own trials in
        its ``out_dir``. Shared studies are not reproducible: each process's sampler
        seed mixes in its host and process id, so that sharing processes do not
        propose alike.
    study_name : str, optional
        The shared study's name (default: derived from the data, label, metric and
        families, so that the same command on another machine joins the same study).
    backend : str, optional
        Former name of ``optimizer``.
    """
    t0 = time.perf_counter() if start_time is None else start_time
    budget = float(task.time_budget_s if time_budget_s is None else time_budget_s)
    if not math.isfinite(budget) or budget <= 0:
        raise InputError(f"The time budget must be a positive number of seconds; got {time_budget_s!r}.")
    if n_trials is not None and n_trials < 1:
        raise InputError(f"n_trials must be at least 1; got {n_trials!r}.")
    if n_initial < 0:
        raise InputError(f"The 'n_initial' parameter of tune must be at least 0; got {n_initial!r}.")
    for pname, value, low in (("ensemble_size", ensemble_size, 0), ("ensemble_nbest", ensemble_nbest, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"The '{pname}' parameter of tune must be an integer of at least {low}; got {value!r}.")
    if ensemble_model not in ENSEMBLE_MODELS:
        raise InputError(
            f"The 'ensemble_model' parameter of tune must be one of {', '.join(ENSEMBLE_MODELS)}; got {ensemble_model!r}."
        )
    # Everything the user named is checked before any meta-learning work.
    name, make = _optimizer_factory(backend if backend is not None else optimizer)
    if space is None:
        space = get_space(str(task.problem_type), families=families, seed=task.seed)
    elif FAMILY_KEY not in space:
        raise InputError(f"A custom search space must have the {FAMILY_KEY!r} hyperparameter of autometa's spaces.")
    db = open_metadb(metadb) if metadb is not None else None
    starter = _warm_starter(warm_start, db) if initial_configs is None else None
    pruner = _pruner(prune, db)
    transfer_part = _transfer(transfer, db)
    if transfer_part is not None and name == "random":
        raise InputError("Surrogate transfer needs a model-based optimizer: use smac or optuna.")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise InputError(f"The 'n_workers' parameter of tune must be a whole number of at least 1; got {n_workers!r}.")
    optuna_like = isinstance(make, type) and issubclass(make, OptunaOptimizer)
    if storage is not None and not optuna_like:
        raise InputError(f"An Optuna storage needs optimizer='optuna'; got optimizer {name!r}.")
    parallel = dask_client is not None or (n_workers or 1) > 1
    if parallel and n_trials is not None and n_workers is not None and n_workers > n_trials:
        warnings.warn(f"n_workers={n_workers} but only {n_trials} trial(s) are asked for: "
                      f"{n_trials} worker(s) will be used.", AutometaWarning, stacklevel=2)
        n_workers = n_trials
    if dask_client is None and n_workers is not None and n_workers > (os.cpu_count() or 1):
        warnings.warn(f"n_workers={n_workers} local workers on {os.cpu_count()} CPU core(s): the trials will "
                      "compete for cores and each take longer.", AutometaWarning, stacklevel=2)
    deadline = t0 + budget
    per_trial = per_trial_time_limit_s if per_trial_time_limit_s is not None else max(5.0, budget / 4)
    metric = task.metric_obj
    metric_name = metric.name

    setup: dict[str, Any] = {}
    mf: dict[str, float] | None = dict(metafeatures) if metafeatures is not None else None

    def task_metafeatures() -> dict[str, float]:
        nonlocal mf
        if mf is None:
            from autometa.metafeatures import extract

            mf = extract(task)
        return mf

    if evaluator is None:
        stored = None
        if protocol == "auto" and out_dir is not None:  # a resumed run keeps the protocol it was scored with
            stored = _stored_protocol(Path(out_dir))
            protocol = {"repeated-cv": "cv", "cv": "cv", "holdout": "holdout",
                        "successive-halving": "successive-halving"}.get(stored or "", protocol)
        # successive halving needs an optimizer that proposes budgets (SMAC, Optuna), without transfer
        budgeted = bool(getattr(make, "supports_budgets", False)) and transfer_part is None
        if protocol == "successive-halving" and not budgeted:
            raise InputError("Successive halving needs an optimizer that proposes budgets (smac: its multi-fidelity "
                             "facade, optuna: its successive-halving pruner), without transfer; use one of them, "
                             "or protocol 'holdout'.")
        chosen = choose_protocol(task, budget, families=space[FAMILY_KEY].choices,  # type: ignore[attr-defined]
                                 n_workers=n_workers or 1, protocol=protocol, halving=budgeted)
        if stored is not None and chosen.kind == stored:
            chosen = dataclasses.replace(chosen, reason=chosen.reason.replace("asked for", "the run being resumed used it"))
        setup["protocol"] = chosen.as_dict()
        logger.info("protocol: %s", chosen.reason)
    elif protocol not in PROTOCOLS:
        raise InputError(f"The protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}.")
    ev = evaluator if evaluator is not None else Evaluator(
        task, memory_limit_mb=memory_limit_mb, n_jobs=n_jobs, isolation=isolation, splits=make_splits(task, chosen),
        keep_oof=ensemble_size > 0, keep_fold_models=ensemble_size > 0 and refit and ensemble_model != "refit",
    )
    sample_refits = _takes_share(ev)  # whether a refit may be on a sample of the rows
    executor: BaseExecutor
    if parallel:  # the workers start now, while the meta-learning parts run
        executor = DaskExecutor(ev, client=dask_client, n_workers=n_workers)
        logger.info("running up to %d trials at once on Dask", executor.capacity)
    else:
        executor = SerialExecutor(ev)
    try:
        if pruner is not None:
            t_p = time.perf_counter()
            space, what = pruner.prune(task, space, metafeatures=task_metafeatures())
            setup["prune"] = {"name": pruner.name, "what": what, "seconds": round(time.perf_counter() - t_p, 3)}
            logger.info("pruned space (%s): %s", pruner.name, what)
        if initial_configs is not None:
            initial = [dict(c) for c in initial_configs]
            setup["warm_start"] = {"name": "initial_configs", "n": len(initial)}
        elif starter is None:
            initial = []
            setup["warm_start"] = {"name": "none", "n": 0}
        else:
            t_w = time.perf_counter()
            needs_mf = not isinstance(starter, DefaultsWarmStarter)
            try:
                found = starter.suggest(_with_budget(task, budget), space, n_initial,
                                        metafeatures=task_metafeatures() if needs_mf else None)
                setup["warm_start"] = {"name": starter.name}
            except InputError as exc:  # an empty or foreign meta-database: start from the defaults
                warnings.warn(f"warm start ({starter.name}): {exc} Starting from each family's default instead.",
                              AutometaWarning, stacklevel=2)
                found = DefaultsWarmStarter().suggest(task, space, n_initial)
                setup["warm_start"] = {"name": "defaults", "fallback_from": starter.name, "reason": str(exc)}
            initial = [s.config for s in found]
            setup["warm_start"] |= {"n": len(initial), "seconds": round(time.perf_counter() - t_w, 3),
                                    "sources": sorted({s.source for s in found})}
            logger.info("warm start (%s): %d configurations", setup["warm_start"]["name"], len(initial))
        initial = [c for c in initial if in_space(c, space)]
        ensemble: TransferEnsemble | None = None
        if isinstance(transfer_part, BaseTransfer):
            t_t = time.perf_counter()
            ensemble = transfer_part.build(task, space, metafeatures=task_metafeatures())
            setup["transfer"] = {"name": transfer_part.name, "stored_tasks": len(ensemble.store.tasks),
                                 "seconds": round(time.perf_counter() - t_t, 3)}
        elif transfer_part is not None:
            ensemble = transfer_part
            setup["transfer"] = {"name": type(ensemble).__name__, "stored_tasks": len(ensemble.store.tasks)}
        kwargs: dict[str, Any] = {"seed": task.seed, "initial_configs": initial}
        if evaluator is None and chosen.kind == "successive-halving":
            kwargs["min_budget"] = chosen.min_budget
            if chosen.max_budget < 1.0:
                kwargs["max_budget"] = chosen.max_budget
        if ensemble is not None:
            kwargs["transfer"] = ensemble
        if optuna_like and parallel:
            kwargs["constant_liar"] = True
        if storage is not None:
            if study_name is None:
                families_ = ",".join(space[FAMILY_KEY].choices)  # type: ignore[attr-defined]
                study_name = f"autometa-{task.fingerprint()[:16]}-{task.label}-{task.metric}-{config_hash({'f': families_})[:8]}"
            kwargs |= {"storage": storage, "study_name": study_name, "constant_liar": True,
                       "seed": (int(task.seed) * 1_000_003 + os.getpid() * 7919 + hash(socket.gethostname())) % 2**31}
            setup["storage"] = {"study_name": study_name}
        opt = make(space, **kwargs)
        if storage is not None:  # joined a study other processes (or earlier runs) have trials in
            setup["storage"]["trials_before"] = int(getattr(opt, "n_study_trials", 0))

        run_dir = None
        fresh_dir = False
        history: list[TrialRecord] = []
        if out_dir is not None:
            identity = {
                "task_fingerprint": task.fingerprint(),
                "label": task.label,
                "metric": task.metric,
                "problem_type": task.problem_type,
                "seed": int(task.seed),
                "backend": name,
                "families": list(space[FAMILY_KEY].choices),  # type: ignore[attr-defined]
            }
            if "protocol" in setup:
                identity["protocol"] = setup["protocol"]["kind"]
            run_dir = _RunDir(Path(out_dir), identity)
            fresh_dir = not run_dir.path.exists()
            history = run_dir.open()
        n_resumed = len(history)
        if n_resumed:
            logger.info("resumed: %d finished trials read back from %s", n_resumed, out_dir)
        seen: dict[str, TrialRecord] = {trial_key(r.config, r.budget): r for r in history}
        # Ensemble candidates: the best trials' out-of-fold predictions, beside trials.jsonl
        # (trials on all the rows only: a lower rung's model is not what a refit would give).
        pool = None
        if ensemble_size > 0:
            pool = OOFPool(None if run_dir is None else run_dir.path / "oof", nbest=ensemble_nbest)
            if n_resumed:
                pool.restore((r.number, r.loss) for r in history if r.ok and r.full)

        def fail_loss() -> float:
            ok = [r.loss for r in history if r.ok]
            if ok:
                return max(ok)
            worst = metric.to_loss(metric.worst)
            return worst if math.isfinite(worst) else 1e6

        for r in history:  # a failed trial is told as the search tells it (SMAC refuses a NaN cost)
            opt.tell_trial(r.config, r.loss if r.ok else fail_loss(), ok=r.ok, budget=r.budget)

        def best() -> TrialRecord | None:
            """The best trial (see :func:`_ranked_trials`)."""
            ranked = _ranked_trials(history)
            return ranked[0] if ranked else None

        def refit_reserve() -> float:
            if not refit:
                return 0.0
            # the trial the final refit would take (the best whose refit fits the budget)
            order = _refit_candidates(history, str(task.problem_type), _MAX_REFIT_SHARE * budget, n=1)
            if not order:
                return 0.0
            b = order[0]
            # One fit on all rows (a fold fit scaled up), saving the model, and slack. A trial
            # scored on a sample of the rows is refit on as many as the time left allows when
            # all of them would not fit: its reserve is capped (a forest scored on an 81st of
            # 1,000,000 rows, expected at 1,800 s on all of them, once stopped the search after
            # two trials), but covers a refit on the rows it was scored on.
            cost = _refit_cost(b, str(task.problem_type), history)
            if not b.full and cost > _MAX_REFIT_SHARE * budget and sample_refits:
                cost = max(_own_rows_refit_s(b) / _SAMPLE_REFIT_SHARE, _SAMPLE_REFIT_RESERVE * budget)
            reserve = 1.0 + 0.03 * budget + cost
            if pool is not None and ensemble_model == "folds":
                reserve += 0.03 * budget  # loading and saving the members' fold models (measured: up to ~5% over)
            elif pool is not None:
                # An ensemble's refit: the next best candidates' refits too (capped; fold models
                # stand in when the time left falls short).
                others = [history[c.number] for c in pool.candidates()[:_RESERVE_MEMBERS] if c.number != b.number]
                reserve += min(_MAX_ENSEMBLE_RESERVE * budget, sum(_refit_cost(r, str(task.problem_type)) for r in others))
            return reserve

    except BaseException:
        executor.close()
        if evaluator is None:
            ev.close()
        raise
    model, refit_error = None, None
    try:
        running: dict[str, float] = {}  # key -> the trial's deadline
        budgets: dict[str, float | None] = {}  # key -> the trial's row budget
        duplicates = 0
        stop = False
        while True:
            while not stop and executor.free > 0 and (n_trials is None or len(history) + len(running) < n_trials):
                remaining = deadline - time.perf_counter() - refit_reserve()
                if remaining < min(1.0, 0.02 * budget):
                    stop = True
                    break
                config, fidelity = opt.ask_trial()
                key = trial_key(config, fidelity)
                if key in running:  # proposed again while it runs: wait for its result first
                    duplicates += 1
                    stop = duplicates > _MAX_DUPLICATE_ASKS
                    break
                if key in seen:  # proposed again (or done before a resume): reuse the result
                    opt.tell_trial(config, seen[key].loss if seen[key].ok else fail_loss(), ok=seen[key].ok,
                                   budget=fidelity)
                    duplicates += 1
                    if duplicates > _MAX_DUPLICATE_ASKS:
                        stop = True
                    continue
                duplicates = 0
                running[key] = time.perf_counter() + remaining
                budgets[key] = fidelity
                executor.submit(key, config_to_dict(config), time_limit_s=_rung_limit(per_trial, fidelity, config,
                                                                                      str(task.problem_type)),
                                deadline=running[key], budget=fidelity)
            if not running:
                break
            for done in executor.wait():
                trial_deadline = running.pop(done.key)
                fidelity = budgets.pop(done.key)
                res = done.result
                if res.status == "timeout" and time.perf_counter() >= trial_deadline - 0.05:
                    msg = "stopped when the time budget ran out"
                    res = TrialResult(**{**res.__dict__, "error": msg})
                if res.status == "memory" and (res.error or "").startswith(_LIMIT_BELOW_WORKER):
                    stop = True  # no trial can run under this limit
                loss = metric.to_loss(res.scores[metric_name]) if res.ok else math.nan
                record_ = TrialRecord(
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
                    budget=fidelity,
                )
                opt.tell_trial(res.config, loss if res.ok else fail_loss(), ok=res.ok, budget=fidelity)
                history.append(record_)
                seen[done.key] = record_
                # Its out-of-fold predictions (the best trials') before its line in trials.jsonl:
                # a run killed between the two resumes with every trial it reads back whole.
                if pool is not None and res.ok and record_.full:
                    pool.add(record_.number, loss, res.oof, res.fold_models)
                if run_dir is not None:
                    run_dir.append(record_)
                logger.info(
                    "trial %d %s: %s %s (%.1f s)%s", record_.number, record_.family, record_.status,
                    f"{task.metric}={record_.scores[metric_name]:.4f}" if record_.ok else "",
                    record_.duration_s, f" {record_.error}" if record_.error else "",
                )
                b = best()
                for cb in callbacks:
                    cb(
                        Progress(
                            record=record_,
                            n_trials=len(history),
                            best_score=None if b is None else b.scores[metric_name],
                            elapsed_s=time.perf_counter() - t0,
                            time_budget_s=budget,
                            max_trials=n_trials,
                        )
                    )
        if parallel:
            setup["workers"] = executor.describe()
            executor.close(wait=False)  # before the refit: the workers' cores are free for it, their exit overlaps it
        elif evaluator is None:
            # The refit and the ensemble run in this process: the idle worker's copy of the
            # data goes before them (on 1,000,000 rows it held 800 MB while the refit peaked).
            ev.close()

        b = best()
        if b is None:
            if fresh_dir and run_dir is not None:  # nothing half-written: no run to resume
                shutil.rmtree(run_dir.path, ignore_errors=True)
            raise InputError(_no_success(history, budget, task, time.perf_counter() - t0, setup))
        ensemble_info: dict[str, Any] | None = None
        if pool is None:
            setup["ensemble"] = {"used": False, "reason": "turned off (ensemble_size=0)"}
        else:
            ensemble_info, model, setup["ensemble"] = _ensemble(
                task, pool, history, ev, size=ensemble_size, mode=ensemble_model, refit=refit,
                deadline=deadline - _SAVE_SLACK_S - 0.01 * budget,
            )
        if refit and model is None:
            # The reserve kept the time for the best trial's refit when the last trial was
            # submitted; a trial on all the rows is passed over only when its refit would take
            # more than that allowance (half the budget) and more than the time left, one
            # grown from a sample of the rows (an extrapolation) when it would take more than
            # the time left.
            time_left = deadline - time.perf_counter() - _SAVE_SLACK_S
            allowance = max(time_left, _MAX_REFIT_SHARE * budget)
            ranked = _refit_candidates(history, str(task.problem_type), max(time_left, 0.0),
                                       full_allowance=allowance)
            top = _ranked_trials(history)[0]
            # The best trial was scored on a sample of the rows and its refit on all of them
            # would not fit: rather than a worse configuration on all rows (a decision tree
            # at 0.80 instead of a boosting at 0.87 on the million-row table), the best one
            # on as many rows as fit the time left, at least those it was scored on.
            top_cost = _refit_cost(top, str(task.problem_type), history)
            share = (_refit_share(top, str(task.problem_type), history, _SAMPLE_REFIT_SHARE * max(time_left, 0.0))
                     if not top.full and top_cost > max(time_left, 0.0) and sample_refits else None)
            if share is not None and share < 1.0:
                model, refit_error = ev.refit(top.config, share=share)
                if model is not None:
                    n_rows = int(round(share * task.X.shape[0]))
                    setup["refit"] = {
                        "trial": top.number, "share": round(share, 6), "rows": n_rows,
                        "reason": (f"trial {top.number} refit on about {n_rows:,} of {task.X.shape[0]:,} rows: its refit on "
                                   f"all of them was expected to take about {top_cost:.1f} s, more than the "
                                   f"{max(time_left, 0.0):.1f} s left"),
                    }
                    b = top
                    ranked = []
            for cand in ranked:  # fall back to the runner-up if the best cannot be refit
                model, refit_error = ev.refit(cand.config)
                if model is not None:
                    if cand.number != top.number:
                        top_limit = allowance if top.full else max(time_left, 0.0)  # as _refit_candidates
                        if top_cost <= top_limit:
                            why = f"trial {top.number} could not be refit"
                        elif _refit_cost(cand, str(task.problem_type), history) > top_limit:
                            why = (f"no trial's refit on all rows was expected to fit in {top_limit:.1f} s "
                                   f"(trial {top.number}'s: about {top_cost:.1f} s); the quickest was refit")
                        else:
                            why = (f"trial {top.number}'s refit on all rows was expected to take about "
                                   f"{top_cost:.1f} s, more than the {top_limit:.1f} s it could have")
                        setup["refit"] = {"trial": cand.number, "passed_over": top.number, "reason": why}
                    b = cand
                    break
    finally:
        # The local Dask workers were signalled before the refit; they are reaped in the
        # background (waiting for them took 1.2 s past a 20 s budget under load).
        executor.close(wait=not parallel)
        if evaluator is None:
            ev.close()
        if pool is not None:
            pool.close()

    task_summary = {**task.describe(), "greater_is_better": metric.greater_is_better}
    result = TuneResult(
        best_config=config_to_dict(b.config),
        best_score=float(b.scores[metric_name]),
        metric=str(task.metric),
        n_trials=len(history),
        elapsed_s=time.perf_counter() - t0,
        seed=int(task.seed),
        backend=name,
        history=history,
        model=model,
        task=task_summary,
        package_versions=package_versions(),
        refit_error=refit_error if model is None else None,
        n_resumed=n_resumed,
        setup=setup,
        ensemble=ensemble_info,
    )
    if run_dir is not None:
        from autometa.model import save_model

        if model is not None:
            save_model(model, run_dir.path / "model.joblib", task=task, best_config=result.best_config,
                       ensemble=ensemble_info)
        result.leaderboard.to_csv(run_dir.path / "leaderboard.csv")
        # result.json last: its presence says the run finished.
        summary = {**result.summary(), "elapsed_s": round(time.perf_counter() - t0, 3)}
        _atomic_write(run_dir.path / "result.json", json.dumps(summary, indent=2, default=str))
    if record:
        key = str(run_dir.path.resolve()) if run_dir is not None else f"run-{uuid.uuid4().hex}"
        try:  # failing to record never fails the run
            n = _record(db if db is not None else SQLMetaDB(), {**task_summary, "fingerprint": task.fingerprint()},
                        history, key, mf, ensemble_info)
            result.setup["recorded_evaluations"] = n
        except Exception as exc:  # noqa: BLE001 - a store that cannot take the run only costs a warning
            warnings.warn(f"trials not recorded in the meta-database ({exc}).", AutometaWarning, stacklevel=2)
    return result
