"""Probabilistic matrix factorization of the stored task x configuration matrix (after
Fusi, Sheth & Elibol 2018) as a transfer surrogate: latent task and configuration factors,
a Gaussian process from a configuration's encoding to its factors (so that any
configuration gets a prediction), and the new task's embedding inferred from its own
trials by Bayesian linear regression."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from ConfigSpace import ConfigurationSpace
from scipy.stats import norm, rankdata

from autometa.exceptions import InputError
from autometa.metrics import get_metric, is_classification, same_kind
from autometa.spaces import FAMILIES, FAMILY_KEY, encode_configs, get_space, in_space
from autometa.transfer._ensemble import TransferEnsemble
from autometa.transfer._surrogates import SpaceLayout

__all__ = ["PMF", "PMFStore", "fit_pmf_matrix", "fit_pmf_store", "normal_scores"]


def _kind(problem_type: str) -> str:
    return "binary" if is_classification(problem_type) else "regression"


def normal_scores(losses: np.ndarray) -> np.ndarray:
    """Each finite loss replaced by the standard-normal quantile of its rank (ties share
    their mean rank): the scale every stored task is factorized on, robust to a few
    extreme losses (failures, chance-level configurations)."""
    out = np.full(len(losses), np.nan)
    ok = np.isfinite(losses)
    n = int(ok.sum())
    if n:
        out[ok] = norm.ppf((rankdata(losses[ok]) - 0.5) / n)
    return out


class _MultiGP:
    """A fitted scikit-learn GP with several outputs (constant * Matern-5/2 + white noise,
    normalized targets), predicting in plain numpy."""

    def __init__(self, gp: Any) -> None:
        k = gp.kernel_
        self.scale = float(k.k1.k1.constant_value)
        self.length = np.atleast_1d(np.asarray(k.k1.k2.length_scale, dtype=float))
        self.noise = float(k.k2.noise_level)
        self.X = np.asarray(gp.X_train_, dtype=float) / self.length
        self.alpha = np.asarray(gp.alpha_, dtype=float).reshape(len(self.X), -1)
        self.L = np.asarray(gp.L_, dtype=float)
        self.y_mean = np.ravel(np.asarray(gp._y_train_mean, dtype=float))
        self.y_std = np.ravel(np.asarray(gp._y_train_std, dtype=float))

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means ``(n, m)`` and standard deviations ``(n, m)`` of the outputs."""
        from scipy.linalg import solve_triangular

        A = np.asarray(Z, dtype=float) / self.length
        d2 = np.maximum((A * A).sum(1)[:, None] + (self.X * self.X).sum(1)[None, :] - 2.0 * A @ self.X.T, 0.0)
        r = np.sqrt(5.0 * d2)
        Kt = self.scale * (1.0 + r + r * r / 3.0) * np.exp(-r)
        mean = (Kt @ self.alpha) * self.y_std + self.y_mean
        v = solve_triangular(self.L, Kt.T, lower=True, check_finite=False)
        sd = np.sqrt(np.maximum(self.scale - (v * v).sum(0), 1e-12))
        return mean, sd[:, None] * self.y_std[None, :]


@dataclass
class _FactorModel:
    """From one family's hyperparameters to the configuration factors."""

    hp_names: list[str]
    gp: _MultiGP | None
    mean: np.ndarray
    std: np.ndarray

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.gp is None:
            return np.tile(self.mean, (len(Z), 1)), np.tile(self.std, (len(Z), 1))
        return self.gp.predict(Z)


