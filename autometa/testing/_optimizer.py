"""The contract every :class:`~autometa.optimizers.BaseOptimizer` passes."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pytest
from ConfigSpace import Configuration, ConfigurationSpace

from autometa.optimizers import BaseOptimizer
from autometa.spaces import config_key, config_to_dict, family_defaults, get_space, in_space
from autometa.testing._common import KnownViolations, synthetic_loss
from autometa.transfer import bounding_box

__all__ = ["OptimizerContract", "OptimizerFactory"]

#: Three cheap families: a small conditional space with float, integer and categorical values.
SMALL_FAMILIES = ("linear", "knn", "decision_tree")

#: The configurations whose bounding box is the pruned space of the tests (two families;
#: a single-valued categorical and narrowed numeric ranges, as autometa's box pruner makes).
_BOX = (
    {"family": "knn", "knn:n_neighbors": 3, "knn:p": 1, "knn:weights": "uniform"},
    {"family": "knn", "knn:n_neighbors": 30, "knn:p": 1, "knn:weights": "distance"},
    {"family": "linear", "linear:C": 0.1, "linear:class_weight": "none", "linear:penalty": "l2"},
    {"family": "linear", "linear:C": 10.0, "linear:class_weight": "none", "linear:l1_ratio": 0.3,
     "linear:penalty": "elasticnet"},
)


class OptimizerFactory(Protocol):
    """Builds the optimizer under test, as ``BaseOptimizer.__init__`` is called."""

    def __call__(
        self,
        space: ConfigurationSpace,
        *,
        seed: int,
        initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
    ) -> BaseOptimizer: ...


def _pessimistic(losses: Sequence[float]) -> float:
    """The loss a failed trial is told with: the worst so far, as :func:`autometa.tune` does."""
    return max(losses, default=1.0)


def drive(
    opt: BaseOptimizer,
    n: int,
    *,
    fail_every: int = 0,
    tell_twice: float | None = None,
    loss: Callable[[Mapping[str, Any]], float] = synthetic_loss,
) -> list[str]:
    """Ask ``n`` configurations, telling each its loss before the next ask; the keys asked.

    Every ``fail_every``-th trial fails (told ``ok=False`` with the worst loss so far);
    with ``tell_twice``, each configuration is told a second time with that loss.
    """
    keys: list[str] = []
    losses: list[float] = []
    for i in range(n):
        config = opt.ask()
        keys.append(config_key(config))
        ok = not (fail_every and i % fail_every == fail_every - 1)
        value = loss(config) if ok else _pessimistic(losses)
        opt.tell(config, value, ok=ok)
        if ok:
            losses.append(value)
        if tell_twice is not None:
            opt.tell(config, tell_twice, ok=ok)
    return keys


def _repeats(keys: Sequence[str]) -> dict[str, list[int]]:
    return {k: [i for i, x in enumerate(keys) if x == k] for k, c in Counter(keys).items() if c > 1}


class OptimizerContract(KnownViolations):
    """The contract of :class:`~autometa.optimizers.BaseOptimizer`, as pytest tests.

    Subclass it in a test module under a name pytest collects (``Test...``) and say how to
    build the optimizer: set :attr:`optimizer_class`, or override :meth:`make_optimizer`
    (extra constructor arguments), or the :meth:`optimizer_factory` fixture (when building
    it needs other fixtures, e.g. a transfer ensemble)::

        from autometa.testing import OptimizerContract

        class TestMyOptimizer(OptimizerContract):
            optimizer_class = MyOptimizer

    The tests drive it as :func:`autometa.tune` does (ask, tell, ask, ...) on a small
    autometa space of three families (the :meth:`make_space` fixture) with
    :func:`synthetic_loss`, for :attr:`n_asks` asks; a test takes a few seconds at most
    for the built-in optimizers (SMAC's asks are the slowest).
    """

    #: The implementation under test, built as ``optimizer_class(space, seed=..., initial_configs=...)``.
    optimizer_class: type[BaseOptimizer] | None = None
    #: Asks per run.
    n_asks: int = 15
    #: Whether another seed gives another sequence of proposals (False for a deterministic design).
    seed_changes_proposals: bool = True
    #: The seeds of the runs checked for repeated proposals.
    repeat_seeds: Sequence[int] = (0, 1, 2, 3)

    def make_optimizer(
        self,
        space: ConfigurationSpace,
        *,
        seed: int,
        initial_configs: Sequence[Configuration | Mapping[str, Any]] = (),
    ) -> BaseOptimizer:
        """The optimizer under test (by default :attr:`optimizer_class`)."""
        if self.optimizer_class is None:
            raise NotImplementedError(
                f"{type(self).__name__} must set optimizer_class or override make_optimizer or optimizer_factory."
            )
        return self.optimizer_class(space, seed=seed, initial_configs=initial_configs)

    @pytest.fixture
    def optimizer_factory(self) -> OptimizerFactory:
        """How the tests build optimizers: :meth:`make_optimizer`, unless overridden."""
        return self.make_optimizer

    @pytest.fixture
    def make_space(self) -> Callable[..., ConfigurationSpace]:
        """A fresh copy of the tests' search space; ``seed`` seeds the space's own sampler."""

        def make(seed: int | None = 0) -> ConfigurationSpace:
            return get_space("binary", families=SMALL_FAMILIES, seed=seed)

        return make

    @pytest.fixture(params=["small", "families", "bounding-box"])
    def restricted_space(self, request: pytest.FixtureRequest) -> ConfigurationSpace:
        """The small space, a space restricted to other families, and a pruned space."""
        if request.param == "small":
            return get_space("binary", families=SMALL_FAMILIES, seed=0)
        if request.param == "families":
            return get_space("binary", families=["svm", "linear", "knn"], seed=0)
        return bounding_box(get_space("binary", families=SMALL_FAMILIES), _BOX, seed=0)

    # -- seeded reproducibility ------------------------------------------------------------

    def test_the_same_seed_asks_the_same_configurations(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """Two optimizers with one seed, told the same results, ask the same sequence,
        whatever the global random state and the space object's own seed."""
        runs = []
        for global_seed, space_seed in [(1, 11), (2, None)]:
            random.seed(global_seed)
            np.random.seed(global_seed)
            runs.append(drive(optimizer_factory(make_space(space_seed), seed=3), self.n_asks, fail_every=5))
        assert runs[0] == runs[1]

    def test_another_seed_asks_other_configurations(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        if not self.seed_changes_proposals:
            pytest.skip("a deterministic design: the seed does not change the proposals")
        first = drive(optimizer_factory(make_space(), seed=0), self.n_asks)
        other = drive(optimizer_factory(make_space(), seed=1), self.n_asks)
        assert first != other

    def test_optimizers_sharing_a_space_are_independent(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """Two optimizers built on one space object, asked in turn, each ask what it asks
        alone: an optimizer keeps its random state to itself (not in the space's sampler)."""
        alone = drive(optimizer_factory(make_space(), seed=0), self.n_asks)
        shared = make_space()
        a, b = optimizer_factory(shared, seed=0), optimizer_factory(shared, seed=0)
        in_turn: tuple[list[str], list[str]] = ([], [])
        for _ in range(self.n_asks):
            for opt, keys in zip((a, b), in_turn, strict=True):
                config = opt.ask()
                keys.append(config_key(config))
                opt.tell(config, synthetic_loss(config))
        assert in_turn[0] == alone, "the first optimizer's proposals changed when another used the space"
        assert in_turn[1] == alone, "the second optimizer's proposals changed when another used the space"

    # -- initial configurations ------------------------------------------------------------

    def test_initial_configs_are_asked_first_in_order(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        space = make_space()
        knn7 = {"family": "knn", "knn:n_neighbors": 7, "knn:p": 1, "knn:weights": "distance"}
        defaults = family_defaults(space)
        # a mapping first, then Configurations of the space itself, in an order that is not the space's
        initial: list[Configuration | Mapping[str, Any]] = [knn7, defaults[2], defaults[0]]
        keys = drive(optimizer_factory(space, seed=0, initial_configs=initial), len(initial) + 2)
        assert keys[: len(initial)] == [config_key(c) for c in initial]

    # -- no configuration asked twice ------------------------------------------------------

    def test_no_configuration_is_asked_twice(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """Runs as :func:`autometa.tune` makes them (family defaults first, some failures)
        never ask a configuration they asked before; several seeds, as a repeat can take
        a few asks to show up."""
        repeats = {}
        for seed in self.repeat_seeds:
            space = make_space()
            initial = [config_to_dict(c) for c in family_defaults(space)]
            keys = drive(optimizer_factory(space, seed=seed, initial_configs=initial), self.n_asks, fail_every=5)
            if _repeats(keys):
                repeats[seed] = _repeats(keys)
        assert not repeats, f"asked again (seed: {{configuration: ask numbers}}): {repeats}"

    def test_pending_asks_are_distinct(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """Parallel workers: several asks before their tells (batches of 4, results told
        in another order than asked, some failed) never hand out a configuration that is
        still running or was told before."""
        space = make_space()
        initial = [config_to_dict(c) for c in family_defaults(space)]
        opt = optimizer_factory(space, seed=0, initial_configs=initial)
        keys: list[str] = []
        losses: list[float] = []
        while len(keys) < self.n_asks:
            batch = [opt.ask() for _ in range(4)]
            keys += [config_key(c) for c in batch]
            for i, config in enumerate(reversed(batch)):
                ok = (len(keys) + i) % 5 != 4
                value = synthetic_loss(config) if ok else _pessimistic(losses)
                if ok:
                    losses.append(value)
                opt.tell(config, value, ok=ok)
        assert not _repeats(keys), f"asked again while pending or after its tell: {_repeats(keys)}"

    # -- results of unasked configurations -------------------------------------------------

    def test_results_of_unasked_configurations_are_accepted(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """Resuming: results of an earlier run go in before the first ask (as the plain
        dicts a run directory stores), one of them failed; none is proposed again."""
        space = make_space()
        earlier = [config_to_dict(c) for c in family_defaults(space)]
        earlier += [config_to_dict(c) for c in make_space(123).sample_configuration(3)]
        results = [(c, synthetic_loss(c), True) for c in earlier]
        results[-1] = (earlier[-1], max(r[1] for r in results), False)
        opt = optimizer_factory(space, seed=0)
        opt.tell_many(results)
        keys = drive(opt, self.n_asks)
        told = {config_key(c) for c in earlier}
        again = [(i, k) for i, k in enumerate(keys) if k in told]
        assert not again, f"proposed although told before (ask number, configuration): {again}"

    # -- a trial told at most once ---------------------------------------------------------

    def test_a_repeated_tell_is_not_counted_twice(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """Telling a result again (as the tune loop does for a configuration proposed
        twice) changes nothing: the proposals are those of a run told each result once."""
        once = drive(optimizer_factory(make_space(), seed=0), self.n_asks, fail_every=5)
        opt = optimizer_factory(make_space(), seed=0)
        twice = []
        losses: list[float] = []
        for i in range(self.n_asks):
            config = opt.ask()
            twice.append(config_key(config))
            ok = i % 5 != 4
            value = synthetic_loss(config) if ok else _pessimistic(losses)
            if ok:
                losses.append(value)
            opt.tell(config, value, ok=ok)
            opt.tell(config, value, ok=ok)
        assert twice == once

    def test_the_first_result_of_a_configuration_counts(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """A second result for a configuration told before, asked or not (a resumed one,
        a failure re-told with another pessimistic loss), is ignored."""
        space = make_space()
        resumed = config_to_dict(family_defaults(space)[1])
        opt = optimizer_factory(space, seed=0)
        opt.tell(resumed, 0.9)
        once = drive(opt, self.n_asks)
        opt = optimizer_factory(make_space(), seed=0)
        opt.tell(resumed, 0.9)
        opt.tell(resumed, -10.0)
        twice = drive(opt, self.n_asks, tell_twice=-10.0)
        assert twice == once

    # -- failed trials ---------------------------------------------------------------------

    def test_failed_trials_are_accepted(
        self, optimizer_factory: OptimizerFactory, make_space: Callable[..., ConfigurationSpace]
    ) -> None:
        """Every trial failing (told ``ok=False`` with a finite loss), asked or not, the
        optimizer goes on proposing points of the space."""
        space = make_space()
        opt = optimizer_factory(space, seed=0)
        opt.tell(config_to_dict(family_defaults(space)[0]), 1.0, ok=False)
        for _ in range(self.n_asks):
            config = opt.ask()
            assert in_space(dict(config), space), f"outside the space: {config_to_dict(config)}"
            opt.tell(config, 1.0, ok=False)

    # -- proposals stay inside the space ---------------------------------------------------

    def test_proposals_are_points_of_the_space(
        self, optimizer_factory: OptimizerFactory, restricted_space: ConfigurationSpace
    ) -> None:
        """Every proposal is a point of the space it was given (active values only, inside
        their ranges), also for a space restricted to some families or pruned to a box."""
        opt = optimizer_factory(restricted_space, seed=0)
        outside = []
        for i in range(self.n_asks):
            config = opt.ask()
            assert isinstance(config, Configuration), f"ask() returned a {type(config).__name__}"
            if not in_space(dict(config), restricted_space):
                outside.append((i, config_to_dict(config)))
            opt.tell(config, synthetic_loss(config), ok=i % 5 != 4)
        assert not outside, f"outside the space (ask number, configuration): {outside}"
