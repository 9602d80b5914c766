"""Transfer ensembles over stored task surrogates: RGPE (ranking-weighted) and TST-R
(similarity-weighted), plus expected improvement on their predictions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace
from scipy.stats import norm

from autometa.transfer._surrogates import SpaceLayout, SurrogateStore, TaskSurrogate

__all__ = ["RGPE", "TSTR", "TransferEnsemble", "expected_improvement", "ranking_losses"]

TARGET = "__target__"


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """Expected improvement below ``best`` (minimization) of a Gaussian N(mean, std^2)."""
    std = np.maximum(np.asarray(std, dtype=float), 1e-9)
    z = (best - xi - mean) / std
    return (best - xi - mean) * norm.cdf(z) + std * norm.pdf(z)


def ranking_losses(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Misranked pairs of each sample row against the observed ``y``.

    ``samples`` has shape ``(n_samples, n_points)``; a pair ``(i, j)`` with ``y_i < y_j`` is
    misranked when the sample orders it the other way (ties count as misranked).
    """
    y = np.asarray(y, dtype=float)
    less = y[:, None] < y[None, :]  # (i, j) with y_i < y_j
    s = samples[:, :, None] >= samples[:, None, :]
    return (s & less[None]).sum(axis=(1, 2)).astype(float)


