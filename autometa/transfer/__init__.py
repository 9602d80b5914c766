"""Surrogate transfer inside Bayesian optimization: past tasks keep guiding every step.

Each stored task gets a surrogate of its response surface (a Gaussian process per model
family, fitted once on its stored evaluations and cached); a new task's search uses an
ensemble of them with its own surrogate:

- :class:`RGPE`: members weighted by how well they rank the new task's observations
  (bootstrap ranking loss; the target's own model by leave-one-out), members that rank
  worse than chance dropped (Feurer et al. 2018);
- :class:`TSTR`: members weighted by meta-feature similarity and ranking agreement
  (Wistuba et al. 2016);
- :class:`PMF`: probabilistic matrix factorization of the stored task x configuration
  matrix (Fusi et al. 2018), the new task's embedding inferred from its own trials by
  Bayesian linear regression;
- :class:`GuardedEnsemble`: PMF guarded by the task's own Gaussian process, the
  meta-model's weight falling to zero once the task's trials contradict it (the
  negative-transfer guard).

The ensemble drives expected improvement inside SMAC3 (:class:`TransferModel`, its
surrogate model) and Optuna (:class:`TransferSampler`); ``autometa tune --transfer
rgpe|tstr|pmf|guarded`` (:data:`TRANSFERS`, the names ``tune(transfer=...)`` takes). :func:`bounding_box` and :func:`fix_unimportant` prune the search space;
:class:`BaseTransfer` and :class:`BasePruner` are the parts :func:`autometa.tune` takes. ::

    from autometa.transfer import RGPE, fit_surrogate_store

    store = fit_surrogate_store(db, metric="balanced_accuracy", problem_type="binary")
    ensemble = RGPE(store, space, metafeatures=extract(task))
"""

from autometa.transfer._api import (
    TRANSFERS,
    BasePruner,
    BaseTransfer,
    BoxPruner,
    GuardedTransfer,
    PMFTransfer,
    SurrogateTransfer,
    transfer_for_task,
)
from autometa.transfer._ensemble import (
    RGPE,
    TSTR,
    TransferEnsemble,
    expected_improvement,
    make_ensemble,
    ranking_losses,
)
from autometa.transfer._guard import META, GuardedEnsemble
from autometa.transfer._integrations import TransferModel, TransferSampler, propose, stored_candidates
from autometa.transfer._pmf import PMF, PMFStore, fit_pmf_matrix, fit_pmf_store, normal_scores
from autometa.transfer._prune import bounding_box, fix_unimportant
from autometa.transfer._surrogates import (
    SpaceLayout,
    SurrogateStore,
    TaskSurrogate,
    encode_configs,
    fit_surrogate_store,
)

#: Transfer methods by the short name ``tune(transfer=...)`` accepts ("none": no transfer).
TRANSFER_METHODS = (*TRANSFERS, "none")

__all__ = [
    "META",
    "PMF",
    "RGPE",
    "TRANSFERS",
    "GuardedEnsemble",
    "GuardedTransfer",
    "PMFStore",
    "PMFTransfer",
    "BasePruner",
    "BaseTransfer",
    "BoxPruner",
    "SurrogateTransfer",
    "TRANSFER_METHODS",
    "TSTR",
    "SpaceLayout",
    "SurrogateStore",
    "TaskSurrogate",
    "TransferEnsemble",
    "TransferModel",
    "TransferSampler",
    "bounding_box",
    "encode_configs",
    "expected_improvement",
    "fit_pmf_matrix",
    "fit_pmf_store",
    "fit_surrogate_store",
    "fix_unimportant",
    "make_ensemble",
    "normal_scores",
    "propose",
    "ranking_losses",
    "stored_candidates",
    "transfer_for_task",
]
