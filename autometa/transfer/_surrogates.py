"""Per-task response-surface surrogates: one Gaussian process per model family, fitted on
a task's stored evaluations, predicting standardized loss in ConfigSpace's vector encoding."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace
from ConfigSpace.util import deactivate_inactive_hyperparameters

from autometa.exceptions import InputError
from autometa.metadb import cache_dir
from autometa.metrics import get_metric, is_classification, same_kind
from autometa.spaces import FAMILIES, FAMILY_KEY, encode_configs, get_space

__all__ = ["SpaceLayout", "TaskSurrogate", "SurrogateStore", "fit_surrogate_store", "encode_configs"]

log = logging.getLogger(__name__)

#: Bump when the surrogate model or its encoding changes: cached stores are refitted.
SURROGATE_VERSION = "3"
_INACTIVE = -0.5  # stands in for an inactive (conditional) hyperparameter inside a family
def _kind(problem_type: str) -> str:
    return "binary" if is_classification(problem_type) else "regression"


class SpaceLayout:
    """Where each family's hyperparameters sit in a space's vector encoding
    (``Configuration.get_array()``, the representation SMAC's models see)."""

    def __init__(self, space: ConfigurationSpace) -> None:
        self.space = space
        names = list(space.keys())
        self.family_index = names.index(FAMILY_KEY)
        self.families: list[str] = list(space[FAMILY_KEY].choices)  # type: ignore[attr-defined]
        self.columns: dict[str, dict[str, int]] = {
            fam: {n: i for i, n in enumerate(names) if n.startswith(f"{fam}:")} for fam in self.families
        }

    def family_of(self, X: np.ndarray) -> np.ndarray:
        """Family name of each row of ``X``."""
        idx = np.nan_to_num(X[:, self.family_index], nan=0.0).round().astype(int)
        return np.asarray(self.families, dtype=object)[np.clip(idx, 0, len(self.families) - 1)]

    def block(self, X: np.ndarray, family: str, hp_names: Sequence[str]) -> np.ndarray:
        """The columns of ``hp_names`` (one family's hyperparameters), inactive values filled."""
        cols = self.columns[family]
        out = np.full((X.shape[0], len(hp_names)), _INACTIVE)
        for j, name in enumerate(hp_names):
            if name in cols:
                out[:, j] = X[:, cols[name]]
        return np.where(np.isnan(out), _INACTIVE, out)


def _new_gp(n_dims: int, seed: int) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        length_scale=np.full(max(n_dims, 1), 0.5), length_scale_bounds=(0.05, 20.0), nu=2.5
    ) + WhiteKernel(1e-2, (1e-5, 1.0))
    return GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=0, random_state=seed)