@dataclass
class PMFStore:
    """A factorized task x configuration matrix of one metric and problem kind.

    The stored losses of each task are turned into normal scores of their ranks
    (:func:`normal_scores`) and factorized as ``Z[t, c] = b[c] + u[t] . v[c] + noise``
    (MAP estimate, alternating ridge regressions). ``factors[c] = (b[c], v[c])``;
    ``factor_models`` predict them for any configuration from its encoding.
    """

    metric: str
    problem_type: str
    task_names: list[str]
    task_factors: np.ndarray  # (n_tasks, rank)
    factors: np.ndarray  # (n_configs, 1 + rank): bias, then the latent factors
    configs: list[dict[str, Any]]
    noise: float
    factor_models: dict[str, _FactorModel]
    best_configs: dict[str, list[dict[str, Any]]]
    metafeatures: Any = field(default_factory=pd.DataFrame)
    fingerprint: str = ""

    @property
    def tasks(self) -> list[str]:
        return list(self.task_names)

    @property
    def rank(self) -> int:
        return int(self.task_factors.shape[1])

    def predict_factors(self, layout: SpaceLayout, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Factors ``(n, 1 + rank)`` of the rows of ``X`` (vectors of ``layout.space``) and
        their standard deviations."""
        d = self.factors.shape[1]
        mean = np.tile(self.factors.mean(axis=0), (len(X), 1))
        std = np.tile(self.factors.std(axis=0) + 0.1, (len(X), 1))
        if len(X) == 0:
            return mean, std
        fams = layout.family_of(X)
        for fam in np.unique(fams):
            model = self.factor_models.get(str(fam))
            if model is None:
                continue
            sel = fams == fam
            mean[sel], std[sel] = model.predict(layout.block(X[sel], str(fam), model.hp_names))
        return mean[:, :d], std[:, :d]


def _als(Z: np.ndarray, rank: int, reg: float, n_iter: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Z ~ b + U V^T`` on the finite entries, by alternating ridge regressions."""
    rng = np.random.default_rng(seed)
    n_t, n_c = Z.shape
    M = np.isfinite(Z)
    Zf = np.where(M, Z, 0.0)
    b = np.where(M.any(0), Zf.sum(0) / np.maximum(M.sum(0), 1), 0.0)
    U = 0.1 * rng.standard_normal((n_t, rank))
    V = 0.1 * rng.standard_normal((n_c, rank))
    eye = np.eye(rank)
    reg_c = np.diag(np.r_[1e-3, np.full(rank, reg)])
    for _ in range(n_iter):
        R = Zf - b[None, :]
        for t in range(n_t):
            m = M[t]
            Vt = V[m]
            U[t] = np.linalg.solve(Vt.T @ Vt + reg * eye, Vt.T @ R[t, m])
        A1 = np.c_[np.ones(n_t), U]
        for c in range(n_c):
            m = M[:, c]
            if not m.any():
                b[c], V[c] = 0.0, 0.0
                continue
            A = A1[m]
            sol = np.linalg.solve(A.T @ A + reg_c, A.T @ Zf[m, c])
            b[c], V[c] = sol[0], sol[1:]
    return b, U, V


def _factor_models(
    space: ConfigurationSpace, X: np.ndarray, factors: np.ndarray, seed: int
) -> dict[str, _FactorModel]:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    layout = SpaceLayout(space)
    fams = layout.family_of(X)
    out = {}
    for fam in layout.families:
        sel = fams == fam
        if not sel.any():
            continue
        names = sorted(layout.columns[fam])
        Zb, F = layout.block(X[sel], fam, names), factors[sel]
        gp = None
        if len(np.unique(np.round(Zb, 6), axis=0)) >= 3 and names:
            kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
                length_scale=np.full(len(names), 0.5), length_scale_bounds=(0.05, 20.0), nu=2.5
            ) + WhiteKernel(1e-1, (1e-4, 1.0))
            model = GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=0, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(Zb, F)
            gp = _MultiGP(model)
        out[fam] = _FactorModel(names, gp, F.mean(axis=0), F.std(axis=0) + 0.1)
    return out


#: Factorizations fitted in this process, by the digest of their matrix and settings
#: (a store is read-only once fitted): repeated runs on one meta-database fit once.
_FITTED: dict[str, PMFStore] = {}
_MAX_FITTED = 8


