"""MAML (second order), first-order MAML, Reptile, ANIL, Meta-SGD and Prototypical Networks
on one task-batch abstraction.

Each algorithm turns the current parameters and a :class:`TaskBatch` into a meta-gradient
(the mean over tasks of a per-task update direction). Two equivalent implementations:

* vectorized (default): one per-task function written with :mod:`torch.func`
  (``functional_call``, ``grad``) and mapped over the tasks with ``vmap``;
* a plain Python loop over tasks using ``torch.autograd.grad``, kept as an independent
  reference for tests and as the baseline of the throughput benchmark.

On the few-shot conv net (:func:`make_convnet`) the vectorized path of MAML, FOMAML,
Reptile, Meta-SGD and ProtoNet folds the meta-batch into the channels instead of using
``vmap`` (:func:`~autometa.metalearn._functional.fold_predict`): grouped convolutions and
the native batch-norm and pooling kernels, whose vmap batching rules are slower than the
per-task loop on CPU.

The outer optimizer (Adam by default) consumes the meta-gradient as if it were an
ordinary gradient. For Reptile the meta-gradient is ``params - mean(adapted params)``
(Nichol et al. 2018): with plain SGD of step size ``epsilon`` as the outer optimizer it
is exactly the Reptile update, and feeding it to Adam is the variant their paper uses.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.func import grad, grad_and_value, vmap

from autometa.exceptions import InputError
from autometa.metalearn._adapt import AdaptedModel, adapt, evaluate_adaptation
from autometa.metalearn._functional import (
    InnerLoop,
    LossFn,
    Params,
    buffers_of,
    cross_entropy_loss,
    fold_adapt,
    fold_loss,
    fold_predict,
    foldable,
    mse_loss,
    predict,
    sgd_adapt,
)
from autometa.metalearn._tasks import TaskBatch

__all__ = [
    "ANIL",
    "FOMAML",
    "MAML",
    "BaseMetaLearner",
    "MetaSGD",
    "MetaStep",
    "MetaTrainHistory",
    "PrototypeClassifier",
    "ProtoNet",
    "Reptile",
    "TaskDistribution",
]


class TaskDistribution(Protocol):
    """Anything that draws meta-batches, such as :class:`SinusoidTasks`."""

    def sample(self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = ...) -> TaskBatch: ...


@dataclass(frozen=True)
class MetaStep:
    """The result of one meta-gradient computation.

    Attributes
    ----------
    grads : dict of str to torch.Tensor
        The meta-gradient, keyed like :meth:`BaseMetaLearner.meta_parameters` (the
        model's ``named_parameters()``, plus the learned step sizes of Meta-SGD).
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
    time); both must return the same numbers. :meth:`meta_gradient` reads the
    meta-parameters (:meth:`meta_parameters`) and never changes them; :meth:`meta_step`
    and :meth:`meta_train` write ``.grad`` and step the outer optimizer, which mutates
    them. Batches are moved to the device of the model. Not thread-safe: one learner,
    one training loop.

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
    amp : bool
        On CUDA, run the meta-gradient under ``torch.autocast`` with bfloat16 (ignored
        on CPU, where everything stays in the model's dtype).
    fold : bool, optional
        On the vectorized path, fold the meta-batch into the channels of a conv net
        instead of vmapping over the tasks (same numbers, faster on the conv net). None
        (default): fold when the algorithm supports it, the model passes
        :func:`~autometa.metalearn._functional.foldable` and ``loss_fn`` is the package's
        :func:`mse_loss` or :func:`cross_entropy_loss` (folding needs a loss that is a mean
        over the points); False: never; True: a loss of your own that is such a mean.
    """

    _folds = False  # the class implements _task_folded

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_steps: int = 1,
        inner_lr: float = 0.01,
        loss_fn: LossFn = mse_loss,
        vectorize: bool = True,
        amp: bool = False,
        fold: bool | None = None,
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
        self.amp = amp
        can_fold = type(self)._folds and foldable(model)
        if fold and not can_fold:
            raise InputError(
                f"The 'fold' parameter of {type(self).__name__} is True, but "
                + ("the algorithm has no folded path" if not type(self)._folds else
                   "the model is not a foldable conv net (an nn.Sequential of Conv2d, BatchNorm2d without running "
                   "statistics, ReLU, MaxPool2d, Flatten and Linear layers)") + "; pass fold=None or False."
            )  # fmt: skip
        mean_loss = loss_fn in (mse_loss, cross_entropy_loss, torch.nn.functional.cross_entropy)
        self._fold = can_fold and (fold is True or (fold is None and mean_loss))

    # --- what is meta-learned ----------------------------------------------------------

    def meta_parameters(self) -> dict[str, nn.Parameter]:
        """The tensors the outer loop learns, by name: the model's parameters by default."""
        return dict(self.model.named_parameters())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Copies of the meta-parameters (the learned initialization), for ``torch.save``."""
        return {name: p.detach().clone() for name, p in self.meta_parameters().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Set the meta-parameters from :meth:`state_dict` output (same names and shapes)."""
        own = self.meta_parameters()
        if set(state) != set(own):
            raise InputError(
                f"The state of {type(self).__name__} must hold exactly the meta-parameters {sorted(own)}; "
                f"got {sorted(state)}."
            )
        with torch.no_grad():
            for name, p in own.items():
                p.copy_(state[name])

    @property
    def device(self) -> torch.device:
        """The device of the meta-parameters (batches are moved there)."""
        return next(iter(self.meta_parameters().values())).device

    def _model_params(self, params: Params) -> Params:
        """The entries of the meta-parameters that are the model's parameters."""
        return params

    def _inner_lr(self, params: Params) -> float | Params:
        """The inner step size: one float, or one tensor per adapted parameter."""
        return self.inner.lr

    @property
    def adapted_names(self) -> frozenset[str] | None:
        """Names of the parameters the inner loop changes; None for all of them."""
        return None

    def _prepare(self, batch: TaskBatch) -> None:
        """Hook called with each batch before its meta-gradient (ProtoNet reads the ways)."""
        return None

    @property
    def folds(self) -> bool:
        """Whether :meth:`meta_gradient` folds the meta-batch into the conv net's channels."""
        return self.vectorize and self._fold

    def _task_folded(
        self, params: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        """(meta-gradient, mean query loss) of all tasks at once on the folded conv net."""
        raise NotImplementedError

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
        """The model's parameters after the inner loop, from the meta-parameters ``params``."""
        return sgd_adapt(
            self.model,
            self._model_params(params),
            buffers,
            x,
            y,
            steps=self.inner.steps,
            lr=self._inner_lr(params),
            loss_fn=self.loss_fn,
            names=self.adapted_names,
        )

    def _adapt_autograd(
        self, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor, *, create_graph: bool
    ) -> Params:
        """Like :meth:`_adapt` with ``torch.autograd.grad`` (the reference path)."""
        lr = self._inner_lr(params)
        current = self._model_params(params)
        names = [n for n in current if self.adapted_names is None or n in self.adapted_names]
        for _ in range(self.inner.steps):
            loss = self.loss_fn(predict(self.model, current, buffers, x), y)
            grads = dict(
                zip(
                    names,
                    torch.autograd.grad(loss, [current[n] for n in names], create_graph=create_graph),
                    strict=True,
                )
            )
            current = {
                n: (v - (lr[n] if isinstance(lr, dict) else lr) * grads[n]) if n in grads else v
                for n, v in current.items()
            }
        return current

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp and self.device.type == "cuda"
        )

    def meta_gradient(self, batch: TaskBatch) -> MetaStep:
        """The meta-gradient of ``batch`` at the current meta-parameters (not applied)."""
        params = {name: p.detach() for name, p in self.meta_parameters().items()}
        buffers = buffers_of(self.model)
        batch = batch.to(device=self.device)
        self._prepare(batch)
        data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        with self._autocast():
            return self._meta_gradient(params, buffers, data, len(batch))

    def _meta_gradient(self, params: Params, buffers: Params, data: tuple[torch.Tensor, ...], n: int) -> MetaStep:
        if self.folds:
            grads, loss = self._task_folded(params, *data)
            return MetaStep(grads, float(loss))
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
        for i in range(n):
            task_grads, loss = self._task_autograd(params, buffers, *(t[i] for t in data))
            for name, g in task_grads.items():
                totals[name] += g.detach()
            loss_sum += float(loss)
        return MetaStep({name: g / n for name, g in totals.items()}, loss_sum / n)

    def meta_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> float:
        """Compute the meta-gradient of ``batch``, store it in ``.grad`` and step ``optimizer``.

        Returns the mean query loss after adaptation (before the outer update).
        """
        step = self.meta_gradient(batch)
        for name, p in self.meta_parameters().items():
            p.grad = step.grads[name].detach().to(p.dtype).clone()
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
            An outer optimizer over ``meta_parameters().values()``; keep it across calls
            to continue training with its state.
        """
        if iterations < 0:
            raise InputError(f"The 'iterations' parameter of meta_train must be >= 0; got {iterations!r}.")
        if meta_batch_size < 1:
            raise InputError(f"The 'meta_batch_size' parameter of meta_train must be >= 1; got {meta_batch_size!r}.")
        if optimizer is None:
            if not outer_lr > 0:
                raise InputError(f"The 'outer_lr' parameter of meta_train must be > 0; got {outer_lr!r}.")
            optimizer = torch.optim.Adam(self.meta_parameters().values(), lr=outer_lr)
        dtype = next(iter(self.meta_parameters().values())).dtype
        generator = torch.Generator().manual_seed(seed)
        losses: list[float] = []
        start = time.perf_counter()
        for _ in range(iterations):
            batch = tasks.sample(meta_batch_size, generator, dtype=dtype)
            losses.append(self.meta_step(batch, optimizer))
        return MetaTrainHistory(tuple(losses), meta_batch_size, time.perf_counter() - start)

    def adapt(
        self, support_x: torch.Tensor, support_y: torch.Tensor, *, steps: int | None = None
    ) -> AdaptedModel | PrototypeClassifier:
        """Fine-tune the current parameters on one new task's support set in ``steps`` SGD
        steps (the inner loop's count by default) and return the adapted predictor; see
        :func:`autometa.metalearn.adapt`."""
        params = {name: p.detach() for name, p in self.meta_parameters().items()}
        return adapt(
            self.model,
            support_x.to(self.device),
            support_y.to(self.device),
            steps=self.inner.steps if steps is None else steps,
            lr=self._inner_lr(params),
            params=self._model_params(params),
            loss_fn=self.loss_fn,
            names=self.adapted_names,
        )

    def _evaluate_folded(
        self,
        params: Params,
        batch: TaskBatch,
        steps: Sequence[int],
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    ) -> dict[int, torch.Tensor]:
        """:meth:`evaluate` on the folded conv net (the same numbers as the vmapped adaptation)."""
        checkpoints = sorted(set(steps))
        if not checkpoints or checkpoints[0] < 0:
            raise InputError(f"The 'steps' parameter of evaluate must list ints >= 0; got {list(steps)!r}.")
        assert isinstance(self.model, nn.Sequential)
        score = self.loss_fn if metric is None else metric
        tasks = len(batch)
        current = {n: v.expand(tasks, *v.shape) for n, v in self._model_params(params).items()}
        lr, done, out = self._inner_lr(params), 0, {}
        with torch.no_grad(), self._autocast():  # torch.func.grad inside still differentiates
            for target in checkpoints:
                current = fold_adapt(self.model, current, batch.support_x, batch.support_y, steps=target - done,
                                     lr=lr, loss_fn=self.loss_fn, names=self.adapted_names)  # fmt: skip
                done = target
                predictions = fold_predict(self.model, current, batch.query_x)
                out[target] = torch.stack([score(predictions[i], batch.query_y[i]) for i in range(tasks)])
        return {k: v.float().cpu() for k, v in out.items()}

    def evaluate(
        self,
        batch: TaskBatch,
        *,
        steps: Sequence[int] | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[int, torch.Tensor]:
        """Query ``metric`` (the loss by default) of every task after adaptation, vmapped
        (folded on the conv net, see :attr:`folds`).

        Parameters
        ----------
        batch : TaskBatch
        steps : sequence of int, optional
            Adaptation step counts to report; the inner loop's count by default.
        metric : callable, optional
            Such as :func:`autometa.metalearn.accuracy` for classification.

        Returns
        -------
        dict of int to torch.Tensor
            ``{steps: per-task values of shape (n_tasks,)}`` (on the CPU).
        """
        params = {name: p.detach() for name, p in self.meta_parameters().items()}
        batch = batch.to(device=self.device)
        if self.folds:
            return self._evaluate_folded(params, batch, (self.inner.steps,) if steps is None else steps, metric)
        with self._autocast():
            scores = evaluate_adaptation(
                self.model,
                batch,
                steps=(self.inner.steps,) if steps is None else steps,
                lr=self._inner_lr(params),
                params=self._model_params(params),
                loss_fn=self.loss_fn,
                names=self.adapted_names,
                metric=metric,
            )
        return {k: v.float().cpu() for k, v in scores.items()}


class MAML(BaseMetaLearner):
    """Model-agnostic meta-learning with second-order meta-gradients (Finn et al. 2017).

    The meta-gradient differentiates the query loss of the adapted parameters through the
    inner SGD steps, Hessian-vector terms included. Parameters as in :class:`BaseMetaLearner`.
    """

    _folds = True

    def _task_folded(
        self, params: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        assert isinstance(self.model, nn.Sequential)
        model, tasks = self.model, sx.shape[0]

        def query_loss(p: Params) -> torch.Tensor:
            start = {n: v.expand(tasks, *v.shape) for n, v in self._model_params(p).items()}
            adapted = fold_adapt(model, start, sx, sy, steps=self.inner.steps, lr=self._inner_lr(p),
                                 loss_fn=self.loss_fn, names=self.adapted_names)  # fmt: skip
            return fold_loss(model, adapted, qx, qy, self.loss_fn) / tasks

        grads, loss = grad_and_value(query_loss)(params)
        return grads, loss

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

    _folds = True

    def _task_folded(
        self, params: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        assert isinstance(self.model, nn.Sequential)
        model, tasks = self.model, sx.shape[0]
        start = {n: v.expand(tasks, *v.shape) for n, v in params.items()}
        adapted = fold_adapt(model, start, sx, sy, steps=self.inner.steps, lr=self.inner.lr, loss_fn=self.loss_fn)
        per_task, total = grad_and_value(lambda p: fold_loss(model, p, qx, qy, self.loss_fn))(adapted)
        return {n: g.mean(dim=0) for n, g in per_task.items()}, total / tasks

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

    _folds = True

    def _task_folded(
        self, params: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        assert isinstance(self.model, nn.Sequential)
        model, tasks = self.model, sx.shape[0]
        start = {n: v.expand(tasks, *v.shape) for n, v in params.items()}
        adapted = fold_adapt(model, start, sx, sy, steps=self.inner.steps, lr=self.inner.lr, loss_fn=self.loss_fn)
        with torch.no_grad():
            loss = fold_loss(model, adapted, qx, qy, self.loss_fn) / tasks
        return {n: params[n] - adapted[n].mean(dim=0) for n in params}, loss

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


def _last_layer_names(model: nn.Module) -> frozenset[str]:
    """Parameter names of the last submodule (in registration order) that owns parameters."""
    owners = [(prefix, m) for prefix, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    if not owners:
        raise InputError(f"The model given to ANIL has no parameters; got {type(model).__name__}.")
    prefix, module = owners[-1]
    return frozenset(f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False))


class ANIL(MAML):
    """Almost No Inner Loop (Raghu et al. 2020): MAML whose inner loop adapts only the head.

    The inner SGD steps change only the parameters named in ``head`` (by default those of
    the model's last layer, e.g. the final ``nn.Linear``); the body is shared by all
    tasks and learned only in the outer loop, which differentiates through the head's
    adaptation (second order, cheap since the head is small).

    Parameters
    ----------
    model : torch.nn.Module
    head : collection of str, optional
        Names (as in ``model.named_parameters()``) of the parameters adapted per task.
    **kwargs
        As in :class:`BaseMetaLearner`.
    """

    def __init__(self, model: nn.Module, *, head: Collection[str] | None = None, **kwargs: object) -> None:
        super().__init__(model, **kwargs)  # type: ignore[arg-type]
        names = _last_layer_names(model) if head is None else frozenset(head)
        unknown = names - set(dict(model.named_parameters()))
        if not names or unknown:
            raise InputError(
                f"The 'head' parameter of ANIL must name parameters of the model; got unknown {sorted(unknown)!r}"
                f" (of {sorted(names)!r})."
            )
        self.head = names
        # fast path: the head is the last child of a Sequential, so the body's features
        # are computed once per task instead of once per inner step
        self._head_prefix: str | None = None
        if isinstance(model, nn.Sequential) and len(model) > 1:
            prefix = f"{len(model) - 1}."
            if names == {prefix + n for n, _ in model[-1].named_parameters()}:
                self._head_prefix = prefix

    @property
    def adapted_names(self) -> frozenset[str]:
        return self.head

    @property
    def folds(self) -> bool:
        model = self.model
        return (super().folds and self._head_prefix is not None and isinstance(model, nn.Sequential)
                and isinstance(model[-1], nn.Linear))  # fmt: skip

    def _task_folded(
        self, params: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        # the body embeds each task's images once (folded), the linear head adapts per task
        assert isinstance(self.model, nn.Sequential)
        body: nn.Sequential = self.model[:-1]  # type: ignore[assignment]
        tasks = sx.shape[0]

        def head_loss(head: Params, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            logits = torch.baddbmm(head["bias"].unsqueeze(1), features, head["weight"].transpose(1, 2))
            return tasks * self.loss_fn(logits.flatten(0, 1), y.flatten(0, 1))

        head_grad = grad(head_loss)

        def query_loss(p: Params) -> torch.Tensor:
            body_p, head_p = self._split(p)
            fs, fq = fold_predict(body, body_p, sx), fold_predict(body, body_p, qx)
            head = {n: v.expand(tasks, *v.shape) for n, v in head_p.items()}
            for _ in range(self.inner.steps):
                g = head_grad(head, fs, sy)
                head = {n: v - self.inner.lr * g[n] for n, v in head.items()}
            return head_loss(head, fq, qy) / tasks

        grads, loss = grad_and_value(query_loss)(params)
        return grads, loss

    def _split(self, tensors: Params) -> tuple[Params, Params]:
        """(body, head) entries, the head's without the prefix."""
        assert self._head_prefix is not None
        k = len(self._head_prefix)
        body = {n: v for n, v in tensors.items() if not n.startswith(self._head_prefix)}
        head = {n[k:]: v for n, v in tensors.items() if n.startswith(self._head_prefix)}
        return body, head

    def _cached_features_loss(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor,
        adapt_head: Callable[[nn.Module, Params, Params, torch.Tensor, torch.Tensor], Params],
    ) -> torch.Tensor:  # fmt: skip
        assert isinstance(self.model, nn.Sequential)
        body_module, head_module = self.model[:-1], self.model[-1]
        body_p, head_p = self._split(params)
        body_b, head_b = self._split(buffers)
        fs = predict(body_module, body_p, body_b, sx)
        fq = predict(body_module, body_p, body_b, qx)
        adapted = adapt_head(head_module, head_p, head_b, fs, sy)
        return self.loss_fn(predict(head_module, adapted, head_b, fq), qy)

    def _task_functional(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        if self._head_prefix is None:
            return super()._task_functional(params, buffers, sx, sy, qx, qy)

        def adapt_head(module: nn.Module, p: Params, b: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
            return sgd_adapt(module, p, b, x, y, steps=self.inner.steps, lr=self.inner.lr, loss_fn=self.loss_fn)

        grads, loss = grad_and_value(lambda p: self._cached_features_loss(p, buffers, sx, sy, qx, qy, adapt_head))(
            params
        )
        return grads, loss

    def evaluate(
        self,
        batch: TaskBatch,
        *,
        steps: Sequence[int] | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[int, torch.Tensor]:
        """As :meth:`BaseMetaLearner.evaluate`; on the fast path the body embeds each task once."""
        if self._head_prefix is None:
            return super().evaluate(batch, steps=steps, metric=metric)
        assert isinstance(self.model, nn.Sequential)
        body_module, head_module = self.model[:-1], self.model[-1]
        body_p, head_p = self._split({n: p.detach() for n, p in self.model.named_parameters()})
        body_b, head_b = self._split(buffers_of(self.model))
        batch = batch.to(device=self.device)
        with torch.no_grad(), self._autocast():
            embed = vmap(lambda x: predict(body_module, body_p, body_b, x))
            features = TaskBatch(embed(batch.support_x), batch.support_y, embed(batch.query_x), batch.query_y)
            scores = evaluate_adaptation(
                head_module,
                features,
                steps=(self.inner.steps,) if steps is None else steps,
                lr=self.inner.lr,
                params=head_p,
                loss_fn=self.loss_fn,
                metric=metric,
            )
        return {k: v.float().cpu() for k, v in scores.items()}

    def _task_autograd(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        if self._head_prefix is None:
            return super()._task_autograd(params, buffers, sx, sy, qx, qy)

        def adapt_head(module: nn.Module, p: Params, b: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
            for _ in range(self.inner.steps):
                loss = self.loss_fn(predict(module, p, b, x), y)
                grads = torch.autograd.grad(loss, list(p.values()), create_graph=True)
                p = {n: v - self.inner.lr * g for (n, v), g in zip(p.items(), grads, strict=True)}
            return p

        start = {name: v.detach().requires_grad_(True) for name, v in params.items()}
        loss = self._cached_features_loss(start, buffers, sx, sy, qx, qy, adapt_head)
        grads = torch.autograd.grad(loss, list(start.values()))
        return dict(zip(start, grads, strict=True)), loss.detach()


_LR_PREFIX = "inner_lr:"


class MetaSGD(MAML):
    """Meta-SGD (Li et al. 2017): MAML that also learns one inner step size per weight.

    The inner update is ``theta - alpha * grad`` with ``alpha`` a tensor shaped like
    ``theta`` (initialised to ``inner_lr``), meta-learned with the initialization by the
    outer optimizer. The learned rates are meta-parameters named ``"inner_lr:<name>"``
    (:meth:`meta_parameters`, :meth:`state_dict`); they are not parameters of the model.
    Parameters as in :class:`BaseMetaLearner` (Meta-SGD uses one inner step).
    """

    def __init__(self, model: nn.Module, **kwargs: object) -> None:
        super().__init__(model, **kwargs)  # type: ignore[arg-type]
        self.inner_lrs: dict[str, nn.Parameter] = {
            name: nn.Parameter(torch.full_like(p.detach(), self.inner.lr)) for name, p in model.named_parameters()
        }

    def meta_parameters(self) -> dict[str, nn.Parameter]:
        return {**dict(self.model.named_parameters()), **{_LR_PREFIX + n: p for n, p in self.inner_lrs.items()}}

    def _model_params(self, params: Params) -> Params:
        return {n: p for n, p in params.items() if not n.startswith(_LR_PREFIX)}

    def _inner_lr(self, params: Params) -> Params:
        return {n[len(_LR_PREFIX) :]: p for n, p in params.items() if n.startswith(_LR_PREFIX)}


@dataclass(frozen=True)
class PrototypeClassifier:
    """Nearest-prototype classifier of a Prototypical Network for one task; call it on images.

    Attributes
    ----------
    model : torch.nn.Module
        The embedding network.
    params, buffers : dict of str to torch.Tensor
    prototypes : torch.Tensor
        ``(ways, embedding)``: the mean support embedding of each class.
    """

    model: nn.Module
    params: Params
    buffers: Params
    prototypes: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, ways)``: minus the squared Euclidean distance to each prototype."""
        with torch.no_grad():
            return _prototype_logits(predict(self.model, self.params, self.buffers, x), self.prototypes)


def _prototypes(embedding: torch.Tensor, labels: torch.Tensor, ways: int) -> torch.Tensor:
    onehot = (labels.unsqueeze(-1) == torch.arange(ways, device=labels.device)).to(embedding.dtype)  # (n, ways)
    return (onehot.transpose(0, 1) @ embedding) / onehot.sum(dim=0).unsqueeze(-1)


def _prototype_logits(embedding: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    return -((embedding.unsqueeze(-2) - prototypes) ** 2).sum(dim=-1)


class ProtoNet(BaseMetaLearner):
    """Prototypical Networks (Snell et al. 2017), the metric-learning baseline.

    ``model`` embeds an input into a vector; a class's prototype is the mean embedding of
    its support points and a query point's logits are minus its squared Euclidean
    distances to the prototypes. Meta-training minimises the query cross-entropy; there is
    no inner loop, so adaptation (:meth:`adapt`) only computes prototypes. Labels must be
    ``0 .. ways-1`` with every class present in each support set.

    Parameters
    ----------
    model : torch.nn.Module
        The embedding network (e.g. ``make_convnet(None)``), output ``(n, features)``.
    vectorize : bool
        vmap over the tasks (True) or loop over them.
    amp : bool
        As in :class:`BaseMetaLearner`.
    """

    _folds = True

    def __init__(self, model: nn.Module, *, vectorize: bool = True, amp: bool = False, fold: bool | None = None) -> None:
        super().__init__(model, inner_steps=1, inner_lr=1.0, loss_fn=torch.nn.functional.cross_entropy,
                         vectorize=vectorize, amp=amp, fold=fold)  # fmt: skip
        self._ways = 0

    def _task_folded(
        self, params: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        assert isinstance(self.model, nn.Sequential)
        model, ways = self.model, self._ways

        def loss(p: Params) -> torch.Tensor:
            es, eq = fold_predict(model, p, sx), fold_predict(model, p, qx)  # (T, n, d)
            onehot = (sy.unsqueeze(-1) == torch.arange(ways, device=sy.device)).to(es.dtype)  # (T, n, ways)
            prototypes = onehot.transpose(1, 2) @ es / onehot.sum(dim=1).unsqueeze(-1)
            logits = -((eq.unsqueeze(-2) - prototypes.unsqueeze(1)) ** 2).sum(dim=-1)
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), qy.flatten(0, 1))

        grads, value = grad_and_value(loss)(params)
        return grads, value

    def _prepare(self, batch: TaskBatch) -> None:
        if batch.support_y.is_floating_point():
            raise InputError("ProtoNet needs int64 class labels in support_y; got floating-point targets.")
        self._ways = int(batch.support_y.max()) + 1

    def _task_loss(self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor,
                   qy: torch.Tensor) -> torch.Tensor:  # fmt: skip
        prototypes = _prototypes(predict(self.model, params, buffers, sx), sy, self._ways)
        logits = _prototype_logits(predict(self.model, params, buffers, qx), prototypes)
        return torch.nn.functional.cross_entropy(logits, qy)

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
        grads = torch.autograd.grad(loss, list(leaves.values()))
        return dict(zip(leaves, grads, strict=True)), loss.detach()

    def adapt(
        self, support_x: torch.Tensor, support_y: torch.Tensor, *, steps: int | None = None
    ) -> PrototypeClassifier:
        """The nearest-prototype classifier of one new task (``steps`` is ignored)."""
        params = {name: p.detach() for name, p in self.model.named_parameters()}
        buffers = buffers_of(self.model)
        support_y = support_y.to(self.device)
        with torch.no_grad():
            embedding = predict(self.model, params, buffers, support_x.to(self.device))
            prototypes = _prototypes(embedding, support_y, int(support_y.max()) + 1)
        return PrototypeClassifier(self.model, params, buffers, prototypes)

    def evaluate(
        self,
        batch: TaskBatch,
        *,
        steps: Sequence[int] | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[int, torch.Tensor]:
        """Query ``metric`` (cross-entropy by default) of every task, keyed ``0`` (no steps)."""
        params = {name: p.detach() for name, p in self.model.named_parameters()}
        buffers = buffers_of(self.model)
        batch = batch.to(device=self.device)
        self._prepare(batch)
        score = metric if metric is not None else torch.nn.functional.cross_entropy

        def one_task(sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor) -> torch.Tensor:
            prototypes = _prototypes(predict(self.model, params, buffers, sx), sy, self._ways)
            return score(_prototype_logits(predict(self.model, params, buffers, qx), prototypes), qy)

        with torch.no_grad(), self._autocast():
            values = vmap(one_task)(batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        return {0: values.float().cpu()}
