"""The transfer ensembles inside the optimizers: a SMAC3 surrogate model and an Optuna
sampler, plus a proposal step over an explicit candidate pool."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.util import deactivate_inactive_hyperparameters, get_one_exchange_neighbourhood

from autometa.transfer._ensemble import TransferEnsemble, expected_improvement
from autometa.transfer._surrogates import encode_configs

__all__ = ["TransferModel", "TransferSampler", "propose"]


def propose(ensemble: TransferEnsemble, candidates: np.ndarray, exclude: np.ndarray | None = None) -> int:
    """Index of the candidate row with the highest expected improvement under the fitted
    ensemble (rows in ``exclude``, a boolean mask, are skipped)."""
    mean, var = ensemble.predict(candidates)
    ei = expected_improvement(mean, np.sqrt(var), ensemble.incumbent_value())
    if exclude is not None:
        ei = np.where(exclude, -np.inf, ei)
    return int(np.argmax(ei))


def _smac_model_base() -> type:
    from smac.model.abstract_model import AbstractModel

    return AbstractModel


class TransferModel(_smac_model_base()):  # type: ignore[misc]
    """A SMAC3 surrogate model backed by a :class:`TransferEnsemble` (RGPE or TST-R).

    SMAC hands it its runhistory as vectors of the configuration space; the ensemble
    refits its target surrogate and weights on every ``train`` call and answers SMAC's
    acquisition maximizer with its mean and variance. Use it with plain (not log-scaled)
    costs and expected improvement, e.g. through
    :class:`autometa.optimizers.SMACOptimizer`'s ``transfer`` argument.
    """

    def __init__(self, ensemble: TransferEnsemble, seed: int = 0) -> None:
        super().__init__(ensemble.space, instance_features=None, pca_components=None, seed=seed)
        self.ensemble = ensemble

    @property
    def meta(self) -> dict[str, Any]:
        meta = super().meta
        meta.update({"ensemble": self.ensemble.name, "n_stored_tasks": len(self.ensemble.store.tasks)})
        return meta

    def _train(self, X: np.ndarray, Y: np.ndarray) -> TransferModel:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ensemble.fit(X, np.asarray(Y, dtype=float).reshape(len(X), -1)[:, 0])
        self._is_trained = True
        return self

    def _predict(self, X: np.ndarray, covariance_type: str | None = "diagonal") -> tuple[np.ndarray, np.ndarray | None]:
        if covariance_type not in (None, "diagonal"):
            raise ValueError(f"TransferModel supports diagonal covariances only; got {covariance_type!r}.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean, var = self.ensemble.predict(np.asarray(X, dtype=float))
        return mean.reshape(-1, 1), (var.reshape(-1, 1) if covariance_type else None)


def _optuna_base() -> type:
    import optuna

    return optuna.samplers.BaseSampler


class TransferSampler(_optuna_base()):  # type: ignore[misc]
    """An Optuna sampler that proposes, before each trial, the configuration of highest
    expected improvement under a :class:`TransferEnsemble`, among random configurations of
    the ConfigSpace space, one-exchange neighbours of the best trials so far, and the best
    stored configurations of the ensemble's heaviest past tasks.

    Parameters are then handed out by name as the (define-by-run) objective suggests
    them; any parameter the proposal does not cover falls back to random sampling.
    Works with :class:`autometa.optimizers.OptunaOptimizer`, whose objective follows the
    same ConfigSpace space.
    """

    def __init__(self, ensemble: TransferEnsemble, *, n_candidates: int = 500, seed: int = 0) -> None:
        import optuna

        self.ensemble = ensemble
        self.space: ConfigurationSpace = ensemble.space
        self.n_candidates = n_candidates
        self._rng = np.random.default_rng(seed)
        self._fallback = optuna.samplers.RandomSampler(seed=seed)
        self._proposals: dict[int, dict[str, Any]] = {}

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _observations(self, study: Any) -> tuple[list[Configuration], np.ndarray]:
        import optuna

        configs, losses = [], []
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            try:
                configs.append(deactivate_inactive_hyperparameters(dict(t.params), self.space))
            except Exception:  # noqa: BLE001 - a trial from another space
                continue
            losses.append(float(t.value))
        return configs, np.asarray(losses, dtype=float)

    def _candidates(self, observed: list[Configuration], losses: np.ndarray) -> list[Mapping[str, Any]]:
        self.space.seed(int(self._rng.integers(2**31 - 1)))
        cands: list[Mapping[str, Any]] = list(self.space.sample_configuration(self.n_candidates))
        for i in np.argsort(losses)[:3]:
            cands.extend(get_one_exchange_neighbourhood(observed[i], seed=int(self._rng.integers(2**31 - 1)), num_neighbors=4))
        cands.extend(self.ensemble.candidates(self.space))
        return cands

    def before_trial(self, study: Any, trial: Any) -> None:
        import optuna

        observed, losses = self._observations(study)
        if not observed:
            return
        X = encode_configs(self.space, observed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ensemble.fit(X, losses)
            cands = self._candidates(observed, losses)
            C = encode_configs(self.space, cands)
            failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
            seen = {json.dumps(dict(c), sort_keys=True, default=str) for c in observed}
            seen |= {json.dumps(dict(sorted(t.params.items())), sort_keys=True, default=str) for t in failed}
            mask = np.array([json.dumps(dict(c), sort_keys=True, default=str) in seen for c in cands])
            best = propose(self.ensemble, C, mask)
        self._proposals[trial.number] = dict(cands[best])

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        proposal = self._proposals.get(trial.number)
        if proposal is not None and param_name in proposal:
            value = proposal[param_name]
            if isinstance(value, np.generic):
                value = value.item()
            if param_distribution._contains(param_distribution.to_internal_repr(value)):
                return value
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Sequence[float] | None) -> None:
        self._proposals.pop(trial.number, None)


def stored_candidates(
    ensemble: TransferEnsemble, space: ConfigurationSpace, per_task: int = 3, top: int = 10
) -> list[Mapping[str, Any]]:
    """The best stored configurations of the ``top`` heaviest past tasks of the ensemble,
    valid in ``space``."""
    out: list[Mapping[str, Any]] = []
    for task, _ in ensemble.explain(top=top):
        for c in ensemble.store.best_configs.get(task, [])[:per_task]:
            try:
                out.append(dict(deactivate_inactive_hyperparameters(dict(c), space)))
            except Exception:  # noqa: BLE001
                continue
    return out