class _GP:
    """The numbers of a fitted scikit-learn GP (constant * Matern-5/2 + white noise,
    normalized targets), predicting in plain numpy: no per-call validation, so the
    thousands of small predictions an acquisition maximizer makes stay cheap."""

    def __init__(self, gp: Any) -> None:
        k = gp.kernel_
        self.scale = float(k.k1.k1.constant_value)
        self.length = np.atleast_1d(np.asarray(k.k1.k2.length_scale, dtype=float))
        self.noise = float(k.k2.noise_level)
        self.X = np.asarray(gp.X_train_, dtype=float) / self.length
        self.alpha = np.asarray(gp.alpha_, dtype=float).ravel()
        self.L = np.asarray(gp.L_, dtype=float)
        self.y_mean = float(np.ravel(gp._y_train_mean)[0])
        self.y_std = float(np.ravel(gp._y_train_std)[0])

    def kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Constant * Matern-5/2 between rows already divided by the length scales."""
        d2 = np.maximum((A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T, 0.0)
        r = np.sqrt(5.0 * d2)
        return self.scale * (1.0 + r + r * r / 3.0) * np.exp(-r)

    def train_kernel(self) -> np.ndarray:
        return self.kernel(self.X, self.X) + self.noise * np.eye(len(self.X))

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import solve_triangular

        Kt = self.kernel(np.asarray(Z, dtype=float) / self.length, self.X)
        mean = Kt @ self.alpha
        v = solve_triangular(self.L, Kt.T, lower=True, check_finite=False)
        var = np.maximum(self.scale + self.noise - (v * v).sum(0), 1e-12)
        return mean * self.y_std + self.y_mean, np.sqrt(var) * self.y_std


@dataclass
class _FamilyModel:
    hp_names: list[str]
    gp: _GP | None  # None: too few distinct points, a constant with the family's spread
    mean: float
    std: float

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.gp is None:
            return np.full(len(Z), self.mean), np.full(len(Z), self.std)
        mu, sd = self.gp.predict(Z)
        return mu, np.maximum(sd, 1e-6)


@dataclass
class TaskSurrogate:
    """The response surface of one task: a Gaussian process per model family, over that
    family's hyperparameters (ConfigSpace's normalized encoding), predicting the task's
    loss standardized over all its evaluations (mean 0, unit variance) so that families
    and tasks are comparable.

    A family the task never evaluated predicts the task's mean loss with unit spread.
    """

    name: str
    models: dict[str, _FamilyModel] = field(default_factory=dict)
    n_observations: int = 0

    @classmethod
    def fit(
        cls, name: str, space: ConfigurationSpace, X: np.ndarray, losses: np.ndarray, *, seed: int = 0,
        optimize: bool = True,
    ) -> TaskSurrogate:
        """Fit on vectors ``X`` of ``space`` (rows of :func:`encode_configs`) and their losses."""
        losses = np.asarray(losses, dtype=float)
        ok = np.isfinite(losses)
        X, losses = X[ok], losses[ok]
        out = cls(name=name, n_observations=int(len(losses)))
        if len(losses) == 0:
            return out
        mu, sd = float(losses.mean()), float(losses.std())
        y = (losses - mu) / (sd if sd > 1e-12 else 1.0)
        layout = SpaceLayout(space)
        fams = layout.family_of(X)
        for fam in layout.families:
            sel = fams == fam
            if not sel.any():
                continue
            names = sorted(layout.columns[fam])
            Z, yf = layout.block(X[sel], fam, names), y[sel]
            spread = float(yf.std()) if len(yf) > 1 else 1.0
            gp = None
            if len(np.unique(np.round(Z, 6), axis=0)) >= 3 and yf.std() > 1e-9:
                gp = _new_gp(len(names), seed)
                if not optimize:
                    gp.optimizer = None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    gp.fit(Z, yf)
                gp = _GP(gp)
            out.models[fam] = _FamilyModel(names, gp, float(yf.mean()), max(spread, 0.1))
        return out

    def predict(self, layout: SpaceLayout, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the standardized loss at the rows of ``X``."""
        mean = np.zeros(len(X))
        std = np.ones(len(X))
        if len(X) == 0:
            return mean, std
        fams = layout.family_of(X)
        for fam in np.unique(fams):
            sel = fams == fam
            model = self.models.get(str(fam))
            if model is None:
                continue
            mean[sel], std[sel] = model.predict(layout.block(X[sel], str(fam), model.hp_names))
        return mean, std


@dataclass
class SurrogateStore:
    """Fitted surrogates of stored tasks for one metric and problem kind, with the
    tasks' meta-features (for similarity) and their best stored configurations."""

    metric: str
    problem_type: str
    surrogates: dict[str, TaskSurrogate]
    metafeatures: Any  # pandas DataFrame, tasks x features (may be empty)
    best_configs: dict[str, list[dict[str, Any]]]
    fingerprint: str
    #: per task, a digest of the scores its surrogate was fitted on (a later fit reuses it)
    task_digests: dict[str, str] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return list(self.surrogates)

    def subset(self, exclude: Sequence[str] = ()) -> SurrogateStore:
        """The store without some tasks (e.g. the task under study)."""
        drop = set(exclude)
        return SurrogateStore(
            self.metric, self.problem_type, {k: v for k, v in self.surrogates.items() if k not in drop},
            self.metafeatures.loc[[t for t in self.metafeatures.index if t not in drop]] if len(self.metafeatures) else self.metafeatures,
            {k: v for k, v in self.best_configs.items() if k not in drop}, self.fingerprint,
            {k: v for k, v in self.task_digests.items() if k not in drop},
        )


