"""Functional building blocks shared by the algorithms and the adapter: parameter
dictionaries, the loss, and the inner SGD loop written with :mod:`torch.func`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad

from autometa.exceptions import InputError

__all__ = ["InnerLoop", "LossFn", "Params", "make_mlp", "mse_loss", "parameters_of", "buffers_of"]

Params = dict[str, torch.Tensor]
"""Named tensors standing for a module's parameters (the names of ``named_parameters``)."""

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(prediction, target) -> scalar`` averaged over the points of one task."""


def mse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (the sinusoid loss of Finn et al. 2017)."""
    return torch.mean((prediction - target) ** 2)


@dataclass(frozen=True)
class InnerLoop:
    """Settings of the inner (task-level) loop: plain SGD on the support set.

    Parameters
    ----------
    steps : int
        Gradient steps per task (>= 1 while meta-training, >= 0 when adapting).
    lr : float
        SGD step size (Finn et al. 2017 use 0.01 for sinusoids).
    """

    steps: int = 1
    lr: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise InputError(f"The 'steps' parameter of the inner loop must be an int >= 0; got {self.steps!r}.")
        if not self.lr > 0:
            raise InputError(f"The 'lr' parameter of the inner loop must be > 0; got {self.lr!r}.")


def parameters_of(model: nn.Module) -> Params:
    """The model's parameters, detached from its autograd graph (the values, not copies)."""
    return {name: p.detach() for name, p in model.named_parameters()}


def buffers_of(model: nn.Module) -> Params:
    """The model's buffers, detached."""
    return {name: b.detach() for name, b in model.named_buffers()}


def predict(model: nn.Module, params: Params, buffers: Params, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` evaluated with ``params`` and ``buffers`` in place of its own tensors."""
    return functional_call(model, (params, buffers), (x,))


def sgd_adapt(
    model: nn.Module,
    params: Params,
    buffers: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    loss_fn: LossFn,
) -> Params:
    """``steps`` SGD steps from ``params`` on ``(x, y)``, differentiable end to end.

    Written with :func:`torch.func.grad`, so it composes with ``vmap`` (one task per
    vmapped call) and with an outer ``grad`` (which then sees the second-order terms).
    """

    def task_loss(p: Params, x_: torch.Tensor, y_: torch.Tensor) -> torch.Tensor:
        return loss_fn(predict(model, p, buffers, x_), y_)

    loss_grad = grad(task_loss)
    for _ in range(steps):
        grads = loss_grad(params, x, y)
        params = {name: value - lr * grads[name] for name, value in params.items()}
    return params


def make_mlp(
    in_features: int = 1,
    hidden: Sequence[int] = (40, 40),
    out_features: int = 1,
    *,
    seed: int | None = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """A ReLU multilayer perceptron; the defaults give the 1-40-40-1 sinusoid network.

    Parameters
    ----------
    in_features, out_features : int
    hidden : sequence of int
        Widths of the hidden layers.
    seed : int or None
        Seed of the (PyTorch default) initialisation; the global torch RNG is left as it
        was. ``None`` draws from the global RNG.
    dtype : torch.dtype
    """
    widths = [in_features, *hidden, out_features]
    if any(w < 1 for w in widths):
        raise InputError(f"Layer widths of make_mlp must be >= 1; got {widths!r}.")

    def build() -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out, dtype=dtype))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
