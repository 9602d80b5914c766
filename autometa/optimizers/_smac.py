from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace

from autometa.exceptions import InputError
from autometa.optimizers._base import BaseOptimizer
from autometa.spaces import trial_key

__all__ = ["SMACOptimizer", "smac_random_forest"]

_MAX_TRIALS = 10**7  # the caller's loop enforces the real budget


def smac_random_forest(space: ConfigurationSpace, *, seed: int = 0, log_y: bool = True) -> Any:
    """SMAC3's random-forest surrogate with the HPO facade's settings, except two that
    cost time and nothing else: ``max_leaf_nodes=None`` (SMAC 2.4 passes 2**20, which
    sends scikit-learn to its best-first tree builder: 0.3 s per tree on 30 points, so
    1-4 s per model fit instead of 0.06 s; with 3+ samples per leaf no tree gets near that
    many leaves, so the forest is the same) and ``n_jobs=1`` (no thread pool per fit).
    """
    from smac.model.random_forest import RandomForest

    return RandomForest(
        space, log_y=log_y, n_trees=10, bootstrapping=True, ratio_features=1.0, min_samples_split=2,
        min_samples_leaf=1, max_depth=2**20,
        # SMAC types max_leaf_nodes as int, but passes it on to scikit-learn, which accepts None
        max_leaf_nodes=None,  # type: ignore[arg-type]
        n_jobs=1, seed=seed,
    )


class SMACOptimizer(BaseOptimizer):
    """SMAC3's hyperparameter-optimization facade (random-forest surrogate, expected
    improvement, interleaved random configurations), driven through ask/tell.

    Warm-start configurations form SMAC's initial design (``additional_configs``), so
    they are evaluated first and SMAC's model starts from them. With ``transfer`` (a
    :class:`autometa.transfer.TransferEnsemble`), the ensemble of past tasks' surrogates
    replaces the random forest as SMAC's model.

    With ``min_budget`` (a share of the training rows in (0, 1)), SMAC's multi-fidelity
    facade runs instead: Hyperband brackets of successive halving with ``eta`` from
    ``min_budget`` to ``max_budget`` (all the rows by default), the warm-start configurations first, in the first
    bracket's lowest rung (auto-sklearn 2.0's recipe: the portfolio is the first rung).
    Drive it through :meth:`ask_trial`/:meth:`tell_trial`; ``tell`` alone reports a
    result on all the rows.
    """

    name = "smac"
    supports_budgets = True

    def __init__(
        self,
        space: ConfigurationSpace,
        *,
        seed: int = 0,
        initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
        n_random_initial: int | None = None,
        transfer: Any | None = None,
        min_budget: float | None = None,
        max_budget: float = 1.0,
        eta: int = 3,
    ) -> None:
        super().__init__(space, seed=seed, initial_configs=initial_configs)
        from smac import HyperparameterOptimizationFacade as HPO
        from smac import MultiFidelityFacade as MF
        from smac import Scenario

        self._set_budgets(min_budget, max_budget, eta)
        if min_budget is not None and transfer is not None:
            raise InputError("SMACOptimizer runs either surrogate transfer or multi-fidelity (min_budget), not both.")
        self._dir = tempfile.mkdtemp(prefix="autometa-smac-")
        budgets: dict[str, Any] = {} if min_budget is None else {"min_budget": float(min_budget),
                                                                  "max_budget": self.max_budget}
        scenario = Scenario(
            space, deterministic=True, n_trials=_MAX_TRIALS, seed=self.seed, output_directory=Path(self._dir),
            **budgets,
        )
        if n_random_initial is None:
            n_random_initial = 0 if self.initial_configs else 5
        design: Any = HPO.get_initial_design(
            scenario, n_configs=n_random_initial, additional_configs=list(self.initial_configs)
        )
        extra: dict[str, Any] = {"model": smac_random_forest(space, seed=self.seed)}
        if transfer is not None:  # a transfer ensemble as SMAC's surrogate, on plain costs
            from smac.acquisition.function import EI
            from smac.runhistory.encoder import RunHistoryEncoder

            from autometa.transfer import TransferModel

            extra = {"model": TransferModel(transfer, seed=self.seed), "acquisition_function": EI(),
                     "runhistory_encoder": RunHistoryEncoder(scenario)}
        self.transfer = transfer
        facade: Any = HPO
        if min_budget is not None:  # Hyperband over row budgets, SMAC's random forest as the model
            facade = MF
            extra["intensifier"] = MF.get_intensifier(scenario, eta=eta)
            design = MF.get_initial_design(scenario, n_configs=n_random_initial,
                                           additional_configs=list(self.initial_configs))
        self._smac = facade(
            scenario,
            _never_called if min_budget is None else _never_called_budget,
            initial_design=design,
            overwrite=True,
            logging_level=False,  # never touch the root logger
            **extra,
        )
        self._asked: dict[str, Any] = {}
        self._told: set[str] = set()

    def ask_trial(self) -> tuple[Configuration, float | None]:
        with warnings.catch_warnings():  # numpy warnings from SMAC's surrogate on tiny histories
            warnings.simplefilter("ignore", RuntimeWarning)
            info = self._smac.ask()
        budget = None if info.budget is None or info.budget >= 1.0 else float(info.budget)
        self._asked[trial_key(info.config, budget)] = info
        return info.config, budget

    def ask(self) -> Configuration:
        return self.ask_trial()[0]

    def tell_trial(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True,
                   budget: float | None = None) -> None:
        from smac.runhistory.dataclasses import TrialInfo, TrialValue
        from smac.runhistory.enumerations import StatusType

        key = trial_key(config, budget)
        info = self._asked.pop(key, None)
        if info is None and budget is None:  # plain tell() of a trial asked at a lower budget
            pending = [k for k in self._asked if k.startswith(f"{key}@")]
            if pending:
                key = pending[0]
                info = self._asked.pop(key)
        if info is None:
            if key in self._told:
                return
            top = self.max_budget if self.min_budget is not None else None
            info = TrialInfo(self._as_config(config), seed=0, budget=top if budget is None else float(budget))
        self._told.add(key)
        status = StatusType.SUCCESS if ok else StatusType.CRASHED
        self._smac.tell(info, TrialValue(cost=float(loss), status=status), save=False)

    def tell(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True) -> None:
        self.tell_trial(config, loss, ok=ok)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


def _never_called(config: Configuration, seed: int = 0) -> float:  # pragma: no cover
    raise RuntimeError("autometa drives SMAC through ask/tell; the target function is never called")


def _never_called_budget(config: Configuration, seed: int = 0, budget: float = 1.0) -> float:  # pragma: no cover
    raise RuntimeError("autometa drives SMAC through ask/tell; the target function is never called")
