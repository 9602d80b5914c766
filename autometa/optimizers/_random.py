from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace

from autometa.optimizers._base import BaseOptimizer

__all__ = ["RandomOptimizer"]


class RandomOptimizer(BaseOptimizer):
    """Random search: the initial configurations, then uniform samples of the space
    (ConfigSpace's sampler, seeded)."""

    name = "random"

    def __init__(
        self,
        space: ConfigurationSpace,
        *,
        seed: int = 0,
        initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(space, seed=seed, initial_configs=initial_configs)
        self._queue = list(self.initial_configs)
        self.space.seed(self.seed)

    def ask(self) -> Configuration:
        if self._queue:
            return self._queue.pop(0)
        return self.space.sample_configuration()

    def tell(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True) -> None:
        """Random search learns nothing from results."""
