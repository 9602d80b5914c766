"""The base of the learners without an inner SGD loop: a network that maps a support set
straight to predictions on the query points (metric learners, black-box learners, the
Bayesian head).

The learner's ``model`` is one module whose ``forward(support_x, support_y, query_x)``
returns the query predictions of one task; meta-training minimises ``loss_fn`` of those
predictions on the query labels. Adaptation is one forward pass: there are no steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from autometa.exceptions import InputError
from autometa.metalearn._algorithms import BaseMetaLearner
from autometa.metalearn._functional import LossFn, Params, buffers_of
from autometa.metalearn._tasks import TaskBatch

__all__ = ["EpisodePredictor", "EpisodicLearner", "class_count", "one_hot", "seeded"]


def seeded(seed: int | None, build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with the global torch RNG seeded by ``seed`` and restored afterwards
    (``None``: drawn from the global RNG)."""
    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def one_hot(labels: torch.Tensor, ways: int, dtype: torch.dtype) -> torch.Tensor:
    """``(n, ways)`` indicator of int64 ``labels`` (works under ``vmap``)."""
    return (labels.unsqueeze(-1) == torch.arange(ways, device=labels.device)).to(dtype)


def class_count(owner: str, support_y: torch.Tensor) -> int:
    """The ways of a batch of classification tasks (labels ``0 .. ways-1``), checked."""
    if support_y.is_floating_point():
        raise InputError(f"{owner} needs int64 class labels in support_y; got floating-point targets.")
    return int(support_y.max()) + 1


@dataclass(frozen=True)
class EpisodePredictor:
    """The predictor of one task conditioned on its support set; call it on new inputs.

    Attributes
    ----------
    model : torch.nn.Module
        The learner's network, ``forward(support_x, support_y, query_x)``.
    params, buffers : dict of str to torch.Tensor
    support_x, support_y : torch.Tensor
        The task's support set (on the model's device).
    """

    model: nn.Module
    params: Params
    buffers: Params
    support_x: torch.Tensor
    support_y: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The predictions for ``x`` (logits or scores per class; means for regression)."""
        with torch.no_grad():
            return functional_call(self.model, (self.params, self.buffers), (self.support_x, self.support_y, x))


class EpisodicLearner(BaseMetaLearner):
    """Base of the learners whose ``model`` reads the support set (no inner SGD loop).

    Subclasses build ``model`` (one module whose ``forward(support_x, support_y,
    query_x)`` gives the query predictions of one task) and pass ``loss_fn``; they may
    override :meth:`_prepare` to read the batch's shape (the ways) before each
    meta-gradient, which must not change the meta-parameters. Meta-gradients, ``vmap``
    over the tasks and the per-task reference loop come from this base, as do
    :meth:`adapt` (one forward pass, ``steps`` ignored) and :meth:`evaluate` (scores keyed
    ``0``). Not thread-safe.

    Parameters
    ----------
    model : torch.nn.Module
        ``forward(support_x, support_y, query_x)`` of one task.
    loss_fn : callable
        ``loss_fn(query predictions, query_y)``.
    vectorize : bool
        vmap over the tasks (True) or loop over them.
    amp : bool
        As in :class:`BaseMetaLearner`.
    """

    def __init__(self, model: nn.Module, *, loss_fn: LossFn, vectorize: bool = True, amp: bool = False) -> None:
        super().__init__(model, inner_steps=1, inner_lr=1.0, loss_fn=loss_fn, vectorize=vectorize, amp=amp)

    @property
    def has_inner_loop(self) -> bool:
        """False: adaptation is one forward pass."""
        return False

    def _forward(self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor,
                 qx: torch.Tensor) -> torch.Tensor:  # fmt: skip
        return functional_call(self.model, (params, buffers), (sx, sy, qx))

    def _task_loss(self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor,
                   qy: torch.Tensor) -> torch.Tensor:  # fmt: skip
        return self.loss_fn(self._forward(params, buffers, sx, sy, qx), qy)

    def _task_functional(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        grads, loss = grad_and_value(lambda p: self._task_loss(p, buffers, sx, sy, qx, qy))(params)
        return grads, loss

    def _task_autograd(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        loss = self._task_loss(leaves, buffers, sx, sy, qx, qy)
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        return {n: torch.zeros_like(leaves[n]) if g is None else g
                for n, g in zip(leaves, grads, strict=True)}, loss.detach()  # fmt: skip

    def adapt(  # type: ignore[override]
        self, support_x: torch.Tensor, support_y: torch.Tensor, *, steps: int | None = None
    ) -> EpisodePredictor:
        """The predictor of one new task given its support set (``steps`` is ignored)."""
        support_x, support_y = support_x.to(self.device), support_y.to(self.device)
        self._prepare(TaskBatch(support_x[None], support_y[None], support_x[None, :1], support_y[None, :1]))
        params = {name: p.detach() for name, p in self.model.named_parameters()}
        return EpisodePredictor(self.model, params, buffers_of(self.model), support_x, support_y)

    def _query_predictions(self, batch: TaskBatch) -> torch.Tensor:
        """Query predictions of every task of ``batch``, vmapped, without gradients."""
        params = {name: p.detach() for name, p in self.model.named_parameters()}
        buffers = buffers_of(self.model)
        batch = batch.to(device=self.device)
        self._prepare(batch)
        with torch.no_grad(), self._autocast():
            return vmap(lambda sx, sy, qx: self._forward(params, buffers, sx, sy, qx))(
                batch.support_x, batch.support_y, batch.query_x
            )

    def evaluate(
        self,
        batch: TaskBatch,
        *,
        steps: Sequence[int] | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[int, torch.Tensor]:
        """Query ``metric`` (the loss by default) of every task, keyed ``0`` (no steps)."""
        predictions = self._query_predictions(batch)
        score = metric if metric is not None else self.loss_fn
        query_y = batch.query_y.to(self.device)
        values = torch.stack([score(predictions[i], query_y[i]) for i in range(len(batch))])
        return {0: values.float().cpu()}
