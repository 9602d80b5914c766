"""The optimizer contract: ask for a configuration, tell its loss."""

from __future__ import annotations

import abc
import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.util import deactivate_inactive_hyperparameters

from autometa.exceptions import InputError

__all__ = ["BaseOptimizer"]


class BaseOptimizer(abc.ABC):
    """Ask-tell minimizer over a ConfigSpace search space.

    The caller owns the loop (budget, evaluation, failure handling):

    1. ``ask()`` returns the next configuration to evaluate. The first ones are the
       ``initial_configs`` (warm start), in the given order, before the backend's own
       proposals.
    2. ``tell(config, loss, ok=...)`` reports its loss (lower is better). Failed trials are
       told with ``ok=False`` and a finite pessimistic loss chosen by the caller.
       ``tell`` also accepts configurations that were never asked (results of an earlier,
       interrupted run being resumed); each configuration is told at most once.

    No configuration is proposed twice while unproposed ones remain (a proposal that was
    told before is told again internally and replaced). ``ask`` may be called several
    times before the tells come back, in any order (parallel workers): pending proposals
    are distinct too. Implementations are not thread-safe and may keep state only in memory; resuming is
    done by telling past results to a fresh optimizer.

    Parameters
    ----------
    space : ConfigurationSpace
    seed : int
    initial_configs : sequence of mappings or Configurations
        Configurations to evaluate first (e.g. from meta-learning or family defaults).
    """

    name: str = "base"

    def __init__(
        self,
        space: ConfigurationSpace,
        *,
        seed: int = 0,
        initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
    ) -> None:
        # an own copy: optimizers reseed and sample their space, which must not change the
        # caller's (or another optimizer's) proposals
        self.space = copy.deepcopy(space)
        self.seed = int(seed)
        self.initial_configs = [self._as_config(c) for c in initial_configs]

    def _as_config(self, config: Configuration | Mapping[str, Any]) -> Configuration:
        if isinstance(config, Configuration) and config.config_space is self.space:
            return config
        return deactivate_inactive_hyperparameters(dict(config), self.space)

    @abc.abstractmethod
    def ask(self) -> Configuration:
        """The next configuration to evaluate."""

    @abc.abstractmethod
    def tell(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True) -> None:
        """Report the loss of a configuration (asked or not)."""

    #: True when the optimizer proposes budgets (see :meth:`ask_trial`).
    supports_budgets: bool = False

    def _set_budgets(self, min_budget: float | None, max_budget: float, eta: int) -> None:
        """Check and keep the rungs of a multi-fidelity optimizer (shares of the rows)."""
        name = type(self).__name__
        if min_budget is not None and not (0 < min_budget < max_budget <= 1):
            raise InputError(f"The 'min_budget' and 'max_budget' of {name} must be shares of the rows with "
                             f"0 < min_budget < max_budget <= 1; got {min_budget!r} and {max_budget!r}.")
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise InputError(f"The 'eta' of {name} must be an integer of at least 2; got {eta!r}.")
        self.min_budget = min_budget
        self.max_budget = float(max_budget)
        self.eta = eta

    def ask_trial(self) -> tuple[Configuration, float | None]:
        """The next configuration and its budget (None: all the rows)."""
        return self.ask(), None

    def tell_trial(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True,
                   budget: float | None = None) -> None:
        """Report the loss of a configuration evaluated at ``budget`` (None: all the rows)."""
        self.tell(config, loss, ok=ok)

    def tell_many(self, results: Iterable[tuple[Mapping[str, Any], float, bool]]) -> None:
        """Report several past results, e.g. when resuming."""
        for config, loss, ok in results:
            self.tell(config, loss, ok=ok)
