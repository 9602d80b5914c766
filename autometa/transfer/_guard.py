"""The negative-transfer guard: a two-member ensemble of a meta-model (PMF) and the
target task's own Gaussian process, whose weights follow how well each ranks the
target's observations, so that the meta-model's weight falls to zero once the task's
own trials contradict it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from autometa.exceptions import InputError
from autometa.transfer._ensemble import TARGET, TransferEnsemble, ranking_losses
from autometa.transfer._pmf import PMF

__all__ = ["GuardedEnsemble", "META"]

#: The meta-model's key in :attr:`GuardedEnsemble.weights`.
META = "__meta__"


class GuardedEnsemble(TransferEnsemble):
    """A meta-learned surrogate guarded by the target's own model.

    Two members: ``meta`` (a :class:`PMF`, conditioned on the target's observations) and
    the target's own per-family Gaussian process (as in RGPE). After every observation
    both predict each observed loss *leave-one-out* (from the other observations only);
    ``n_samples`` draws of each member's leave-one-out predictions are scored by the
    number of observed pairs they misrank, and a member's weight is the share of draws
    in which it misranks fewer (ties split evenly), as RGPE weighs its members.

    When it shifts: with fewer than ``min_observations`` observations (too few pairs to
    judge) the meta-model has all the weight. After that its weight is the share above,
    and it is set to zero outright when its median leave-one-out ranking misranks at
    least half the pairs (no better than chance on this task) or more pairs than the
    target model's 95th percentile (the dilution test of RGPE). A task whose ranking of
    configurations inverts the stored tasks' therefore loses the meta-model after a few
    trials, and the search continues on its own model alone (and the meta-model's stored
    configurations leave the candidates). The meta-model is judged as conditioned on the
    trials, so a meta-model that has learnt from them what the prior got wrong earns its
    weight back: PMF, for instance, learns even an inverted ranking after about ten
    trials (a negative weight on the shared configuration quality). The prediction is the
    weighted mixture of the two members (its mean and variance).

    Parameters
    ----------
    meta : PMF
        The meta-model; its store and space are the ensemble's.
    seed : int
    n_samples : int
        Posterior draws per member for the weights.
    min_observations : int
        Observations before the weights are judged.
    """

    name = "guarded"

    def __init__(self, meta: PMF, *, seed: int = 0, n_samples: int = 256, min_observations: int = 4) -> None:
        if not isinstance(meta, PMF):
            raise InputError(f"The 'meta' parameter of GuardedEnsemble must be a PMF; got {type(meta).__name__}.")
        if n_samples < 1:
            raise InputError(f"The 'n_samples' parameter of GuardedEnsemble must be at least 1; got {n_samples!r}.")
        if min_observations < 3:
            raise InputError(
                f"The 'min_observations' parameter of GuardedEnsemble must be at least 3 (one pair to rank "
                f"besides the left-out point); got {min_observations!r}."
            )
        super().__init__(meta.store, meta.space, seed=seed, metafeatures=meta.metafeatures)  # type: ignore[arg-type]
        self.meta = meta
        self.n_samples = n_samples
        self.min_observations = min_observations
        self.weights = {META: 1.0, TARGET: 0.0}
        #: ``(n_observations, meta weight)`` after every :meth:`fit`: how the guard shifted.
        self.history: list[tuple[int, float]] = []

    def fit(self, X: np.ndarray, losses: np.ndarray, *,
            metafeatures: Mapping[str, float] | None = None) -> GuardedEnsemble:
        """Condition both members on the observations and recompute their weights."""
        losses = np.asarray(losses, dtype=float)
        ok = np.isfinite(losses)
        self._fit_target(np.asarray(X, dtype=float)[ok], losses[ok])
        self.meta.fit(X, losses)
        self.weights = self._compute_weights(metafeatures)
        self.history.append((len(self._y), self.weights[META]))
        return self

    def _compute_weights(self, metafeatures: Mapping[str, float] | None) -> dict[str, float]:
        n = len(self._y)
        if n < self.min_observations:
            return {META: 1.0, TARGET: 0.0}
        y = self._y
        n_pairs = float(np.sum(y[:, None] < y[None, :]))
        if n_pairs == 0:
            return {META: 1.0, TARGET: 0.0}
        S = self.n_samples
        m_mu, m_sd = self.meta.loo_predict()
        t_mu, t_sd = self._target_loo()
        lm = ranking_losses(m_mu[None, :] + m_sd[None, :] * self.rng.standard_normal((S, n)), y)
        lt = ranking_losses(t_mu[None, :] + t_sd[None, :] * self.rng.standard_normal((S, n)), y)
        med = float(np.median(lm))
        if med >= 0.5 * n_pairs or med > float(np.percentile(lt, 95)):
            return {META: 0.0, TARGET: 1.0}
        w_meta = float(np.mean((lm < lt) + 0.5 * (lm == lt)))
        return {META: w_meta, TARGET: 1.0 - w_meta}

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the weighted mixture of the two members."""
        X = np.asarray(X, dtype=float)
        w_m, w_t = self.weights[META], self.weights[TARGET]
        parts = []
        if w_m > 0:
            mu, var = self.meta.predict(X)
            parts.append((w_m, mu, var))
        if w_t > 0:
            mu, sd = self._target_predict(X)
            parts.append((w_t, mu, sd * sd))
        mean = np.zeros(len(X))
        for w, mu, _ in parts:
            mean += w * mu
        var = np.zeros(len(X))
        for w, mu, v in parts:
            var += w * (v + (mu - mean) ** 2)
        return mean, np.maximum(var, 1e-12)

    def explain(self, top: int = 5) -> list[tuple[str, float]]:
        """The target model's weight, then the stored tasks nearest the inferred
        embedding, their similarity scaled by the meta-model's weight."""
        rows = [(t, w * self.weights[META]) for t, w in self.meta.explain(top=top)]
        return sorted([(TARGET, self.weights[TARGET]), *rows], key=lambda kv: -kv[1])[:top]

    def candidates(self, space: ConfigurationSpace) -> list[dict[str, Any]]:
        return self.meta.candidates(space) if self.weights[META] > 0 else []

    def precompute(self, X: np.ndarray) -> None:
        return None
