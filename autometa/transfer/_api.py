"""The facade's transfer and pruning parts: what builds a task's transfer ensemble, and
what narrows a task's search space, from the meta-database."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ConfigSpace import ConfigurationSpace

from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB, open_metadb
from autometa.spaces import FAMILY_KEY, default_initial_configs, get_space
from autometa.task import Task
from autometa.transfer._ensemble import TransferEnsemble, make_ensemble
from autometa.transfer._guard import GuardedEnsemble
from autometa.transfer._pmf import PMF, fit_pmf_store
from autometa.transfer._prune import bounding_box
from autometa.transfer._surrogates import fit_surrogate_store
from autometa.warmstart import MetaFeatureIndex

__all__ = [
    "TRANSFERS",
    "BasePruner",
    "BaseTransfer",
    "BoxPruner",
    "GuardedTransfer",
    "PMFTransfer",
    "SurrogateTransfer",
    "transfer_for_task",
]


def _metafeatures(task: Task, given: Mapping[str, float] | None) -> dict[str, float]:
    from autometa.metafeatures import extract

    return dict(given) if given is not None else extract(task)


class BaseTransfer(abc.ABC):
    """Builds, for one task and search space, the surrogate that carries past tasks'
    response surfaces into every step of the search.

    :func:`autometa.tune` calls :meth:`build` once per run, before the first trial (its
    time counts in the budget), and hands the result to a model-based optimizer: it
    becomes SMAC's surrogate model (:class:`TransferModel`) or Optuna's sampler
    (:class:`TransferSampler`). The returned ensemble is then updated by the optimizer
    with the task's own observations; :meth:`build` itself must not modify ``task`` or
    ``space``. A transfer that cannot serve this task raises
    :class:`~autometa.exceptions.InputError`.
    """

    name: str = "base"

    @abc.abstractmethod
    def build(
        self, task: Task, space: ConfigurationSpace, *, metafeatures: Mapping[str, float] | None = None
    ) -> TransferEnsemble:
        """The transfer ensemble for ``task`` over ``space``."""


class SurrogateTransfer(BaseTransfer):
    """An ensemble of the stored tasks' per-family Gaussian-process surrogates: ``"rgpe"``
    (ranking-weighted, Feurer et al. 2018) or ``"tstr"`` (similarity-weighted, Wistuba
    et al. 2016). The stored surrogates are fitted on first use and cached on disk.

    Parameters
    ----------
    method : {"rgpe", "tstr"}
    metadb : SQLMetaDB, str or None
        The store, its URL, or None for the default store.
    exclude : sequence of str
        Stored tasks whose surrogates are left out (e.g. the task under study).
    **ensemble_kwargs
        Passed to the ensemble (e.g. ``max_base_models``).
    """

    def __init__(
        self, method: str = "rgpe", *, metadb: SQLMetaDB | str | None = None, exclude: Sequence[str] = (),
        **ensemble_kwargs: Any,
    ) -> None:
        if method not in ("rgpe", "tstr"):
            raise InputError(f"The 'method' parameter of SurrogateTransfer must be 'rgpe' or 'tstr'; got {method!r}.")
        self.method = method
        self.name = method
        self.metadb = metadb
        self.exclude = tuple(exclude)
        self.ensemble_kwargs = ensemble_kwargs

    def build(
        self, task: Task, space: ConfigurationSpace, *, metafeatures: Mapping[str, float] | None = None
    ) -> TransferEnsemble:
        db = open_metadb(self.metadb)
        store = fit_surrogate_store(db, metric=str(task.metric), problem_type=str(task.problem_type))
        if self.exclude:
            store = store.subset(self.exclude)
        return make_ensemble(self.method, store, space, seed=int(task.seed),
                             metafeatures=_metafeatures(task, metafeatures), **self.ensemble_kwargs)

    def __repr__(self) -> str:
        return f"SurrogateTransfer({self.method!r}, metadb={self.metadb!r})"


class PMFTransfer(BaseTransfer):
    """Probabilistic matrix factorization of the stored task x configuration matrix
    (:class:`~autometa.transfer.PMF`): the stored tasks of the same problem kind and
    metric are factorized (about a second on the shipped meta-dataset, once per process
    and meta-database), and the new task's embedding is inferred from its own trials.

    Parameters
    ----------
    metadb : SQLMetaDB, str or None
        The store, its URL, or None for the default store.
    exclude : sequence of str
        Stored tasks left out of the factorization (e.g. the task under study).
    rank : int
        Latent factors per task and configuration.
    **pmf_kwargs
        Passed to :class:`~autometa.transfer.PMF` (e.g. ``scale_sd``).
    """

    name = "pmf"

    def __init__(self, metadb: SQLMetaDB | str | None = None, *, exclude: Sequence[str] = (), rank: int = 5,
                 **pmf_kwargs: Any) -> None:
        if rank < 1:
            raise InputError(f"The 'rank' parameter of {type(self).__name__} must be at least 1; got {rank!r}.")
        self.metadb = metadb
        self.exclude = tuple(exclude)
        self.rank = rank
        self.pmf_kwargs = pmf_kwargs

    def _pmf(self, task: Task, space: ConfigurationSpace, metafeatures: Mapping[str, float] | None) -> PMF:
        store = fit_pmf_store(open_metadb(self.metadb), metric=str(task.metric), problem_type=str(task.problem_type),
                              exclude=self.exclude, rank=self.rank)
        return PMF(store, space, seed=int(task.seed), metafeatures=metafeatures, **self.pmf_kwargs)

    def build(
        self, task: Task, space: ConfigurationSpace, *, metafeatures: Mapping[str, float] | None = None
    ) -> TransferEnsemble:
        return self._pmf(task, space, metafeatures)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(metadb={self.metadb!r}, rank={self.rank})"


class GuardedTransfer(PMFTransfer):
    """The PMF meta-model guarded by the task's own Gaussian process
    (:class:`~autometa.transfer.GuardedEnsemble`): their weights follow how well each
    ranks the task's observed trials (leave-one-out), and the meta-model's falls to zero
    once it ranks them no better than chance. Same parameters as :class:`PMFTransfer`,
    plus ``min_observations`` (trials before the guard judges)."""

    name = "guarded"

    def __init__(self, metadb: SQLMetaDB | str | None = None, *, exclude: Sequence[str] = (), rank: int = 5,
                 min_observations: int = 4, **pmf_kwargs: Any) -> None:
        super().__init__(metadb, exclude=exclude, rank=rank, **pmf_kwargs)
        self.min_observations = min_observations

    def build(
        self, task: Task, space: ConfigurationSpace, *, metafeatures: Mapping[str, float] | None = None
    ) -> TransferEnsemble:
        return GuardedEnsemble(self._pmf(task, space, metafeatures), seed=int(task.seed),
                               min_observations=self.min_observations)


def _surrogate(method: str) -> Callable[..., BaseTransfer]:
    def make(metadb: SQLMetaDB | str | None = None, **kwargs: Any) -> BaseTransfer:
        return SurrogateTransfer(method, metadb=metadb, **kwargs)

    make.__name__ = make.__qualname__ = f"SurrogateTransfer_{method}"
    return make


#: The transfers :func:`autometa.tune` (``transfer=NAME``) and the CLI (``--transfer NAME``)
#: know, by name: each factory takes ``metadb=`` (and the class's keyword arguments, e.g.
#: ``exclude=``) and returns a :class:`BaseTransfer`.
TRANSFERS: dict[str, Callable[..., BaseTransfer]] = {
    "rgpe": _surrogate("rgpe"),
    "tstr": _surrogate("tstr"),
    "pmf": PMFTransfer,
    "guarded": GuardedTransfer,
}


def transfer_for_task(
    task: Task,
    method: str,
    *,
    metadb: SQLMetaDB | str | None = None,
    space: ConfigurationSpace | None = None,
    metafeatures: Mapping[str, float] | None = None,
    **kwargs: Any,
) -> TransferEnsemble:
    """The transfer ensemble named ``method`` (a key of :data:`TRANSFERS`) for ``task``
    (from the stored tasks of the same metric and problem kind), over ``space`` (the
    task's full space by default)."""
    if method not in TRANSFERS:
        raise InputError(f"The 'method' parameter of transfer_for_task must be one of {', '.join(TRANSFERS)}; "
                         f"got {method!r}.")
    space = space if space is not None else get_space(str(task.problem_type), seed=task.seed)
    return TRANSFERS[method](metadb=metadb, **kwargs).build(task, space, metafeatures=metafeatures)


class BasePruner(abc.ABC):
    """Narrows a task's search space from meta-knowledge before the search starts.

    :func:`autometa.tune` calls :meth:`prune` once per run, before the warm start (whose
    suggestions are then restricted to the pruned space) and before the optimizer is
    built; its time counts in the budget. The returned space keeps autometa's
    hyperparameter names and its ``family`` choice, and must contain at least one
    configuration; ``space`` itself is not modified.
    """

    name: str = "base"

    @abc.abstractmethod
    def prune(
        self, task: Task, space: ConfigurationSpace, *, metafeatures: Mapping[str, float] | None = None
    ) -> tuple[ConfigurationSpace, str]:
        """The pruned space and a one-line description of what was pruned."""


class BoxPruner(BasePruner):
    """The bounding box of the best stored configuration of each of the ``k`` tasks
    nearest in meta-feature space, plus the package defaults of their families
    (Perrone et al. 2019).

    Parameters
    ----------
    metadb : SQLMetaDB, str or None
    k : int
        Neighbours whose best configurations span the box.
    exclude : sequence of str
        Stored tasks never to use.
    """

    name = "box"

    def __init__(self, metadb: SQLMetaDB | str | None = None, *, k: int = 10, exclude: tuple[str, ...] = ()) -> None:
        if k < 1:
            raise InputError(f"The 'k' parameter of BoxPruner must be at least 1; got {k!r}.")
        self.metadb = metadb
        self.k = k
        self.exclude = tuple(exclude)

    def prune(
        self, task: Task, space: ConfigurationSpace, *, metafeatures: Mapping[str, float] | None = None
    ) -> tuple[ConfigurationSpace, str]:
        families = list(space[FAMILY_KEY].choices)  # type: ignore[attr-defined]
        knn = MetaFeatureIndex(open_metadb(self.metadb), metric=str(task.metric), problem_type=str(task.problem_type),
                               exclude=self.exclude)
        mf = _metafeatures(task, metafeatures)
        sugg = [s for s in knn.best_of_neighbors(mf, n=self.k, per_neighbor=1) if s.config.get(FAMILY_KEY) in families]
        if not sugg:
            return space, "no pruning (no stored configuration of these families)"
        fams = {s.config[FAMILY_KEY] for s in sugg}
        # the box is drawn around stored optima and each family's default, not the second defaults
        defaults = [c for c in default_initial_configs(space, task, second_defaults=False) if c[FAMILY_KEY] in fams]
        box = bounding_box(space, [s.config for s in sugg] + defaults, seed=task.seed)
        fam_hp = box[FAMILY_KEY]
        kept = list(fam_hp.choices) if hasattr(fam_hp, "choices") else [fam_hp.value]  # type: ignore[attr-defined]
        return box, f"bounding box of the best configurations of {len(sugg)} nearest tasks: families {', '.join(kept)}"
