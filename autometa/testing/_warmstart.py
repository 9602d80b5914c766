"""The contract every :class:`~autometa.warmstart.BaseWarmStarter` passes."""

from __future__ import annotations

import copy
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ConfigSpace import ConfigurationSpace

from autometa.metadb import SQLMetaDB, load_shipped, shipped_dir
from autometa.metafeatures import extract
from autometa.spaces import config_key, get_space, in_space
from autometa.task import Task
from autometa.testing._common import KnownViolations, session_cached
from autometa.transfer import bounding_box
from autometa.warmstart import BaseWarmStarter, Suggestion

__all__ = ["WarmStarterContract", "contract_task"]

#: The configurations whose bounding box is the pruned space of the tests: two families, narrowed
#: numeric ranges, ``class_weight="none"`` only (the balanced defaults of an imbalanced task fall outside).
_BOX = (
    {"family": "knn", "knn:n_neighbors": 3, "knn:p": 1, "knn:weights": "uniform"},
    {"family": "knn", "knn:n_neighbors": 30, "knn:p": 2, "knn:weights": "distance"},
    {"family": "linear", "linear:C": 0.1, "linear:class_weight": "none", "linear:penalty": "l2"},
    {"family": "linear", "linear:C": 10.0, "linear:class_weight": "none", "linear:penalty": "l2"},
)


def contract_task(problem_type: str) -> Task:
    """A small real table of each kind, from scikit-learn's bundled data (offline):
    breast cancer (binary, imbalanced), iris (multiclass), diabetes (regression)."""
    from sklearn import datasets

    load = {"binary": datasets.load_breast_cancer, "multiclass": datasets.load_iris,
            "regression": datasets.load_diabetes}[problem_type]
    frame = load(as_frame=True).frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(frame, label="target", name=f"sklearn-{load.__name__.removeprefix('load_')}")


def _restricted(problem_type: str, kind: str) -> ConfigurationSpace:
    space = get_space(problem_type)
    if kind == "full":
        return space
    if kind == "families":
        return get_space(problem_type, families=["svm", "linear", "knn"])
    box = [{k: v for k, v in c.items() if problem_type != "regression" or not k.endswith("class_weight")}
           for c in _BOX if problem_type != "regression" or c["family"] == "knn"]
    return bounding_box(space, box)


def _described(suggestions: list[Suggestion]) -> list[tuple[Any, ...]]:
    """What "the same list" compares: configuration, source, prediction, neighbour, text."""
    return [
        (config_key(s.config), s.source, repr(s.predicted_score), s.neighbor and s.neighbor.task, s.explanation)
        for s in suggestions
    ]


def _task_state(task: Task) -> tuple[Any, ...]:
    return (task.fingerprint(), task.describe(), task.X.copy(), task.y.copy(), list(task.X.dtypes))


def _same_task_state(before: tuple[Any, ...], after: tuple[Any, ...]) -> bool:
    return (
        before[0] == after[0] and before[1] == after[1] and before[4] == after[4]
        and before[2].equals(after[2]) and before[3].equals(after[3])
    )


@dataclass(frozen=True)
class FirstCall:
    """A starter's first ``suggest`` in the tests: its arguments, result and what it modified."""

    starter: BaseWarmStarter
    task: Task
    space: ConfigurationSpace
    metafeatures: dict[str, float]
    suggestions: list[Suggestion]
    modified: list[str]