def fit_pmf_matrix(
    losses: pd.DataFrame,
    configs: Mapping[str, Mapping[str, Any]],
    *,
    problem_type: str = "binary",
    metric: str = "balanced_accuracy",
    rank: int = 5,
    reg: float = 1.0,
    n_iter: int = 30,
    seed: int = 0,
    metafeatures: Any = None,
) -> PMFStore:
    """Factorize a task x configuration matrix of losses (lower is better; NaN where not
    evaluated).

    Parameters
    ----------
    losses : DataFrame
        Tasks as rows, configuration keys as columns.
    configs : mapping
        The configuration (active values) of every column key; columns without one, or
        whose configuration is not a point of ``problem_type``'s space, are dropped.
    rank : int
        Number of latent factors per task and configuration.
    reg : float
        Ridge penalty on the factors (the Gaussian priors' precision).
    """
    if rank < 1:
        raise InputError(f"The 'rank' parameter of fit_pmf_matrix must be at least 1; got {rank!r}.")
    if reg <= 0:
        raise InputError(f"The 'reg' parameter of fit_pmf_matrix must be positive; got {reg!r}.")
    kind = _kind(problem_type)
    space = get_space(kind)
    usable: dict[str, dict[str, Any]] = {}
    for h in losses.columns:
        c = configs.get(h)
        if c is None or c.get(FAMILY_KEY) not in FAMILIES:
            continue
        try:  # active values only, as the meta-database gives them; another space's configuration is dropped
            encode_configs(space, [c])
        except (KeyError, ValueError, TypeError):
            continue
        usable[h] = dict(c)
    cols = [h for h in losses.columns if h in usable]
    frame = losses.loc[:, cols]
    frame = frame.loc[frame.notna().sum(axis=1) >= max(3, rank), frame.notna().any(axis=0)]
    cols = list(frame.columns)
    if len(frame) < 2 or len(cols) < 3:
        raise InputError(
            f"Probabilistic matrix factorization needs at least 2 stored tasks and 3 configurations with "
            f"{metric} scores in autometa's space; got {len(frame)} tasks and {len(cols)} configurations. "
            "Build or load the meta-database first (autometa metadb info)."
        )
    L = frame.to_numpy(dtype=float)
    digest = hashlib.sha1(json.dumps([kind, list(map(str, frame.index)), cols, rank, reg, n_iter, seed]).encode()
                          + np.nan_to_num(L, nan=-9e9).round(6).tobytes()).hexdigest()[:16]
    cached = _FITTED.get(digest)
    if cached is not None:
        return cached
    L = frame.to_numpy(dtype=float)
    Z = np.vstack([normal_scores(row) for row in L])
    b, U, V = _als(Z, rank, reg, n_iter, seed)
    M = np.isfinite(Z)
    resid = (Z - b[None, :] - U @ V.T)[M]
    noise = float(max(np.mean(resid**2), 0.05))
    factors = np.c_[b, V]
    X = encode_configs(space, [usable[h] for h in cols])
    best = {}
    for i, t in enumerate(frame.index):
        ok = np.flatnonzero(np.isfinite(L[i]))
        best[str(t)] = [usable[cols[j]] for j in ok[np.argsort(L[i, ok], kind="stable")][:10]]
    mf = metafeatures if metafeatures is not None else pd.DataFrame()
    if len(mf):
        mf = mf.loc[[t for t in frame.index if t in mf.index]]
    store = PMFStore(
        metric=metric, problem_type=kind, task_names=[str(t) for t in frame.index], task_factors=U, factors=factors,
        configs=[usable[h] for h in cols], noise=noise, factor_models=_factor_models(space, X, factors, seed),
        best_configs=best, metafeatures=mf, fingerprint=digest,
    )
    while len(_FITTED) >= _MAX_FITTED:
        _FITTED.pop(next(iter(_FITTED)))
    _FITTED[digest] = store
    return store


