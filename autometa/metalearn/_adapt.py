"""Adapting meta-trained parameters to new tasks, one at a time or a whole batch."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import vmap

from autometa.exceptions import InputError
from autometa.metalearn._functional import (
    InnerLoop,
    LossFn,
    Params,
    buffers_of,
    mse_loss,
    parameters_of,
    predict,
    sgd_adapt,
)
from autometa.metalearn._tasks import TaskBatch

__all__ = ["AdaptedModel", "adapt", "evaluate_adaptation"]


@dataclass(frozen=True)
class AdaptedModel:
    """A module evaluated with fine-tuned parameters; call it like the module.

    Attributes
    ----------
    model : torch.nn.Module
        The module whose structure is used (its own parameters are not read).
    params, buffers : dict of str to torch.Tensor
        The fine-tuned parameters (detached) and the buffers used with them.
    """

    model: nn.Module
    params: Params
    buffers: Params

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions for ``x``, without gradient tracking."""
        with torch.no_grad():
            return predict(self.model, self.params, self.buffers, x)


def adapt(
    model: nn.Module,
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    *,
    steps: int = 1,
    lr: float | Params = 0.01,
    params: Params | None = None,
    loss_fn: LossFn = mse_loss,
    names: Collection[str] | None = None,
) -> AdaptedModel:
    """Fine-tune (meta-trained) parameters on the support set of one new task.

    Runs the same inner loop as meta-training (plain SGD); ``model`` is not changed.

    Parameters
    ----------
    model : torch.nn.Module
    support_x, support_y : torch.Tensor
        One task's support set, ``(k, ...)``.
    steps : int
        SGD steps (0 returns the starting parameters).
    lr : float or dict of str to torch.Tensor
        SGD step size, or one per parameter (Meta-SGD's learned rates).
    params : dict of str to torch.Tensor, optional
        Starting parameters; the model's own by default.
    loss_fn : callable
    names : collection of str, optional
        Fine-tune only these parameters (ANIL's head); all by default.

    Returns
    -------
    AdaptedModel
        ``adapted(x)`` predicts with the fine-tuned parameters, ``adapted.params`` holds them.
    """
    inner = InnerLoop(steps=steps, lr=lr if isinstance(lr, float | int) else 1.0)
    if support_x.shape[0] != support_y.shape[0]:
        raise InputError(
            f"'support_x' and 'support_y' must have as many points; got shapes {tuple(support_x.shape)} and {tuple(support_y.shape)}."
        )
    start = parameters_of(model) if params is None else {name: p.detach() for name, p in params.items()}
    buffers = buffers_of(model)
    adapted = sgd_adapt(
        model, start, buffers, support_x, support_y, steps=inner.steps, lr=lr, loss_fn=loss_fn, names=names
    )
    return AdaptedModel(model, {name: p.detach() for name, p in adapted.items()}, buffers)


def evaluate_adaptation(
    model: nn.Module,
    batch: TaskBatch,
    *,
    steps: Sequence[int] = (0, 1, 10),
    lr: float | Params = 0.01,
    params: Params | None = None,
    loss_fn: LossFn = mse_loss,
    names: Collection[str] | None = None,
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict[int, torch.Tensor]:
    """Query loss (or ``metric``) of every task of ``batch`` after each number of adaptation steps.

    The tasks are adapted in parallel (``vmap``) along one SGD trajectory each.

    Parameters
    ----------
    model : torch.nn.Module
    batch : TaskBatch
    steps : sequence of int
        Step counts to report (0 is the zero-shot loss of the starting parameters).
    lr : float or dict of str to torch.Tensor
    params : dict of str to torch.Tensor, optional
        Starting parameters; the model's own by default.
    loss_fn : callable
        The loss adapted on.
    names : collection of str, optional
        Adapt only these parameters; all by default.
    metric : callable, optional
        ``metric(prediction, target)`` reported on the query set (such as
        :func:`accuracy`); ``loss_fn`` by default.

    Returns
    -------
    dict of int to torch.Tensor
        ``{steps: per-task query losses (or metric values) of shape (n_tasks,)}``.
    """
    checkpoints = sorted(set(steps))
    if not checkpoints or checkpoints[0] < 0:
        raise InputError(f"The 'steps' parameter of evaluate_adaptation must list ints >= 0; got {list(steps)!r}.")
    InnerLoop(steps=checkpoints[-1], lr=lr if isinstance(lr, float | int) else 1.0)
    score = loss_fn if metric is None else metric
    start = parameters_of(model) if params is None else {name: p.detach() for name, p in params.items()}
    buffers = buffers_of(model)

    def one_task(
        p: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        losses = []
        done = 0
        for target in checkpoints:
            p = sgd_adapt(model, p, buffers, sx, sy, steps=target - done, lr=lr, loss_fn=loss_fn, names=names)
            done = target
            losses.append(score(predict(model, p, buffers, qx), qy))
        return tuple(losses)

    data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    with torch.no_grad():  # torch.func.grad inside still differentiates (a transform ignores an outer no_grad)
        per_step = vmap(one_task, in_dims=(None, 0, 0, 0, 0))(start, *data)
    return {target: loss.detach() for target, loss in zip(checkpoints, per_step, strict=True)}
