from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ConfigSpace import (
    CategoricalHyperparameter,
    Configuration,
    ConfigurationSpace,
    Constant,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)
from ConfigSpace.hyperparameters import Hyperparameter

from autometa.optimizers._base import BaseOptimizer
from autometa.spaces import config_key, config_to_dict

__all__ = ["OptunaOptimizer", "to_optuna_distribution"]

_MAX_REPEATS = 20


def to_optuna_distribution(hp: Hyperparameter) -> Any:
    """The Optuna distribution equivalent to a ConfigSpace hyperparameter."""
    import optuna

    if isinstance(hp, UniformFloatHyperparameter):
        return optuna.distributions.FloatDistribution(hp.lower, hp.upper, log=hp.log)
    if isinstance(hp, UniformIntegerHyperparameter):
        return optuna.distributions.IntDistribution(hp.lower, hp.upper, log=hp.log)
    if isinstance(hp, CategoricalHyperparameter):
        return optuna.distributions.CategoricalDistribution(list(hp.choices))
    if isinstance(hp, OrdinalHyperparameter):
        return optuna.distributions.CategoricalDistribution(list(hp.sequence))
    if isinstance(hp, Constant):
        return optuna.distributions.CategoricalDistribution([hp.value])
    raise TypeError(f"Hyperparameter type {type(hp).__name__} has no Optuna equivalent.")


class OptunaOptimizer(BaseOptimizer):
    """Optuna's TPE sampler (multivariate, grouped for conditional spaces), driven
    through ``study.ask``/``study.tell``.

    The ConfigSpace space is sampled define-by-run: a hyperparameter is suggested only
    when its conditions hold. Warm-start configurations are queued with
    ``study.enqueue_trial``; past results are added with ``study.add_trial``. With
    ``transfer`` (a :class:`autometa.transfer.TransferEnsemble`), a
    :class:`autometa.transfer.TransferSampler` replaces TPE.
    """

    name = "optuna"

    def __init__(
        self,
        space: ConfigurationSpace,
        *,
        seed: int = 0,
        initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
        n_startup_trials: int = 10,
        transfer: Any | None = None,
    ) -> None:
        super().__init__(space, seed=seed, initial_configs=initial_configs)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.transfer = transfer
        if transfer is not None:  # the transfer ensemble proposes every trial
            from autometa.transfer import TransferSampler

            sampler: Any = TransferSampler(transfer, seed=self.seed)
        else:
            with warnings.catch_warnings():  # multivariate/group are flagged experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(
                    seed=self.seed, multivariate=True, group=True, n_startup_trials=n_startup_trials
                )
        self._study = optuna.create_study(direction="minimize", sampler=sampler)
        self._dists = {hp.name: to_optuna_distribution(hp) for hp in space.values()}
        for config in self.initial_configs:
            self._study.enqueue_trial(config_to_dict(config), skip_if_exists=True)
        self._asked: dict[str, Any] = {}
        self._told: set[str] = set()
        self._results: dict[str, tuple[float, bool]] = {}

    def ask(self) -> Configuration:
        for attempt in range(_MAX_REPEATS):
            trial, config = self._ask_once()
            key = config_key(config)
            if key not in self._results or attempt == _MAX_REPEATS - 1:  # the last: the space is used up
                self._asked[key] = trial
                return config
            # the sampler proposed a configuration it was told before: tell it the known
            # result (so that it learns from the repeat) and ask again
            loss, ok = self._results[key]
            self._tell_trial(trial, loss, ok)
        raise AssertionError("unreachable")

    def _ask_once(self) -> tuple[Any, Configuration]:
        trial = self._study.ask()
        values: dict[str, Any] = {}
        for hp in self.space.values():  # topological order: parents first
            conds = self.space.parent_conditions_of[hp.name]
            if all(c.satisfied_by_value(values) if all(p.name in values for p in _parents(c)) else False for c in conds):
                values[hp.name] = _suggest(trial, hp.name, self._dists[hp.name])
        return trial, Configuration(self.space, values=values)

    def _tell_trial(self, trial: Any, loss: float, ok: bool) -> None:
        import optuna

        state = optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL
        self._study.tell(trial, float(loss) if ok else None, state=state)

    def tell(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True) -> None:
        import optuna

        key = config_key(config)
        trial = self._asked.pop(key, None)
        if trial is None and key in self._told:
            return
        self._told.add(key)
        self._results[key] = (float(loss), ok)
        state = optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL
        if trial is not None:
            self._study.tell(trial, float(loss) if ok else None, state=state)
            return
        params = config_to_dict(config)
        self._study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: self._dists[k] for k in params},
                value=float(loss) if ok else None,
                state=state,
            )
        )


def _parents(cond: Any) -> list[Any]:
    return list(getattr(cond, "parents", None) or [cond.parent])


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    import optuna

    if isinstance(dist, optuna.distributions.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)
