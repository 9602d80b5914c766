"""A learned performance predictor over the meta-database's task x configuration matrix,
and the cost-aware warm start it drives.

``f(meta-features, configuration) -> normalized score`` is fitted across all stored
evaluations (Vanschoren's "meta-models"; auto-sklearn's and FLAML's zero-shot learners
rank by similar models). It ranks a large candidate set for a new task: the stored
configurations plus fresh samples of the space. A second model predicts each candidate's
fit time from the table's size, so the first trials can be ordered by expected gain per
second instead of spending a short budget on a few slow configurations.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from ConfigSpace import ConfigurationSpace

from autometa.evaluation import default_fit_row_exponent
from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB, cache_dir, cache_still_fits, open_metadb
from autometa.metrics import get_metric, is_classification, same_kind
from autometa.spaces import (
    FAMILIES,
    FAMILY_KEY,
    config_key,
    default_initial_configs,
    default_reason,
    encode_configs,
    get_space,
)
from autometa.task import Task
from autometa.warmstart._base import BaseWarmStarter, Suggestion, distinct_suggestions, restrict
from autometa.warmstart._cost import STORED_FOLDS, trial_shape

__all__ = ["FamilyForecast", "PerformancePredictor", "PredictorWarmStarter"]

#: Bump when the predictor's features, target or model change: cached predictors are refitted.
PREDICTOR_VERSION = "2"
#: Each further pick of a family already picked counts this much less (a diverse start).
_SAME_FAMILY_DISCOUNT = 0.5


def _kind(problem_type: str) -> str:
    return "binary" if is_classification(problem_type) else "regression"


def _rank_scores(row: pd.Series, greater_is_better: bool) -> pd.Series:
    """A task's stored scores as quantiles in [0, 1] (1: its best configuration), so that
    tasks of different difficulty share one scale; a failure scores 0."""
    ok = row.dropna()
    if len(ok) < 2:
        return pd.Series(np.where(row.notna(), 1.0, 0.0), index=row.index)
    r = ok.rank(ascending=greater_is_better, method="average")
    q = (r - 1.0) / (len(ok) - 1.0)
    return q.reindex(row.index).fillna(0.0)


@dataclass(frozen=True)
class FamilyForecast:
    """Algorithm selection: a family's predicted best normalized score on a task."""

    family: str
    predicted_score: float
    uncertainty: float
    config: dict[str, Any]