def fit_pmf_store(
    metadb: Any,
    *,
    metric: str,
    problem_type: str,
    exclude: Sequence[str] = (),
    rank: int = 5,
    reg: float = 1.0,
    seed: int = 0,
) -> PMFStore:
    """Factorize the stored ``metric`` scores of every stored task of the problem kind
    (``binary``/``multiclass``: classification tasks; ``regression``), leaving out
    ``exclude``. Takes about a second on the shipped meta-dataset."""
    m = get_metric(metric)
    kinds = same_kind(_kind(problem_type))
    tasks = metadb.tasks()
    matrix = metadb.performance_matrix(m.name)
    if matrix.empty:
        raise InputError(f"The meta-database has no {m.name} scores; build or load it first (autometa metadb info).")
    drop = set(exclude)
    names = [t for t in matrix.index if t in tasks.index and tasks.loc[t, "problem_type"] in kinds and t not in drop]
    sign = -1.0 if m.greater_is_better else 1.0
    losses = sign * matrix.loc[names].astype(float)
    return fit_pmf_matrix(losses, metadb.configurations(), problem_type=problem_type, metric=m.name, rank=rank,
                          reg=reg, seed=seed, metafeatures=metadb.metafeatures())


class PMF(TransferEnsemble):
    """Probabilistic matrix factorization as a transfer surrogate (after Fusi et al. 2018).

    The new task's loss at configuration ``x`` is modelled as
    ``w0 + wb * b(x) + u . v(x)``, with ``(b(x), v(x))`` the configuration's factors (a
    stored configuration's own, any other's predicted by a Gaussian process from its
    encoding, whose uncertainty adds to the prediction's). The task weights
    ``w = (w0, wb, u)`` have a Gaussian prior (``u``: the stored tasks' embeddings' mean
    and covariance; ``wb`` around 1; ``w0`` around 0), and every :meth:`fit` computes
    their posterior from the task's observed losses (standardized) by Bayesian linear
    regression with the factorization's residual noise. Before any observation the
    prediction is the average stored task's: the configurations that are good on most
    tasks come first.

    Parameters
    ----------
    store : PMFStore
        The factorized matrix (:func:`fit_pmf_store`).
    space : ConfigurationSpace
        The new task's search space (vectors of it are what ``fit``/``predict`` take).
    seed : int
    scale_sd : float
        Prior standard deviation of ``wb``, how much the new task may stretch the
        shared configuration quality.
    """

    name = "pmf"

    def __init__(self, store: PMFStore, space: ConfigurationSpace, *, seed: int = 0, scale_sd: float = 0.5,
                 metafeatures: Mapping[str, float] | None = None, max_base_models: int = 20) -> None:
        super().__init__(store, space, seed=seed, max_base_models=max_base_models,  # type: ignore[arg-type]
                         metafeatures=metafeatures)
        if scale_sd <= 0:
            raise InputError(f"The 'scale_sd' parameter of PMF must be positive; got {scale_sd!r}.")
        self.pmf: PMFStore = store
        self.scale_sd = scale_sd
        U = store.task_factors
        k = store.rank
        cov_u = np.cov(U.T).reshape(k, k) if len(U) > 1 else np.eye(k)
        self.prior_mean = np.r_[0.0, 1.0, U.mean(axis=0)]
        self.prior_cov = np.zeros((k + 2, k + 2))
        self.prior_cov[0, 0] = 1.0
        self.prior_cov[1, 1] = scale_sd**2
        self.prior_cov[2:, 2:] = cov_u + 1e-3 * np.eye(k)
        self.prior_prec = np.linalg.inv(self.prior_cov)
        self.post_mean = self.prior_mean.copy()
        self.post_cov = self.prior_cov.copy()
        self._phi = np.empty((0, k + 2))
        self._phi_var = np.empty((0, k + 2))
        self._ys = np.empty(0)
        self._noise = np.empty(0)

    # -- features ------------------------------------------------------------------------
    def features(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(1, b(x), v(x))`` of the rows of ``X`` and the variances of their entries."""
        F, S = self.pmf.predict_factors(self.layout, np.asarray(X, dtype=float))
        n = len(F)
        return np.c_[np.ones(n), F], np.c_[np.zeros(n), S * S]

    @staticmethod
    def _posterior(phi: np.ndarray, y: np.ndarray, prec0: np.ndarray, mean0: np.ndarray,
                   noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bayesian linear regression with per-observation noise variances."""
        A = prec0 + (phi / noise[:, None]).T @ phi
        cov = np.linalg.inv(A)
        mean = cov @ (prec0 @ mean0 + phi.T @ (y / noise))
        return mean, (cov + cov.T) / 2

    def _predict_with(self, phi: np.ndarray, phi_var: np.ndarray, mean: np.ndarray,
                      cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = phi @ mean
        var = np.einsum("ij,jk,ik->i", phi, cov, phi) + phi_var @ (mean * mean + np.diag(cov))
        return mu, np.maximum(var, 1e-9)

    # -- interface -----------------------------------------------------------------------
    def fit(self, X: np.ndarray, losses: np.ndarray, *, metafeatures: Mapping[str, float] | None = None) -> PMF:
        """Infer the task's embedding from its observations so far (all of them, every call)."""
        losses = np.asarray(losses, dtype=float)
        ok = np.isfinite(losses)
        self._X, self._y = np.asarray(X, dtype=float)[ok], losses[ok]
        self._ys = self._standardized_y() if len(self._y) else np.empty(0)
        self._phi, self._phi_var = self.features(self._X)
        # the factor uncertainty of a configuration that is not stored counts as observation noise
        self._noise = self.pmf.noise + self._phi_var @ (self.prior_mean**2 + np.diag(self.prior_cov))
        if len(self._ys):
            self.post_mean, self.post_cov = self._posterior(self._phi, self._ys, self.prior_prec, self.prior_mean,
                                                            self._noise)
        else:
            self.post_mean, self.post_cov = self.prior_mean.copy(), self.prior_cov.copy()
        self.weights = dict(self.explain(top=self.max_base_models))
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the task's standardized loss at the rows of ``X``."""
        phi, phi_var = self.features(np.asarray(X, dtype=float))
        return self._predict_with(phi, phi_var, self.post_mean, self.post_cov)

    def loo_predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out mean and standard deviation at each observation: the posterior
        from the other observations, predicting the left-out one."""
        n = len(self._ys)
        mean, std = np.zeros(n), np.ones(n)
        for i in range(n):
            keep = np.arange(n) != i
            m, c = self._posterior(self._phi[keep], self._ys[keep], self.prior_prec, self.prior_mean,
                                   self._noise[keep])
            mu, var = self._predict_with(self._phi[i:i + 1], self._phi_var[i:i + 1], m, c)
            mean[i], std[i] = mu[0], np.sqrt(var[0] + self.pmf.noise)
        return mean, std

    def embedding(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and covariance of the task weights ``(w0, wb, u)``."""
        return self.post_mean.copy(), self.post_cov.copy()

    def explain(self, top: int = 5) -> list[tuple[str, float]]:
        """The stored tasks nearest the new task's inferred embedding, with similarity
        weights summing to 1 over all stored tasks."""
        U = self.pmf.task_factors
        if len(U) == 0:
            return []
        d2 = ((U - self.post_mean[2:]) ** 2).sum(axis=1)
        scale = float(np.median(d2)) or 1.0
        w = np.exp(-d2 / scale)
        w = w / w.sum()
        order = np.argsort(-w, kind="stable")[:top]
        return [(self.pmf.task_names[i], float(w[i])) for i in order]

    def candidates(self, space: ConfigurationSpace) -> list[dict[str, Any]]:
        """Every factorized configuration that is a point of ``space``: where the model
        knows the factors exactly."""
        return [c for c in self.pmf.configs if in_space(c, space)]

    def precompute(self, X: np.ndarray) -> None:  # the stored factors are looked up already
        return None

    def _compute_weights(self, metafeatures: Mapping[str, float] | None) -> dict[str, float]:
        return dict(self.explain(top=self.max_base_models))

