"""MAML (second order), first-order MAML and Reptile on one task-batch abstraction.

Each algorithm turns the current parameters and a :class:`TaskBatch` into a meta-gradient
(the mean over tasks of a per-task update direction). Two equivalent implementations:

* vectorized (default): one per-task function written with :mod:`torch.func`
  (``functional_call``, ``grad``) and mapped over the tasks with ``vmap``;
* a plain Python loop over tasks using ``torch.autograd.grad``, kept as an independent
  reference for tests and as the baseline of the throughput benchmark.

The outer optimizer (Adam by default) consumes the meta-gradient as if it were an
ordinary gradient. For Reptile the meta-gradient is ``params - mean(adapted params)``
(Nichol et al. 2018): with plain SGD of step size ``epsilon`` as the outer optimizer it
is exactly the Reptile update, and feeding it to Adam is the variant their paper uses.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.func import grad_and_value, vmap

from autometa.exceptions import InputError
from autometa.metalearn._adapt import AdaptedModel, adapt
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

__all__ = ["FOMAML", "MAML", "BaseMetaLearner", "MetaStep", "MetaTrainHistory", "Reptile", "TaskDistribution"]


class TaskDistribution(Protocol):
    """Anything that draws meta-batches, such as :class:`SinusoidTasks`."""

    def sample(self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = ...) -> TaskBatch: ...


@dataclass(frozen=True)
class MetaStep:
    """The result of one meta-gradient computation.

    Attributes
    ----------
    grads : dict of str to torch.Tensor
        The meta-gradient, keyed like ``model.named_parameters()``.
    query_loss : float
        Mean over tasks of the query loss of the adapted parameters.
    """

    grads: Params
    query_loss: float


@dataclass(frozen=True)
class MetaTrainHistory:
    """What :meth:`BaseMetaLearner.meta_train` did.

    Attributes
    ----------
    query_losses : tuple of float
        Mean query loss after adaptation, one per meta-iteration (measured on the
        iteration's meta-batch before the outer update).
    meta_batch_size : int
    seconds : float
        Wall-clock time of the loop, task sampling included.
    """

    query_losses: tuple[float, ...]
    meta_batch_size: int
    seconds: float

    @property
    def iterations(self) -> int:
        return len(self.query_losses)

    @property
    def tasks_per_second(self) -> float:
        return self.iterations * self.meta_batch_size / self.seconds if self.seconds > 0 else float("nan")


class BaseMetaLearner(ABC):
    """Base of the gradient-based meta-learners: holds a model and meta-trains it in place.

    Subclasses define the per-task update twice, functionally (:meth:`_task_functional`,
    vmapped over the tasks) and with autograd (:meth:`_task_autograd`, one task at a
    time); both must return the same numbers. :meth:`meta_gradient` reads the model's
    parameters and never changes them; :meth:`meta_step` and :meth:`meta_train` write
    ``.grad`` and step the outer optimizer, which mutates the model's parameters. Not
    thread-safe: one learner, one training loop.

    Parameters
    ----------
    model : torch.nn.Module
        Any module whose forward takes one tensor; buffers are used read-only (modules
        that update buffers in forward, such as BatchNorm in training mode, are not
        supported by the vectorized path).
    inner_steps : int
        SGD steps per task in the inner loop.
    inner_lr : float
        Inner SGD step size.
    loss_fn : callable
        ``loss_fn(prediction, target)``, a scalar averaged over one task's points.
    vectorize : bool
        Map the tasks with ``torch.func.vmap`` (True) or loop over them in Python.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_steps: int = 1,
        inner_lr: float = 0.01,
        loss_fn: LossFn = mse_loss,
        vectorize: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InputError(
                f"The 'model' parameter of {type(self).__name__} must be a torch.nn.Module; got {type(model).__name__}."
            )
        self.model = model
        self.inner = InnerLoop(steps=inner_steps, lr=inner_lr)
        if self.inner.steps < 1:
            raise InputError(f"The 'inner_steps' parameter of {type(self).__name__} must be >= 1; got {inner_steps!r}.")
        self.loss_fn = loss_fn
        self.vectorize = vectorize

    # --- the per-task update, twice -------------------------------------------------

    @abstractmethod
    def _task_functional(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        """(update direction, query loss) of one task, composable with ``vmap``."""

    @abstractmethod
    def _task_autograd(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        """(update direction, query loss) of one task with ``torch.autograd``."""

    # --- shared machinery ------------------------------------------------------------

    def _adapt(self, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
        return sgd_adapt(
            self.model, params, buffers, x, y, steps=self.inner.steps, lr=self.inner.lr, loss_fn=self.loss_fn
        )

    def _adapt_autograd(
        self, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor, *, create_graph: bool
    ) -> Params:
        for _ in range(self.inner.steps):
            loss = self.loss_fn(predict(self.model, params, buffers, x), y)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
            params = {name: value - self.inner.lr * g for (name, value), g in zip(params.items(), grads, strict=True)}
        return params

    def meta_gradient(self, batch: TaskBatch) -> MetaStep:
        """The meta-gradient of ``batch`` at the model's current parameters (not applied)."""
        params = parameters_of(self.model)
        buffers = buffers_of(self.model)
        data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        if self.vectorize:

            def one_task(
                p: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
            ) -> tuple[Params, torch.Tensor]:
                return self._task_functional(p, buffers, sx, sy, qx, qy)

            per_task, losses = vmap(one_task, in_dims=(None, 0, 0, 0, 0))(params, *data)
            grads = {name: g.mean(dim=0) for name, g in per_task.items()}
            return MetaStep(grads, float(losses.mean()))
        totals = {name: torch.zeros_like(p) for name, p in params.items()}
        loss_sum = 0.0
        for i in range(len(batch)):
            task_grads, loss = self._task_autograd(params, buffers, *(t[i] for t in data))
            for name, g in task_grads.items():
                totals[name] += g.detach()
            loss_sum += float(loss)
        n = len(batch)
        return MetaStep({name: g / n for name, g in totals.items()}, loss_sum / n)

    def meta_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> float:
        """Compute the meta-gradient of ``batch``, store it in ``.grad`` and step ``optimizer``.

        Returns the mean query loss after adaptation (before the outer update).
        """
        step = self.meta_gradient(batch)
        for name, p in self.model.named_parameters():
            p.grad = step.grads[name].detach().clone()
        optimizer.step()
        return step.query_loss

    def meta_train(
        self,
        tasks: TaskDistribution,
        *,
        iterations: int,
        meta_batch_size: int = 25,
        outer_lr: float = 1e-3,
        seed: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> MetaTrainHistory:
        """Meta-train the model in place on batches drawn from ``tasks``.

        Parameters
        ----------
        tasks : TaskDistribution
        iterations : int
            Meta-iterations (outer updates).
        meta_batch_size : int
            Tasks per meta-batch (25 in Finn et al. 2017 for sinusoids).
        outer_lr : float
            Adam step size, used when ``optimizer`` is None.
        seed : int
            Seeds the generator the meta-batches are drawn from.
        optimizer : torch.optim.Optimizer, optional
            An outer optimizer over ``model.parameters()``; keep it across calls to
            continue training with its state.
        """
        if iterations < 0:
            raise InputError(f"The 'iterations' parameter of meta_train must be >= 0; got {iterations!r}.")
        if meta_batch_size < 1:
            raise InputError(f"The 'meta_batch_size' parameter of meta_train must be >= 1; got {meta_batch_size!r}.")
        if optimizer is None:
            if not outer_lr > 0:
                raise InputError(f"The 'outer_lr' parameter of meta_train must be > 0; got {outer_lr!r}.")
            optimizer = torch.optim.Adam(self.model.parameters(), lr=outer_lr)
        dtype = next(self.model.parameters()).dtype
        generator = torch.Generator().manual_seed(seed)
        losses: list[float] = []
        start = time.perf_counter()
        for _ in range(iterations):
            batch = tasks.sample(meta_batch_size, generator, dtype=dtype)
            losses.append(self.meta_step(batch, optimizer))
        return MetaTrainHistory(tuple(losses), meta_batch_size, time.perf_counter() - start)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, *, steps: int | None = None) -> AdaptedModel:
        """Fine-tune the current parameters on one new task (``steps`` defaults to the
        inner loop's); see :func:`autometa.metalearn.adapt`."""
        return adapt(
            self.model,
            support_x,
            support_y,
            steps=self.inner.steps if steps is None else steps,
            lr=self.inner.lr,
            loss_fn=self.loss_fn,
        )


class MAML(BaseMetaLearner):
    """Model-agnostic meta-learning with second-order meta-gradients (Finn et al. 2017).

    The meta-gradient differentiates the query loss of the adapted parameters through the
    inner SGD steps, Hessian-vector terms included. Parameters as in :class:`BaseMetaLearner`.
    """

    def _task_functional(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        def query_loss(p: Params) -> torch.Tensor:
            return self.loss_fn(predict(self.model, self._adapt(p, buffers, sx, sy), buffers, qx), qy)

        grads, loss = grad_and_value(query_loss)(params)
        return grads, loss

    def _task_autograd(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        start = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        adapted = self._adapt_autograd(start, buffers, sx, sy, create_graph=True)
        loss = self.loss_fn(predict(self.model, adapted, buffers, qx), qy)
        grads = torch.autograd.grad(loss, list(start.values()))
        return dict(zip(start, grads, strict=True)), loss.detach()


class FOMAML(BaseMetaLearner):
    """First-order MAML: the gradient of the query loss at the adapted parameters, the
    inner steps treated as constants (Finn et al. 2017, section 5.2). Parameters as in
    :class:`BaseMetaLearner`."""

    def _task_functional(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        adapted = self._adapt(params, buffers, sx, sy)

        def query_loss(p: Params) -> torch.Tensor:
            return self.loss_fn(predict(self.model, p, buffers, qx), qy)

        grads, loss = grad_and_value(query_loss)(adapted)
        return grads, loss

    def _task_autograd(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        start = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        adapted = self._adapt_autograd(start, buffers, sx, sy, create_graph=False)
        leaves = {name: p.detach().requires_grad_(True) for name, p in adapted.items()}
        loss = self.loss_fn(predict(self.model, leaves, buffers, qx), qy)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        return dict(zip(leaves, grads, strict=True)), loss.detach()


class Reptile(BaseMetaLearner):
    """Reptile (Nichol et al. 2018): the update direction of a task is
    ``params - adapted params`` after ``inner_steps`` SGD steps on its support set.

    The query set is only scored (``MetaStep.query_loss``), never trained on. Reptile
    needs several inner steps to differ from joint training (its paper uses 5 or more).
    Parameters as in :class:`BaseMetaLearner`.
    """

    def _task_functional(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        adapted = self._adapt(params, buffers, sx, sy)
        loss = self.loss_fn(predict(self.model, adapted, buffers, qx), qy)
        return {name: params[name] - adapted[name] for name in params}, loss

    def _task_autograd(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        start = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        adapted = self._adapt_autograd(start, buffers, sx, sy, create_graph=False)
        with torch.no_grad():
            loss = self.loss_fn(predict(self.model, adapted, buffers, qx), qy)
            return {name: params[name] - adapted[name] for name in params}, loss
