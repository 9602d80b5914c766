from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace

from autometa.optimizers._base import BaseOptimizer
from autometa.spaces import config_key

__all__ = ["RandomOptimizer"]

_MAX_RESAMPLES = 100


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
        self._seen: set[str] = set()
        self.space.seed(self.seed)

    def ask(self) -> Configuration:
        if self._queue:
            config = self._queue.pop(0)
        else:
            for _ in range(_MAX_RESAMPLES):  # a small discrete region repeats: draw again
                config = self.space.sample_configuration()
                if config_key(config) not in self._seen:
                    break
        self._seen.add(config_key(config))
        return config

    def tell(self, config: Configuration | Mapping[str, Any], loss: float, *, ok: bool = True) -> None:
        """Random search learns nothing from results; it only stops proposing ``config``."""
        self._seen.add(config_key(config))