class WarmStarterContract(KnownViolations):
    """The contract of :class:`~autometa.warmstart.BaseWarmStarter`, as pytest tests.

    Subclass it in a test module under a name pytest collects (``Test...``) and set
    :attr:`starter_class` (built as ``starter_class(metadb)``, or ``starter_class()`` when
    :attr:`uses_metadb` is False), or override :meth:`make_starter`::

        from autometa.testing import WarmStarterContract

        class TestMyStarter(WarmStarterContract):
            def make_starter(self, metadb):
                return MyStarter(metadb, neighbors=5)

    ``metadb`` is the shipped meta-dataset loaded into a temporary SQLite store (from the
    :meth:`metadata_dir` fixture: :func:`autometa.metadb.shipped_dir` unless overridden;
    the tests are skipped when there is none). Loading it takes seconds, so it is loaded
    once per test session and shared by every subclass, as are the tasks
    (:func:`contract_task`, override :meth:`make_task` for others) and their meta-features,
    which the tests pass as ``metafeatures=``. The starter must only read the store.
    Tests marked ``slow`` cover the other problem types and meta-features computed on demand.
    """

    #: The implementation under test.
    starter_class: type[BaseWarmStarter] | None = None
    #: Whether :meth:`make_starter` needs the meta-database (False: it is given None, nothing is loaded).
    uses_metadb: bool = True
    #: The ``n`` of most tests.
    n: int = 5

    def make_starter(self, metadb: SQLMetaDB | None) -> BaseWarmStarter:
        """A new instance of the starter under test, reading ``metadb`` (by default :attr:`starter_class`)."""
        if self.starter_class is None:
            raise NotImplementedError(f"{type(self).__name__} must set starter_class or override make_starter(metadb).")
        factory: Callable[..., BaseWarmStarter] = self.starter_class
        return factory(metadb) if self.uses_metadb else factory()

    def make_task(self, problem_type: str) -> Task:
        """The task of the tests of this problem type (:func:`contract_task`)."""
        return contract_task(problem_type)

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def metadata_dir(self) -> Path:
        """The shipped meta-dataset directory (with its MANIFEST.json)."""
        d = shipped_dir()
        if d is None:
            pytest.skip("no shipped meta-dataset ($AUTOMETA_METADATA_DIR is 'none' or it is not installed)")
        return d

    @pytest.fixture
    def metadb(self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SQLMetaDB | None:
        """The meta-database the starter reads (None unless :attr:`uses_metadb`)."""
        if not self.uses_metadb:
            return None
        directory = Path(request.getfixturevalue("metadata_dir")).resolve()

        def build() -> SQLMetaDB:
            store = SQLMetaDB(f"sqlite:///{tmp_path_factory.mktemp('contract-metadb') / 'metadb.sqlite'}",
                              shipped=False)
            request.config.add_cleanup(store.close)
            load_shipped(store, directory)
            return store

        return session_cached(request, ("metadb", str(directory)), build)

    @pytest.fixture
    def starter_factory(self, metadb: SQLMetaDB | None) -> Callable[[], BaseWarmStarter]:
        """A new starter per call, reading the tests' meta-database."""
        return lambda: self.make_starter(metadb)

    @pytest.fixture
    def task_and_metafeatures(self, request: pytest.FixtureRequest) -> Callable[[str], tuple[Task, dict[str, float]]]:
        """The task of a problem type and its meta-features, computed once per session."""

        def get(problem_type: str) -> tuple[Task, dict[str, float]]:
            key = ("task", type(self).make_task, problem_type)
            task = session_cached(request, key, lambda: self.make_task(problem_type))
            mf = session_cached(request, ("metafeatures", task.fingerprint()), lambda: extract(task))
            return task, dict(mf)

        return get

    @pytest.fixture
    def first_call(
        self,
        request: pytest.FixtureRequest,
        starter_factory: Callable[[], BaseWarmStarter],
        task_and_metafeatures: Callable[[str], tuple[Task, dict[str, float]]],
    ) -> Callable[[str], FirstCall]:
        """The first ``suggest`` of a new starter on the binary task and a space of a kind
        (``"full"``, ``"families"``, ``"bounding-box"``), made once per class and shared by
        the tests that check its result, with what it modified."""

        def get(kind: str) -> FirstCall:
            def build() -> FirstCall:
                task, mf = task_and_metafeatures("binary")
                space = _restricted("binary", kind)
                before = (_task_state(task), copy.deepcopy(space), str(space), dict(mf))
                starter = starter_factory()
                suggestions = starter.suggest(task, space, self.n, metafeatures=mf)
                modified = [what for what, same in [
                    ("task", _same_task_state(before[0], _task_state(task))),
                    ("space", space == before[1] and str(space) == before[2]),
                    ("metafeatures", mf == before[3]),
                ] if not same]
                return FirstCall(starter, task, space, mf, suggestions, modified)

            return session_cached(request, ("first call", type(self), kind), build)

        return get

    # -- at most n, distinct, points of the space ------------------------------------------

    @pytest.mark.parametrize("kind", ["full", "families", "bounding-box"])
    def test_suggestions_are_distinct_points_of_the_space(self, first_call: Callable[[str], FirstCall], kind: str) -> None:
        """At most ``n`` suggestions, distinct by :func:`~autometa.spaces.config_key`, each a
        point of the space: the full space, one restricted to other families, a pruned box."""
        call = first_call(kind)
        self._check_suggestions(call.suggestions, call.space, self.n)

    @pytest.mark.parametrize("n", [1, pytest.param(0, marks=pytest.mark.slow)])
    def test_n_caps_the_suggestions(
        self, starter_factory: Callable[[], BaseWarmStarter], task_and_metafeatures: Any, n: int
    ) -> None:
        task, mf = task_and_metafeatures("binary")
        space = _restricted("binary", "full")
        self._check_suggestions(starter_factory().suggest(task, space, n, metafeatures=mf), space, n)

    @staticmethod
    def _check_suggestions(suggestions: Any, space: ConfigurationSpace, n: int) -> None:
        assert isinstance(suggestions, list), f"suggest() returned a {type(suggestions).__name__}, not a list"
        assert all(isinstance(s, Suggestion) for s in suggestions), "every item must be a Suggestion"
        assert len(suggestions) <= n, f"{len(suggestions)} suggestions for n={n}"
        keys = [config_key(s.config) for s in suggestions]
        assert len(set(keys)) == len(keys), f"repeated: {sorted(k for k in set(keys) if keys.count(k) > 1)}"
        outside = [s.config for s in suggestions if not in_space(s.config, space)]
        assert not outside, f"outside the space: {outside}"
        assert all(isinstance(s.source, str) and s.source for s in suggestions), "every suggestion names its source"

    # -- the same arguments, the same list -------------------------------------------------

    @pytest.mark.parametrize("kind", ["families", pytest.param("full", marks=pytest.mark.slow)])
    def test_the_same_arguments_give_the_same_list(
        self, first_call: Callable[[str], FirstCall], starter_factory: Callable[[], BaseWarmStarter], kind: str
    ) -> None:
        """The same instance called again and a new instance give the list of the first
        call, whatever the global random state; on a restricted space (and the full one)."""
        call = first_call(kind)
        first = _described(call.suggestions)
        for global_seed, who, what in [(1, call.starter, "the same instance"), (2, starter_factory(), "a new instance")]:
            random.seed(global_seed)
            np.random.seed(global_seed)
            again = _described(who.suggest(call.task, call.space, self.n, metafeatures=call.metafeatures))
            assert again == first, f"{what} gave another list"

    # -- nothing modified ------------------------------------------------------------------

    def test_neither_task_nor_space_nor_metafeatures_are_modified(self, first_call: Callable[[str], FirstCall]) -> None:
        modified = first_call("families").modified
        assert not modified, f"suggest() modified its arguments: {', '.join(modified)}"

    # -- slow: other problem types, meta-features on demand --------------------------------

    @pytest.mark.slow
    @pytest.mark.parametrize("problem_type", ["multiclass", "regression"])
    def test_other_problem_types(
        self, starter_factory: Callable[[], BaseWarmStarter], task_and_metafeatures: Any, problem_type: str
    ) -> None:
        """The contract on a multiclass and a regression task (iris, diabetes)."""
        task, mf = task_and_metafeatures(problem_type)
        for kind in ("full", "families", "bounding-box"):
            space = _restricted(problem_type, kind)
            first = starter_factory().suggest(task, space, self.n, metafeatures=mf)
            self._check_suggestions(first, space, self.n)
            assert _described(starter_factory().suggest(task, space, self.n, metafeatures=mf)) == _described(first)

    @pytest.mark.slow
    def test_metafeatures_computed_on_demand_give_the_same_list(
        self, first_call: Callable[[str], FirstCall], starter_factory: Callable[[], BaseWarmStarter]
    ) -> None:
        """Without ``metafeatures=``, the starter computes what it needs: the same list."""
        call = first_call("full")
        on_demand = starter_factory().suggest(call.task, call.space, self.n)
        assert _described(on_demand) == _described(call.suggestions)

