"""Optimizers behind one ask/tell interface: SMAC3 (default), Optuna TPE, random search;
and the executors that run the trials they propose (in this process, or on Dask workers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace

from autometa.exceptions import InputError
from autometa.optimizers._base import BaseOptimizer
from autometa.optimizers._executor import BaseExecutor, DaskExecutor, Finished, SerialExecutor
from autometa.optimizers._optuna import OptunaOptimizer, to_optuna_distribution
from autometa.optimizers._random import RandomOptimizer
from autometa.optimizers._smac import SMACOptimizer

__all__ = [
    "BACKENDS",
    "BaseExecutor",
    "BaseOptimizer",
    "DaskExecutor",
    "Finished",
    "OptunaOptimizer",
    "RandomOptimizer",
    "SMACOptimizer",
    "SerialExecutor",
    "make_optimizer",
    "to_optuna_distribution",
]

BACKENDS: dict[str, type[BaseOptimizer]] = {
    "smac": SMACOptimizer,
    "optuna": OptunaOptimizer,
    "random": RandomOptimizer,
}


def make_optimizer(
    backend: str,
    space: ConfigurationSpace,
    *,
    seed: int = 0,
    initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
    transfer: Any | None = None,
) -> BaseOptimizer:
    """The optimizer named ``backend`` (``"smac"``, ``"optuna"`` or ``"random"``); with
    ``transfer`` (an :class:`autometa.transfer.TransferEnsemble`), its surrogate (SMAC)
    or sampler (Optuna) is the ensemble."""
    if backend not in BACKENDS:
        raise InputError(f"Unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}.")
    if transfer is None:
        return BACKENDS[backend](space, seed=seed, initial_configs=initial_configs)
    if backend == "random":
        raise InputError("Surrogate transfer needs a model-based backend: use --backend smac or optuna.")
    # only the model-based backends (SMAC, Optuna) take ``transfer``; BaseOptimizer does not declare it
    model_based: Callable[..., BaseOptimizer] = BACKENDS[backend]
    return model_based(space, seed=seed, initial_configs=initial_configs, transfer=transfer)