class PerformancePredictor:
    """Predicts how well a configuration does on a task from the task's meta-features.

    The target is a configuration's quantile among the stored configurations of a task
    (1: the task's best), so the model learns which configurations rank high where. A
    bag of gradient-boosting regressors, each fitted on a random 80% of the stored tasks,
    gives a mean and a spread (the uncertainty). A log-linear model per family predicts
    the fit time of one fit from the number of training rows, features and classes.

    Parameters
    ----------
    metric : str
        The metric whose stored scores are learned.
    problem_type : str
        Classification tasks learn from stored classification tasks, regression from regression.
    n_models : int
        Models in the bag.
    seed : int

    Attributes
    ----------
    tasks_ : list of str
        The stored tasks fitted on.
    features_ : list of str
        The meta-features used.
    store_counts_ : tuple of int
        The store's tasks and evaluations when :meth:`for_metadb` fitted it.
    """

    store_counts_: tuple[int, int]

    def __init__(self, *, metric: str, problem_type: str, n_models: int = 3, seed: int = 0) -> None:
        if n_models < 1:
            raise InputError(f"The 'n_models' parameter of PerformancePredictor must be at least 1; got {n_models!r}.")
        self.metric = get_metric(metric)
        self.problem_type = _kind(problem_type)
        self.n_models = n_models
        self.seed = seed
        self.space = get_space(self.problem_type)

    # ------------------------------------------------------------------ fitting
    def _features(self, mf: pd.DataFrame) -> np.ndarray:
        X = mf.reindex(columns=self.features_).to_numpy(dtype=float)
        X = np.where(np.isfinite(X), X, np.nan)
        return np.sign(X) * np.log1p(np.abs(X))  # heavy-tailed counts on a comparable scale

    def _design(self, mf_rows: np.ndarray, C: np.ndarray) -> np.ndarray:
        """One row per (task, configuration): meta-features then the configuration's encoding."""
        n_t, n_c = mf_rows.shape[0], C.shape[0]
        return np.hstack([np.repeat(mf_rows, n_c, axis=0), np.tile(C, (n_t, 1))])

    def fit(self, metadb: SQLMetaDB, *, exclude: Sequence[str] = ()) -> PerformancePredictor:
        """Fit on every stored task of the kind with meta-features and scores, but ``exclude``.

        Fits on one thread: OpenMP's default of one thread per core is many times slower
        on a machine that is busy with trials (measured: 9 s against 230 s on 2 busy cores).
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):
            return self._fit(metadb, exclude)

    def _fit(self, metadb: SQLMetaDB, exclude: Sequence[str]) -> PerformancePredictor:
        from sklearn.ensemble import HistGradientBoostingRegressor

        kind = same_kind(self.problem_type)
        tasks = metadb.tasks()
        matrix = metadb.performance_matrix(self.metric.name)
        mf = metadb.metafeatures()
        drop = set(exclude)
        names = [t for t in matrix.index if t in mf.index and t in tasks.index
                 and tasks.loc[t, "problem_type"] in kind and t not in drop]
        if len(names) < 5:
            raise InputError(
                f"The meta-database has {len(names)} {self.problem_type} tasks with meta-features and "
                f"{self.metric.name} scores; a performance predictor needs at least 5."
            )
        matrix = matrix.loc[names].dropna(axis=1, how="all")
        configs = metadb.configurations()
        hashes = [h for h in matrix.columns if h in configs and configs[h].get(FAMILY_KEY) in FAMILIES]
        matrix = matrix[hashes]
        mf = mf.loc[names]
        mf = mf.loc[:, mf.notna().mean() >= 0.5]
        self.features_ = list(mf.columns)
        self.tasks_ = names
        C = encode_configs(self.space, [configs[h] for h in hashes])
        Y = np.vstack([_rank_scores(matrix.loc[t], self.metric.greater_is_better).to_numpy() for t in names])
        observed = matrix.notna().to_numpy() | np.isfinite(Y)
        M = self._features(mf)
        rng = np.random.default_rng(self.seed)
        self.models_ = []
        for b in range(self.n_models):
            pick = rng.random(len(names)) < 0.8 if self.n_models > 1 else np.ones(len(names), dtype=bool)
            X = self._design(M[pick], C)
            y = Y[pick].ravel()
            keep = observed[pick].ravel()
            model = HistGradientBoostingRegressor(max_iter=150, learning_rate=0.15, max_leaf_nodes=31,
                                                  min_samples_leaf=40, l2_regularization=1.0, random_state=self.seed + b)
            model.fit(X[keep], y[keep])
            self.models_.append(model)
        self._fit_time_model(metadb, names, hashes, configs, tasks, C)
        return self

    def _fit_time_model(self, metadb: SQLMetaDB, names: list[str], hashes: list[str],
                        configs: Mapping[str, Mapping[str, Any]], tasks: pd.DataFrame, C: np.ndarray) -> None:
        """Per family: log(seconds of one fit) ~ log rows + log features + log classes + configuration."""
        from sklearn.linear_model import Ridge

        encoded = dict(zip(hashes, np.nan_to_num(C, nan=-0.5), strict=True))
        rows: dict[str, list[tuple[np.ndarray, float]]] = {}
        self.max_train_rows_ = 1.0
        for t in names:
            n = float(tasks.loc[t, "n_rows"] or 0)
            p = float(tasks.loc[t, "n_features"] or 1)
            k = float(tasks.loc[t, "n_classes"] or 1) if is_classification(self.problem_type) else 1.0
            n_train = min(n, 1000.0) * (STORED_FOLDS - 1) / STORED_FOLDS
            self.max_train_rows_ = max(self.max_train_rows_, n_train)
            size = np.log1p([n_train, p, k])
            for h, ev in metadb.scores(t).items():
                if h not in encoded or ev["status"] != "ok" or not ev["fit_time_s"]:
                    continue
                fam = str(configs[h][FAMILY_KEY])
                rows.setdefault(fam, []).append((np.r_[size, encoded[h]],
                                                 math.log(max(ev["fit_time_s"] / STORED_FOLDS, 1e-4))))
        self.time_models_: dict[str, Any] = {}
        for fam, data in rows.items():
            X = np.vstack([x for x, _ in data])
            y = np.asarray([v for _, v in data])
            self.time_models_[fam] = Ridge(alpha=1.0).fit(X, y)
        self.default_log_time_ = float(np.median([m.intercept_ for m in self.time_models_.values()])) if rows else 0.0

    # ------------------------------------------------------------------ predicting
    def predict(self, metafeatures: Mapping[str, float], configs: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted normalized score (mean over the bag) and its spread, per configuration."""
        row = pd.DataFrame([{f: metafeatures.get(f, math.nan) for f in self.features_}])
        C = self.encode(configs)
        X = self._design(self._features(row), C)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):
            preds = np.vstack([m.predict(X) for m in self.models_])
        return preds.mean(axis=0), preds.std(axis=0)

    def predict_fit_seconds(self, n_train_rows: float, n_features: float, n_classes: float,
                            configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted seconds of one fit of each configuration on a table of this size."""
        rows_seen = min(max(n_train_rows, 1.0), self.max_train_rows_)  # beyond: the complexity exponent
        size = np.log1p([rows_seen, max(n_features, 1.0), max(n_classes, 1.0)])
        C = np.nan_to_num(self.encode(configs), nan=-0.5)
        X = np.hstack([np.tile(size, (len(C), 1)), C])
        fams = np.asarray([str(c.get(FAMILY_KEY)) for c in configs])
        log_t = np.full(len(C), self.default_log_time_)
        for fam, model in self.time_models_.items():
            rows = fams == fam
            if rows.any():
                log_t[rows] = model.predict(X[rows])
        if n_train_rows > self.max_train_rows_:
            growth = math.log(n_train_rows / self.max_train_rows_)
            log_t += np.asarray([default_fit_row_exponent(f, self.problem_type) for f in fams]) * growth
        return np.exp(log_t)

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The configurations' vector encoding, each computed once and then remembered
        (ConfigSpace's encoding costs milliseconds per configuration)."""
        memo: dict[str, np.ndarray] = self.__dict__.setdefault("_encoded", {})
        keys = [config_key(c) for c in configs]
        new = [(k, c) for k, c in zip(keys, configs, strict=True) if k not in memo]
        if new:
            for (k, _), row in zip(new, encode_configs(self.space, [c for _, c in new]), strict=True):
                memo[k] = row
        return np.vstack([memo[k] for k in keys]) if keys else np.empty((0, len(self.space)))

    def families(
        self,
        metafeatures: Mapping[str, float],
        candidates: Sequence[Mapping[str, Any]],
        *,
        predicted: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[FamilyForecast]:
        """Algorithm selection: each family's best predicted candidate, best family first
        (``predicted``: the candidates' ``predict`` output, when already computed)."""
        mean, std = predicted if predicted is not None else self.predict(metafeatures, candidates)
        best: dict[str, FamilyForecast] = {}
        for c, m, s in zip(candidates, mean, std, strict=True):
            fam = str(c[FAMILY_KEY])
            if fam not in best or m > best[fam].predicted_score:
                best[fam] = FamilyForecast(fam, float(m), float(s), dict(c))
        return sorted(best.values(), key=lambda f: -f.predicted_score)

    # ------------------------------------------------------------------ caching
    @classmethod
    def for_metadb(cls, metadb: SQLMetaDB, *, metric: str, problem_type: str, exclude: Sequence[str] = (),
                   n_models: int = 3, seed: int = 0, stale_tasks: int | None = None) -> PerformancePredictor:
        """A predictor fitted on ``metadb``, loaded from the on-disk cache
        (:func:`autometa.metadb.cache_dir`) while the store has changed little since.

        Each recorded run adds a task to the store, and a refit costs seconds of the run's
        budget (measured: 8-16 s for the classification predictor on 2 busy cores), so a
        cached fit is reused while the store has gained at most ``stale_tasks`` tasks and
        lost no evaluation; by default 5% of the tasks it was fitted on (at least one).
        The predictor then does not know the newest few tasks; past that it is refitted
        and cached again.
        """
        import joblib

        info = metadb.info()
        n_tasks, n_evals = int(info.get("tasks") or 0), int(info.get("evaluations") or 0)
        key = json.dumps([PREDICTOR_VERSION, metric, _kind(problem_type), sorted(exclude), n_models, seed,
                          str(metadb.url)], default=str)
        path = cache_dir() / "predictors" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.joblib"
        if path.is_file():
            try:
                cached = joblib.load(path)
                fitted_tasks, fitted_evals = cached.store_counts_
                if cache_still_fits(fitted_tasks, n_tasks, stale_tasks) and n_evals >= fitted_evals:
                    return cached  # type: ignore[no-any-return]
            except Exception:  # noqa: BLE001 - an old or cut cache file is refitted
                pass
        model = cls(metric=metric, problem_type=problem_type, n_models=n_models, seed=seed).fit(metadb, exclude=exclude)
        model.store_counts_ = (n_tasks, n_evals)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        joblib.dump(model, tmp)
        tmp.replace(path)
        return model


class PredictorWarmStarter(BaseWarmStarter):
    """The first trials chosen by the learned performance predictor, ordered by expected
    gain per second.

    Candidates: the stored configurations, fresh samples of the space and each family's
    default. Each gets a predicted normalized score (mean and spread over the bag) and a
    predicted trial time on this table (folds x one fit). Greedily, the next trial is the
    candidate with the largest expected improvement over the best predicted so far per
    predicted second (Snoek et al. 2012's EI per second); candidates predicted to take
    more than a quarter of ``task.time_budget_s`` are left out. Every family's default
    stays in the list (after the predictor's picks, best-predicted family first), so the
    start never holds less than the defaults start.

    Parameters
    ----------
    metadb : SQLMetaDB, str or None
    exclude : sequence of str
        Stored tasks the predictor must not learn from (leave-one-task-out studies).
    n_samples : int
        Fresh samples of the space among the candidates.
    cost_aware : bool
        Order by expected gain per second (True) or by predicted score alone.
    n_models : int
        Size of the predictor's bag.
    zero_shot_guard : float or None
        Zero-shot (:meth:`ranked`, :func:`~autometa.suggest_config`): the predictor's best
        comes first only when its predicted score beats the package default's by more than
        this many spreads of the two predictions over the bag; otherwise the package
        default comes first and the predictor's best second. None: always the predictor's
        best first. The threshold was chosen on stored scores
        (experiments/results/predictor_guard.md) and then measured with real fits of both
        (experiments/results/zero_shot_live.md): on stored tasks left out fold by fold,
        the first suggestion is at least as good as the package default on 89% of 120
        classification tasks (84% without the guard, at about half the mean gain: +0.011
        against +0.019 balanced accuracy) and 91% of 53 regression tasks (81%); on real
        tables outside the meta-database on 44-85% of table-seeds (31-60% without), with
        mixed mean gains (that report).
    """

    name = "predictor"

    def __init__(
        self,
        metadb: SQLMetaDB | str | None = None,
        *,
        exclude: Sequence[str] = (),
        n_samples: int = 500,
        cost_aware: bool = True,
        n_models: int = 3,
        zero_shot_guard: float | None = 4.0,
    ) -> None:
        self.metadb = metadb
        self.exclude = tuple(exclude)
        self.n_samples = n_samples
        self.cost_aware = cost_aware
        self.n_models = n_models
        self.zero_shot_guard = zero_shot_guard
        self._db: SQLMetaDB | None = None

    def predictor(self, metric: str, problem_type: str) -> PerformancePredictor:
        """The fitted predictor for this metric and problem kind (cached on disk)."""
        if self._db is None:
            self._db = open_metadb(self.metadb)
        return PerformancePredictor.for_metadb(self._db, metric=metric, problem_type=problem_type,
                                               exclude=self.exclude, n_models=self.n_models)

    def candidates(self, task: Task, space: ConfigurationSpace) -> list[dict[str, Any]]:
        """Stored configurations, fresh samples (seeded by ``task.seed``) and family
        defaults, all points of ``space``."""
        from autometa.spaces import config_to_dict, in_space

        assert self._db is not None
        stored = [c for c in self._db.configurations().values() if in_space(c, space)]
        sampler = copy.deepcopy(space)  # seeded here, so the caller's space is left as it was
        sampler.seed(int(task.seed))
        fresh = [config_to_dict(c) for c in sampler.sample_configuration(self.n_samples)] if self.n_samples else []
        return distinct_suggestions(default_initial_configs(space, task) + stored + fresh, key=config_key)

    def ranked(self, task: Task, n: int = 5, *, metafeatures: Mapping[str, float] | None = None) -> list[Suggestion]:
        """Zero-shot: the candidates by predicted score alone (no time, no defaults tail),
        over the task's full space, the package default kept second as a guard, or first
        when the predictor's best is not clearly better (``zero_shot_guard``); what
        :func:`autometa.suggest_config` returns."""
        from autometa.metafeatures import extract

        space = get_space(str(task.problem_type))
        model = self.predictor(str(task.metric), str(task.problem_type))
        mf = dict(metafeatures) if metafeatures is not None else extract(task)
        cands = self.candidates(task, space)
        mean, std = model.predict(mf, cands)
        order = np.argsort(-mean, kind="stable")
        top = [self._explain(cands[i], mean[i], std[i], float("nan"), len(model.tasks_), i, cands) for i in order[:n]]
        default_cfg = default_initial_configs(space, task)[0]
        d = next(i for i, c in enumerate(cands) if config_key(c) == config_key(default_cfg))
        best = int(order[0])
        z = (mean[best] - mean[d]) / max(float(np.hypot(std[best], std[d])), 1e-9)
        # "not above": an undefined spread (NaN) holds the predictor's best back too
        guarded = self.zero_shot_guard is not None and best != d and not z > self.zero_shot_guard
        extra = {"uncertainty": float(std[d]), "z_of_best": float(z), "guard": self.zero_shot_guard}
        if guarded:
            why = (f"package default, first: the predictor's best is predicted {mean[best] - mean[d]:.2f} above "
                   f"it, {z:.1f} spreads of the two predictions, not more than {self.zero_shot_guard:g} (a guard "
                   f"against negative transfer); predicted normalized score {mean[d]:.2f}")
        else:
            why = ("package default (kept among the first two as a guard against negative transfer); predicted "
                   f"normalized score {mean[d]:.2f}")
        default = Suggestion(config=default_cfg, source="default", predicted_score=float(mean[d]), explanation=why,
                             extra=extra)
        head = [default] + top if guarded else top[:1] + [default] + top[1:]
        return distinct_suggestions(head)[:n]

    def suggest(
        self, task: Task, space: ConfigurationSpace, n: int = 25, *, metafeatures: Mapping[str, float] | None = None
    ) -> list[Suggestion]:
        from autometa.metafeatures import extract

        model = self.predictor(str(task.metric), str(task.problem_type))
        mf = dict(metafeatures) if metafeatures is not None else extract(task)
        cands = self.candidates(task, space)
        mean, std = model.predict(mf, cands)
        fits, n_train, p, k = trial_shape(task)
        seconds = fits * model.predict_fit_seconds(n_train, p, k, cands) + 0.05
        budget = float(task.time_budget_s) if task.time_budget_s else math.inf
        affordable = seconds <= 0.25 * budget
        starts = default_initial_configs(space, task)  # every family's default, then the second defaults
        defaults = {config_key(c) for c in starts}
        firsts = {config_key(c) for c in starts[: len({c[FAMILY_KEY] for c in starts})]}
        is_default = np.asarray([config_key(c) in defaults for c in cands])
        # the defaults are all kept at the end anyway: the picks are the other candidates
        order = self._order(mean, std, seconds, affordable & ~is_default, n,
                            np.asarray([str(c[FAMILY_KEY]) for c in cands]))
        picked = [self._explain(cands[i], mean[i], std[i], seconds[i], len(model.tasks_), i, cands) for i in order]
        fam_rank = {f.family: r for r, f in enumerate(model.families(mf, cands, predicted=(mean, std)))}
        # every family's default by the family's predicted rank, then the second defaults
        tail = sorted(np.flatnonzero(is_default).tolist(),
                      key=lambda i: (config_key(cands[i]) not in firsts, fam_rank.get(str(cands[i][FAMILY_KEY]), 99),
                                     seconds[i]))
        tail_s = [Suggestion(config=cands[i], source="default", predicted_score=float(mean[i]),
                             explanation=(f"{default_reason(cands[i], str(task.problem_type))} (kept: the defaults "
                                          f"start stays in the start); predicted normalized score {mean[i]:.2f}"))
                  for i in tail]
        n_meta = max(1, n - len(tail_s))
        return restrict(picked[:n_meta] + tail_s, space, n)

    def _order(self, mean: np.ndarray, std: np.ndarray, seconds: np.ndarray, affordable: np.ndarray, n: int,
               families: np.ndarray) -> list[int]:
        """Greedy expected improvement per second over the best predicted so far; a family
        already picked ``k`` times counts ``0.5 ** k`` (a start spread over families)."""
        from scipy.stats import norm

        pool = np.flatnonzero(affordable) if affordable.any() else np.arange(len(mean))
        if not self.cost_aware:
            return [int(i) for i in pool[np.argsort(-mean[pool], kind="stable")][:n]]
        chosen: list[int] = []
        picks: dict[str, int] = {}
        best = float(np.median(mean[pool]))  # the first pick must promise more than a typical candidate
        s = np.maximum(std, 0.02)
        left = [int(i) for i in pool]
        while left and len(chosen) < n:
            idx = np.asarray(left)
            z = (mean[idx] - best) / s[idx]
            ei = (mean[idx] - best) * norm.cdf(z) + s[idx] * norm.pdf(z)
            discount = np.asarray([_SAME_FAMILY_DISCOUNT ** picks.get(f, 0) for f in families[idx]])
            j = int(idx[int(np.argmax(discount * ei / seconds[idx]))])
            picks[families[j]] = picks.get(families[j], 0) + 1
            chosen.append(j)
            left.remove(j)
            best = max(best, float(mean[j]))
        return chosen

    def _explain(self, config: dict[str, Any], m: float, s: float, secs: float, n_tasks: int, i: int,
                 cands: list[dict[str, Any]]) -> Suggestion:
        why = (f", predicted trial time {secs:.1f} s: the largest expected gain per second" if math.isfinite(secs)
               else "")
        return Suggestion(
            config=config, source="predictor", predicted_score=float(m),
            explanation=(f"predicted normalized score {m:.2f} +- {s:.2f} (1 = the best stored configuration of a "
                         f"task like this one; learned on {n_tasks} stored tasks){why}"),
            extra={"predicted_seconds": float(secs), "uncertainty": float(s)},
        )

    def __repr__(self) -> str:
        return (f"PredictorWarmStarter(metadb={self.metadb!r}, cost_aware={self.cost_aware}, "
                f"zero_shot_guard={self.zero_shot_guard!r})")
