"""The warm-start contract: which configurations a search evaluates first, and why."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ConfigSpace import ConfigurationSpace

from autometa.spaces import config_key, in_space
from autometa.task import Task

__all__ = ["BaseWarmStarter", "Neighbor", "Suggestion", "distinct_suggestions"]


@dataclass(frozen=True)
class Neighbor:
    """A stored task close to the new one."""

    task: str
    distance: float
    closest_features: list[str]
    farthest_features: list[str]


@dataclass(frozen=True)
class Suggestion:
    """A configuration to try, with why.

    Attributes
    ----------
    config : dict
        Active values of the configuration (``"family"`` and ``"<family>:<name>"`` keys).
    source : str
        Where it comes from: ``"knn"``, ``"portfolio"``, ``"learned default"``,
        ``"default"`` (the package default of its family), or a custom starter's name.
    predicted_score : float or None
        The score this configuration reached on the neighbour it comes from (natural
        units of the metric); None when nothing predicts it.
    neighbor : Neighbor or None
        The stored task it comes from.
    explanation : str
        One sentence for a user: why this configuration.
    """

    config: dict[str, Any]
    source: str
    predicted_score: float | None = None
    neighbor: Neighbor | None = None
    rank_on_neighbor: int | None = None
    explanation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def distinct_suggestions(items: Iterable[Any], key: Callable[[Any], str] | None = None) -> list[Any]:
    """``items`` without later duplicates, in order; by default suggestions (or plain
    configurations) are compared by their canonical configuration key."""
    if key is None:
        def key(item: Any) -> str:
            return config_key(item.config if isinstance(item, Suggestion) else item)
    out, seen = [], set()
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


class BaseWarmStarter(abc.ABC):
    """Proposes the configurations a search evaluates first (its initial design).

    :func:`autometa.tune` calls :meth:`suggest` once per run, in the calling thread,
    before the first trial; the time it takes counts in the run's budget. The
    suggestions become the optimizer's ``initial_configs`` in the given order (SMAC's
    initial design, Optuna's queued trials), after which the optimizer proposes on its own.

    Contract (checked for every implementation by :mod:`autometa.testing`):

    - at most ``n`` suggestions, distinct by :func:`autometa.spaces.config_key`;
    - each a point of ``space`` (a restricted or pruned space drops families and values);
    - the same arguments (and the same meta-database) give the same list: anything
      random is seeded by ``task.seed``;
    - no model is fitted on the task's rows beyond meta-feature extraction, and neither
      ``task`` nor ``space`` is modified.

    A starter that cannot serve this task (an empty meta-database, no stored task of
    its kind) raises :class:`~autometa.exceptions.InputError`; :func:`autometa.tune`
    then starts from each family's default and says so in an
    :class:`~autometa.exceptions.AutometaWarning`.

    Instances may be reused across tasks and calls; they may cache what they read from
    the meta-database, so they are not thread-safe unless they say so.
    """

    #: Short name, shown in results and accepted by ``tune(warm_start=...)`` for the built-ins.
    name: str = "base"

    @abc.abstractmethod
    def suggest(
        self,
        task: Task,
        space: ConfigurationSpace,
        n: int = 25,
        *,
        metafeatures: Mapping[str, float] | None = None,
    ) -> list[Suggestion]:
        """Up to ``n`` configurations of ``space`` for ``task``, best first, explained.

        Parameters
        ----------
        task : Task
        space : ConfigurationSpace
            The search space of this run (autometa's hyperparameter names).
        n : int
            The most suggestions wanted.
        metafeatures : mapping, optional
            The task's meta-features, when the caller computed them already (they are
            shared with transfer and pruning); computed on demand otherwise.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def restrict(suggestions: Iterable[Suggestion], space: ConfigurationSpace, n: int) -> list[Suggestion]:
    """The first ``n`` distinct suggestions that are points of ``space``."""
    return [s for s in distinct_suggestions(suggestions) if in_space(s.config, space)][: max(0, n)]