class TransferEnsemble:
    """Base class: a weighted ensemble of stored task surrogates and a surrogate of the
    target task's own observations, with ``fit(X, losses)`` / ``predict(X)`` in the vector
    encoding of ``space`` (as SMAC's models see it).

    Parameters
    ----------
    store : SurrogateStore
        Fitted surrogates of past tasks (:func:`~autometa.transfer.fit_surrogate_store`).
    space : ConfigurationSpace
        The search space of the new task (may hold a subset of the families).
    seed : int
    max_base_models : int
        Only the best-weighted stored surrogates are queried (prediction cost grows with
        their number); the remaining weight is renormalized.
    """

    name = "transfer"

    def __init__(self, store: SurrogateStore, space: ConfigurationSpace, *, seed: int = 0, max_base_models: int = 20,
                 metafeatures: Mapping[str, float] | None = None) -> None:
        self.store = store
        self.metafeatures = dict(metafeatures) if metafeatures is not None else None
        self.space = space
        self.layout = SpaceLayout(space)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.max_base_models = max_base_models
        self.target: TaskSurrogate | None = None
        self.weights: dict[str, float] = {}
        self._X = np.empty((0, len(space)))
        self._mf_dist: dict[str, float] | None = None
        self._y = np.empty(0)

    def _metafeature_distances(self, metafeatures: Mapping[str, float] | None) -> dict[str, float]:
        mf = self.store.metafeatures
        tasks = self.store.tasks
        if metafeatures is None or mf is None or len(mf) == 0:
            return {t: 0.5 for t in tasks}
        cols = [c for c in mf.columns if mf[c].notna().mean() >= 0.5]
        frame = mf[cols].replace([np.inf, -np.inf], np.nan)
        mean = frame.mean()
        frame = frame.fillna(mean)
        lo, hi = frame.min(), frame.max()
        scale = (hi - lo).replace(0, 1.0)
        Z = ((frame - lo) / scale).clip(-1, 2)
        v = np.array([metafeatures.get(c, math.nan) for c in cols], dtype=float)
        v = np.where(np.isfinite(v), v, mean.to_numpy())
        z = np.clip((v - lo.to_numpy()) / scale.to_numpy(), -1, 2)
        d = np.abs(Z.to_numpy() - z).mean(axis=1)
        d = d / max(float(d.max()), 1e-12)
        out = dict(zip(Z.index, d, strict=True))
        return {t: float(out.get(t, 1.0)) for t in tasks}

    # -- stored surrogates ---------------------------------------------------------------
    def precompute(self, X: np.ndarray) -> None:
        """Predict every stored surrogate at the rows of ``X`` once (e.g. a fixed candidate
        pool); later predictions at those rows are looked up instead of recomputed."""
        X = np.asarray(X, dtype=float)
        self._memo_index = {row.tobytes(): i for i, row in enumerate(X)}
        self._memo = {t: s.predict(self.layout, X) for t, s in self.store.surrogates.items()}

    def _base_predict(self, task: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        memo = getattr(self, "_memo", None)
        if memo is not None and task in memo:
            idx = [self._memo_index.get(row.tobytes(), -1) for row in X]
            if min(idx, default=0) >= 0:
                mu, sd = memo[task]
                return mu[idx], sd[idx]
        return self.store.surrogates[task].predict(self.layout, X)

    # -- target model --------------------------------------------------------------------
    def _fit_target(self, X: np.ndarray, losses: np.ndarray) -> None:
        self._X, self._y = np.asarray(X, dtype=float), np.asarray(losses, dtype=float)
        # few points: fixed kernel hyperparameters are more robust than an ML-II fit
        self.target = TaskSurrogate.fit(TARGET, self.space, self._X, self._y, seed=self.seed, optimize=len(self._y) >= 10) if len(self._y) else None

    def _target_predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.target is None or not self.target.models:
            return np.zeros(len(X)), np.ones(len(X))
        return self.target.predict(self.layout, X)

    def _target_loo(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out mean and std of the target surrogate at its observations,
        in closed form from each family's fitted GP."""
        n = len(self._y)
        y = self._standardized_y()
        mean = np.full(n, float(y.mean()) if n else 0.0)
        std = np.ones(n)
        if self.target is None:
            return mean, std
        fams = self.layout.family_of(self._X)
        for fam, model in self.target.models.items():
            idx = np.flatnonzero(fams == fam)
            if model.gp is None or len(idx) < 2:
                # no model of this family without the point: the other families' mean
                for i in idx:
                    rest = np.delete(y, i)
                    mean[i] = rest.mean() if len(rest) else 0.0
                    std[i] = max(rest.std(), 0.1) if len(rest) > 1 else 1.0
                continue
            gp = model.gp
            Kinv = np.linalg.pinv(gp.train_kernel())
            yn = (y[idx] - gp.y_mean) / gp.y_std
            a = Kinv @ yn
            d = np.maximum(np.diag(Kinv), 1e-12)
            mean[idx] = (yn - a / d) * gp.y_std + gp.y_mean
            std[idx] = np.sqrt(1.0 / d) * gp.y_std
        return mean, np.maximum(std, 1e-6)

    def _standardized_y(self) -> np.ndarray:
        y = self._y
        return (y - y.mean()) / (y.std() if len(y) > 1 and y.std() > 1e-12 else 1.0)

    # -- interface -----------------------------------------------------------------------
    def fit(self, X: np.ndarray, losses: np.ndarray, *, metafeatures: Mapping[str, float] | None = None) -> TransferEnsemble:
        """Fit the target surrogate on the observations so far and recompute the weights."""
        ok = np.isfinite(np.asarray(losses, dtype=float))
        self._fit_target(np.asarray(X, dtype=float)[ok], np.asarray(losses, dtype=float)[ok])
        if metafeatures is not None:
            self.metafeatures, self._mf_dist = dict(metafeatures), None
        self.weights = self._compute_weights(self.metafeatures)
        return self

    def _compute_weights(self, metafeatures: Mapping[str, float] | None) -> dict[str, float]:
        raise NotImplementedError

    def _top(self, weights: dict[str, float]) -> dict[str, float]:
        base = sorted(((w, t) for t, w in weights.items() if t != TARGET and w > 0), reverse=True)[: self.max_base_models]
        kept = {t: w for w, t in base}
        if TARGET in weights:
            kept[TARGET] = weights[TARGET]
        total = sum(kept.values())
        return {t: w / total for t, w in kept.items()} if total > 0 else {TARGET: 1.0}

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the (standardized) loss at the rows of ``X``."""
        raise NotImplementedError

    def incumbent_value(self) -> float:
        """The ensemble's mean at the best observation (EI's reference point)."""
        if len(self._y) == 0:
            return 0.0
        mean, _ = self.predict(self._X)
        return float(mean.min())

    def explain(self, top: int = 5) -> list[tuple[str, float]]:
        """The heaviest members of the ensemble: ``(task, weight)``."""
        return sorted(self.weights.items(), key=lambda kv: -kv[1])[:top]

    def candidates(self, space: ConfigurationSpace) -> list[dict[str, Any]]:
        """Stored configurations worth scoring when proposing (points of ``space``): the
        best stored configurations of the five heaviest members, three each."""
        from ConfigSpace.util import deactivate_inactive_hyperparameters

        out: list[dict[str, Any]] = []
        for task, _ in self.explain(top=5):
            for c in self.store.best_configs.get(task, [])[:3]:
                try:
                    out.append(dict(deactivate_inactive_hyperparameters(dict(c), space)))
                except Exception:  # noqa: BLE001 - not a point of this (pruned or restricted) space
                    continue
        return out


class RGPE(TransferEnsemble):
    """Ranking-weighted Gaussian-process ensemble (Feurer, Letham, Hutter & Bakshy 2018).

    Each member's weight is the probability that it ranks the target's observations best,
    estimated from ``n_samples`` posterior draws; the target's own surrogate is judged by
    leave-one-out draws. Members whose median ranking loss exceeds the target's 95th
    percentile (dilution), or that rank worse than chance, are dropped. The ensemble's
    mean is the weighted mean of the members, its variance the weighted sum of their
    variances (weights squared).
    """

    name = "rgpe"

    def __init__(self, store: SurrogateStore, space: ConfigurationSpace, *, seed: int = 0, n_samples: int = 256,
                 max_base_models: int = 20, metafeatures: Mapping[str, float] | None = None) -> None:
        super().__init__(store, space, seed=seed, max_base_models=max_base_models, metafeatures=metafeatures)
        self.n_samples = n_samples

    def _compute_weights(self, metafeatures: Mapping[str, float] | None) -> dict[str, float]:
        tasks = self.store.tasks
        n = len(self._y)
        if self._mf_dist is None:
            self._mf_dist = self._metafeature_distances(metafeatures)
        mf_dist = self._mf_dist  # not None here (a local, so the lambda below sees the narrowed type)
        if not tasks:
            return {TARGET: 1.0}
        if n < 3:  # too few pairs to judge rankings: the nearest tasks (meta-features) share equally
            near = sorted(tasks, key=lambda t: (mf_dist.get(t, 1.0), t))[: self.max_base_models]
            return {t: 1.0 / len(near) for t in near}
        y = self._y
        S = self.n_samples
        losses = np.empty((len(tasks) + 1, S))
        for k, t in enumerate(tasks):
            mu, sd = self._base_predict(t, self._X)
            draws = mu[None, :] + sd[None, :] * self.rng.standard_normal((S, n))
            losses[k] = ranking_losses(draws, y)
        mu, sd = self._target_loo()
        draws = mu[None, :] + sd[None, :] * self.rng.standard_normal((S, n))
        losses[-1] = ranking_losses(draws, y)
        n_pairs = float(np.sum(y[:, None] < y[None, :]))
        # dilution prevention and chance: drop members that rank no better than a coin
        keep = np.ones(len(tasks) + 1, dtype=bool)
        if n_pairs > 0:
            median = np.median(losses[:-1], axis=1)
            keep[:-1] = (median <= np.percentile(losses[-1], 95)) & (median < 0.5 * n_pairs)
        masked = np.where(keep[:, None], losses, np.inf)
        # argmin with random tie-breaking
        jitter = self.rng.random(masked.shape) * 1e-3
        best = np.argmin(masked + jitter, axis=0)
        counts = np.bincount(best, minlength=len(tasks) + 1).astype(float)
        w = {t: counts[k] / S for k, t in enumerate(tasks) if counts[k] > 0}
        w[TARGET] = counts[-1] / S
        return self._top(w)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        mean = np.zeros(len(X))
        var = np.zeros(len(X))
        for t, w in self.weights.items():
            if w <= 0:
                continue
            mu, sd = self._target_predict(X) if t == TARGET else self._base_predict(t, X)
            mean += w * mu
            var += w * w * sd * sd
        if not self.weights:
            var[:] = 1.0
        return mean, np.maximum(var, 1e-12)


class TSTR(TransferEnsemble):
    """Two-stage transfer surrogate with ranking similarity (after Wistuba, Schilling &
    Schmidt-Thieme 2016).

    A stored task's weight is an Epanechnikov kernel of its distance to the new task.
    The distance blends the meta-feature distance (min-max scaled L1, as the kNN warm
    start) with the share of the new task's observed pairs the stored surrogate ranks
    wrongly; the ranking part takes over as observations accumulate. The target
    surrogate has the kernel's peak weight (0.75); the ensemble's mean is the normalized
    weighted mean, its variance the target surrogate's.
    """

    name = "tstr"

    def __init__(self, store: SurrogateStore, space: ConfigurationSpace, *, seed: int = 0, bandwidth: float = 0.5,
                 max_base_models: int = 20, metafeatures: Mapping[str, float] | None = None) -> None:
        super().__init__(store, space, seed=seed, max_base_models=max_base_models, metafeatures=metafeatures)
        self.bandwidth = bandwidth

    def _compute_weights(self, metafeatures: Mapping[str, float] | None) -> dict[str, float]:
        if self._mf_dist is None:
            self._mf_dist = self._metafeature_distances(metafeatures)
        tasks = self.store.tasks
        y = self._y
        n = len(y)
        n_pairs = float(np.sum(y[:, None] < y[None, :])) if n else 0.0
        alpha = 2.0 / (2.0 + n)  # weight of the meta-feature distance
        w: dict[str, float] = {}
        for t in tasks:
            d = self._mf_dist.get(t, 1.0)
            if n_pairs > 0:
                mu, _ = self._base_predict(t, self._X)
                disagree = float(ranking_losses(mu[None, :], y)[0]) / n_pairs
                d = alpha * d + (1 - alpha) * disagree
            u = d / self.bandwidth
            w[t] = 0.75 * (1 - u * u) if u < 1 else 0.0
        w[TARGET] = 0.75 if n else 0.0
        return self._top(w) if any(v > 0 for k, v in w.items() if k != TARGET) else {TARGET: 1.0}

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        mean = np.zeros(len(X))
        t_mu, t_sd = self._target_predict(X)
        for t, w in self.weights.items():
            mu = t_mu if t == TARGET else self._base_predict(t, X)[0]
            mean += w * mu
        return mean, np.maximum(t_sd * t_sd, 1e-12)


def make_ensemble(kind: str, store: SurrogateStore, space: ConfigurationSpace, **kwargs: Any) -> TransferEnsemble:
    """``"rgpe"`` or ``"tstr"``."""
    from autometa.exceptions import InputError

    kinds: dict[str, type[TransferEnsemble]] = {"rgpe": RGPE, "tstr": TSTR}
    if kind not in kinds:
        raise InputError(f"Unknown transfer method {kind!r}; choose one of: {', '.join(kinds)}, none.")
    return kinds[kind](store, space, **kwargs)