def fit_surrogate_store(
    metadb: Any,
    *,
    metric: str,
    problem_type: str,
    min_evaluations: int = 16,
    cache: bool | str | os.PathLike[str] = True,
    seed: int = 0,
) -> SurrogateStore:
    """Fit (or load from the cache) a :class:`TaskSurrogate` for every stored task of the
    problem kind with at least ``min_evaluations`` evaluations in autometa's space.

    Parameters
    ----------
    metadb : SQLMetaDB
    metric : str
        Scores of this metric are turned into losses (lower is better).
    problem_type : str
        ``binary``/``multiclass`` (classification tasks) or ``regression``.
    cache : bool or path
        Keep fitted stores on disk (``$AUTOMETA_CACHE_DIR`` or ``~/.cache/autometa``, or the
        given directory), one file per meta-database and setting: the first call fits, later
        calls on the same meta-database load in well under a second, and when the store has
        changed (e.g. a recorded run added a task) only the tasks whose scores changed are
        fitted again.
    """
    import joblib

    m = get_metric(metric)
    kind = _kind(problem_type)
    kinds = same_kind(kind)
    tasks = metadb.tasks()
    matrix = metadb.performance_matrix(m.name)
    if matrix.empty:
        raise InputError(f"The meta-database has no {m.name} scores; build or load it first (autometa metadb info).")
    names = [t for t in matrix.index if t in tasks.index and tasks.loc[t, "problem_type"] in kinds]
    matrix = matrix.loc[names]
    matrix = matrix.loc[:, matrix.notna().any(axis=0)]
    digest = hashlib.sha1(
        json.dumps([SURROGATE_VERSION, m.name, kind, seed, min_evaluations, list(matrix.index), list(matrix.columns)]).encode()
        + np.ascontiguousarray(np.nan_to_num(matrix.to_numpy(), nan=-9e9).round(6)).tobytes()
    ).hexdigest()[:16]
    path, previous = None, None
    if cache:
        # One file per store and setting, rewritten when the store changes: a recorded run
        # adds a task, and only that task's surrogate is fitted then (the others are reused).
        cdir = cache_dir() if cache is True else Path(cache)
        setting = hashlib.sha1(json.dumps([SURROGATE_VERSION, str(getattr(metadb, "url", "")), seed,
                                           min_evaluations]).encode()).hexdigest()[:12]
        path = cdir / "surrogates" / f"{kind}-{m.name}-{setting}.joblib"
        if path.is_file():
            try:
                loaded = joblib.load(path)
                if isinstance(loaded, SurrogateStore):
                    if loaded.fingerprint == digest:
                        return loaded
                    previous = loaded
            except Exception:  # noqa: BLE001 - a corrupt or foreign cache file is refitted
                log.warning("ignoring unreadable surrogate cache %s", path)
    configs = metadb.configurations()
    space = get_space(kind)
    usable = {}
    for h in matrix.columns:
        c = configs.get(h)
        if c is None or c.get(FAMILY_KEY) not in FAMILIES:
            continue
        try:
            usable[h] = deactivate_inactive_hyperparameters(dict(c), space)
        except Exception:  # noqa: BLE001 - a config of another space version or source
            continue
    cols = [h for h in matrix.columns if h in usable]
    matrix = matrix.loc[:, cols]
    matrix = matrix.loc[matrix.notna().sum(axis=1) >= min_evaluations]
    if matrix.empty:
        raise InputError(
            f"No stored {kind if kind == 'regression' else 'classification'} task has {min_evaluations}+ "
            f"{m.name} scores in autometa's space; build or load the meta-database first."
        )
    X_all = encode_configs(space, [usable[h] for h in cols])
    surrogates = {}
    best: dict[str, list[dict[str, Any]]] = {}
    sign = -1.0 if m.greater_is_better else 1.0
    digests: dict[str, str] = {}
    for t in matrix.index:
        row = matrix.loc[t].to_numpy(dtype=float)
        ok = np.isfinite(row)
        digests[t] = hashlib.sha1(json.dumps([t, [cols[i] for i in np.flatnonzero(ok)]]).encode()
                                  + row[ok].round(6).tobytes()).hexdigest()[:16]
        if previous is not None and previous.task_digests.get(t) == digests[t] and t in previous.surrogates:
            surrogates[t] = previous.surrogates[t]  # fitted on these very scores before
        else:
            surrogates[t] = TaskSurrogate.fit(t, space, X_all[ok], sign * row[ok], seed=seed)
        order = np.argsort(sign * row[ok])[:10]
        best[t] = [dict(usable[cols[i]]) for i in np.flatnonzero(ok)[order]]
    mf = metadb.metafeatures()
    mf = mf.loc[[t for t in matrix.index if t in mf.index]] if len(mf) else mf
    store = SurrogateStore(m.name, kind, surrogates, mf, best, digest, digests)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        joblib.dump(store, tmp, compress=3)
        tmp.replace(path)
    return store
