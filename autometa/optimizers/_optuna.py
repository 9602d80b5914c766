from __future__ import annotations

import math
import time
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

from autometa.exceptions import InputError
from autometa.optimizers._base import BaseOptimizer
from autometa.spaces import config_key, config_to_dict, trial_key

__all__ = ["OptunaOptimizer", "to_optuna_distribution"]

_MAX_REPEATS = 20
_OPEN_ATTEMPTS = 5
#: user attribute of the trials this optimizer enqueues (its initial configurations)
_QUEUED = "autometa_queued"
#: user attribute of a racing twin of an enqueued trial: the number of the trial evaluated
_DUPLICATE = "autometa_duplicate_of"


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

    Parameters
    ----------
    constant_liar : bool
        TPE treats trials still running as if they had scored poorly, so that several
        asks before their tells (parallel workers) spread out instead of piling up.
    storage : str, optional
        An Optuna RDB storage URL (``postgresql://...``, ``sqlite:///study.db``): the study
        lives there, and every process that opens the same ``study_name`` shares it —
        several ``autometa tune`` processes on several machines, and optuna-dashboard.
        Trials already in the study (any process's) are known results: they are not
        proposed again, and resuming does not add them twice.
    study_name : str, optional
        The shared study's name; required with ``storage``.
    min_budget : float, optional
        Multi-fidelity: every new configuration is first evaluated on this share of the
        training rows and reported to Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`
        (asynchronous successive halving, ``eta`` the reduction factor) as an intermediate
        value; one that is not pruned comes back from :meth:`ask_trial` with ``eta`` times
        the rows, up to ``max_budget`` (all of them by default). Drive it through :meth:`ask_trial`/:meth:`tell_trial`.
    max_budget : float
        The top rung's share of the rows.
    eta : int
        Successive halving's reduction factor.
    """

    name = "optuna"
    supports_budgets = True

    def __init__(
        self,
        space: ConfigurationSpace,
        *,
        seed: int = 0,
        initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
        n_startup_trials: int = 10,
        transfer: Any | None = None,
        constant_liar: bool = False,
        storage: str | None = None,
        study_name: str | None = None,
        min_budget: float | None = None,
        max_budget: float = 1.0,
        eta: int = 3,
    ) -> None:
        super().__init__(space, seed=seed, initial_configs=initial_configs)
        import optuna

        self._set_budgets(min_budget, max_budget, eta)
        # successive halving: trials waiting to be asked again with more rows, and the
        # trials out at a budget, by trial key
        self._promoted: list[tuple[Any, Configuration, float | None]] = []
        self._rungs: dict[str, Any] = {}
        self._pruned: set[str] = set()

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.transfer = transfer
        if transfer is not None:  # the transfer ensemble proposes every trial
            from autometa.transfer import TransferSampler

            sampler: Any = TransferSampler(transfer, seed=self.seed)
        else:
            with warnings.catch_warnings():  # multivariate/group are flagged experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(
                    seed=self.seed, multivariate=True, group=True, n_startup_trials=n_startup_trials,
                    constant_liar=constant_liar,
                )
        self.storage = storage
        self.study_name = study_name
        self._asked: dict[str, Any] = {}
        self._told: set[str] = set()
        self._results: dict[str, tuple[float, bool]] = {}
        pruner: Any = None
        if min_budget is not None:  # intermediate values at steps 1, eta, eta**2, ... (rows / the lowest rung's)
            pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta,
                                                            min_early_stopping_rate=0)
        if storage is None:
            self._study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
        else:
            self._study = _open_study(storage, study_name, sampler, pruner)
            for t in self._study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                     optuna.trial.TrialState.FAIL)):
                if _DUPLICATE in t.user_attrs:  # a racing twin of an enqueued start, never evaluated
                    continue
                key = config_key(t.params)
                self._told.add(key)
                ok = t.state == optuna.trial.TrialState.COMPLETE
                self._results[key] = (float(t.value) if ok and t.value is not None else math.inf, ok)
        self._dists = {hp.name: to_optuna_distribution(hp) for hp in space.values()}
        #: finished trials the study held when this optimizer opened it (a shared study)
        self.n_study_trials = len(self._told)
        for config in self.initial_configs:
            self._study.enqueue_trial(config_to_dict(config), user_attrs={_QUEUED: True}, skip_if_exists=True)

    def ask(self) -> Configuration:
        import optuna

        for attempt in range(_MAX_REPEATS):
            trial, config = self._ask_once()
            key = config_key(config)
            twin = self._queued_twin(trial, key)
            if twin is not None:  # another process enqueued the same start at the same moment
                trial.set_user_attr(_DUPLICATE, twin)
                self._study.tell(trial, None, state=optuna.trial.TrialState.FAIL)
                continue
            if key not in self._results or attempt == _MAX_REPEATS - 1:  # the last: the space is used up
                self._asked[key] = trial
                return config
            # the sampler proposed a configuration it was told before: tell it the known
            # result (so that it learns from the repeat) and ask again
            loss, ok = self._results[key]
            if key in self._pruned:
                self._study.tell(trial, None, state=optuna.trial.TrialState.PRUNED)
                continue
            self._tell_trial(trial, loss, ok)
        raise AssertionError("unreachable")

    def _queued_twin(self, trial: Any, key: str) -> int | None:
        """The number of the shared study's trial that already holds this enqueued configuration.

        Optuna's ``enqueue_trial(skip_if_exists=True)`` checks and inserts in two steps, so
        processes that open a shared study at the same moment can each enqueue the same
        warm start. Of two such twins the one completed, or else the one asked first (the
        lower number), is evaluated; the other is told failed and marked, so that no
        configuration is evaluated twice and the study's completed trials stay one per
        evaluation."""
        import optuna

        if self.storage is None or not trial.user_attrs.get(_QUEUED):
            return None
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
        for other in self._study.get_trials(deepcopy=False, states=states):
            if other.number == trial.number:
                continue
            params = other.params if other.state != optuna.trial.TrialState.WAITING else (
                other.system_attrs.get("fixed_params") or {})
            if config_key(params) == key and (other.state == optuna.trial.TrialState.COMPLETE
                                              or other.number < trial.number):
                return int(other.number)
        return None

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

    def ask_trial(self) -> tuple[Configuration, float | None]:
        if self.min_budget is None:
            return self.ask(), None
        if self._promoted:  # not pruned at its last rung: more rows now
            trial, config, budget = self._promoted.pop(0)
        else:
            config = self.ask()
            trial, budget = self._asked.pop(config_key(config)), self.min_budget
        self._rungs[trial_key(config, budget)] = trial
        return config, budget

    def _step(self, budget: float) -> int:
        return int(round(budget / float(self.min_budget or 1.0)))

    def tell_trial(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True,
                   budget: float | None = None) -> None:
        import optuna

        if self.min_budget is None:
            self.tell(config, loss, ok=ok)
            return
        key = trial_key(config, budget)
        trial = self._rungs.pop(key, None)
        if budget is None or budget >= self.max_budget - 1e-9:  # the top rung: the trial completes
            if trial is not None:
                self._asked[config_key(config)] = trial
            self.tell(config, loss, ok=ok)
            return
        if trial is None:  # a lower rung of an earlier run (resume): a pruned trial the pruner compares with
            if key in self._told:
                return
            self._told.add(key)
            params = config_to_dict(config)
            self._study.add_trial(optuna.trial.create_trial(
                params=params, distributions={k: self._dists[k] for k in params},
                state=optuna.trial.TrialState.PRUNED if ok else optuna.trial.TrialState.FAIL,
                intermediate_values={self._step(budget): float(loss)} if ok else None))
            return
        if not ok:
            self._results[config_key(config)] = (float(loss), False)
            self._study.tell(trial, None, state=optuna.trial.TrialState.FAIL)
            return
        trial.report(float(loss), self._step(budget))
        if trial.should_prune():
            self._results[config_key(config)] = (float(loss), True)  # known: not proposed again
            self._pruned.add(config_key(config))
            self._study.tell(trial, None, state=optuna.trial.TrialState.PRUNED)
            return
        more = min(budget * self.eta, self.max_budget)
        self._promoted.append((trial, self._as_config(config), None if more >= 1.0 - 1e-9 else more))

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


def _open_study(storage: str, study_name: str | None, sampler: Any, pruner: Any = None) -> Any:
    """Create or load the shared study; an unreachable storage is one InputError."""
    import optuna

    if not study_name:
        raise InputError("An Optuna storage needs a study_name: the name every sharing process opens.")
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            # (an in-memory SQLite database lives in its one connection and is shared by no one)
            shared_file = storage.startswith("sqlite") and storage not in ("sqlite://", "sqlite:///:memory:")
            rdb: Any = _sqlite_storage(storage) if shared_file else storage
            return optuna.create_study(direction="minimize", sampler=sampler, storage=rdb, study_name=study_name,
                                       load_if_exists=True, pruner=pruner)
        except ValueError as exc:  # e.g. an existing study of the other direction
            raise InputError(f"Cannot use the Optuna study {study_name!r} in {storage!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors (no server, bad URL, no driver)
            # Processes starting together race to create the tables or the study: the
            # loser finds them made on its next attempt.
            if attempt + 1 < _OPEN_ATTEMPTS and ("already exists" in str(exc) or "UNIQUE" in str(exc)):
                time.sleep(0.5 * (attempt + 1))
                continue
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"Cannot open the Optuna storage {storage!r} ({first}); check the URL and that the database is reachable."
            ) from None
    raise AssertionError("unreachable")


def _sqlite_storage(url: str) -> Any:
    """An Optuna storage on SQLite whose transactions take the write lock when they begin.

    Optuna claims a queued trial by reading it ``FOR UPDATE`` and setting it running;
    SQLite ignores ``FOR UPDATE``, and Python's driver starts the transaction only at the
    write, so two processes could both read the trial as waiting and both claim it (both
    then evaluate it, and the second tell fails). ``BEGIN IMMEDIATE`` makes the read and
    the write one step; a process that finds the lock taken waits for it (``timeout``)."""
    import optuna
    import sqlalchemy

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})

    @sqlalchemy.event.listens_for(storage.engine, "connect")
    def _no_driver_transactions(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" hook below starts every transaction

    @sqlalchemy.event.listens_for(storage.engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    storage.engine.dispose()  # the connections made while creating the tables get the hooks too
    return storage


def _parents(cond: Any) -> list[Any]:
    return list(getattr(cond, "parents", None) or [cond.parent])


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    import optuna

    if isinstance(dist, optuna.distributions.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)
