"""Contract suites that every optimizer and every warm starter passes, as pytest tests.

Subclass a suite in a test module under a name pytest collects and say how to build the
implementation; every test of the suite then runs on it (as optuna.testing does for samplers
and storages)::

    from autometa.testing import OptimizerContract, WarmStarterContract

    class TestMyOptimizer(OptimizerContract):
        optimizer_class = MyOptimizer          # built as MyOptimizer(space, seed=..., initial_configs=...)

    class TestMyStarter(WarmStarterContract):
        def make_starter(self, metadb):
            return MyStarter(metadb)

- :class:`OptimizerContract` (:class:`~autometa.optimizers.BaseOptimizer`): seeded
  reproducibility, initial configurations first and in order, no configuration asked twice,
  results of unasked configurations accepted and not proposed again, a repeated tell not
  counted twice, failed trials accepted, proposals inside the space (also a restricted or
  pruned one).
- :class:`WarmStarterContract` (:class:`~autometa.warmstart.BaseWarmStarter`): at most ``n``
  suggestions, distinct, inside the space (also a restricted or pruned one), the same list
  for the same arguments, and neither the task, the space nor the meta-features modified.

A test an implementation is known to fail is listed in the subclass's ``known_violations``
(test name -> reason): it is then a strict xfail, reported on every run until fixed.

This subpackage needs pytest (``pip install autometa[dev]``); nothing else in autometa imports it.
"""

from autometa.testing._common import KnownViolations, synthetic_loss
from autometa.testing._optimizer import OptimizerContract, OptimizerFactory
from autometa.testing._warmstart import WarmStarterContract, contract_task

__all__ = [
    "KnownViolations",
    "OptimizerContract",
    "OptimizerFactory",
    "WarmStarterContract",
    "contract_task",
    "synthetic_loss",
]
