"""Functional building blocks shared by the algorithms and the adapter: parameter
dictionaries, the loss, and the inner SGD loop written with :mod:`torch.func`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad

from autometa.exceptions import InputError

__all__ = [
    "InnerLoop",
    "LossFn",
    "Params",
    "accuracy",
    "buffers_of",
    "cross_entropy_loss",
    "fold_adapt",
    "fold_loss",
    "fold_predict",
    "foldable",
    "make_convnet",
    "make_mlp",
    "mse_loss",
    "parameters_of",
]

Params = dict[str, torch.Tensor]
"""Named tensors standing for a module's parameters (the names of ``named_parameters``)."""

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(prediction, target) -> scalar`` averaged over the points of one task."""


def mse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (the sinusoid loss of Finn et al. 2017)."""
    return torch.mean((prediction - target) ** 2)


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``(n, classes)`` logits against int64 labels ``(n,)``."""
    return torch.nn.functional.cross_entropy(logits, target)


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fraction of points whose arg-max logit is the label (a 0-d float tensor)."""
    return (logits.argmax(dim=-1) == target).to(torch.float32).mean()


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
    lr: float | Params,
    loss_fn: LossFn,
    names: Collection[str] | None = None,
) -> Params:
    """``steps`` SGD steps from ``params`` on ``(x, y)``, differentiable end to end.

    Written with :func:`torch.func.grad`, so it composes with ``vmap`` (one task per
    vmapped call) and with an outer ``grad`` (which then sees the second-order terms).

    Parameters
    ----------
    lr : float or dict of str to torch.Tensor
        One step size, or one per parameter (a tensor shaped like it, as in Meta-SGD).
    names : collection of str, optional
        Adapt only these parameters (ANIL's head); the others stay as given. All by default.
    """
    adapted = list(params) if names is None else [n for n in params if n in names]
    frozen = {n: v for n, v in params.items() if n not in adapted}

    def task_loss(p: Params, x_: torch.Tensor, y_: torch.Tensor) -> torch.Tensor:
        return loss_fn(predict(model, {**frozen, **p}, buffers, x_), y_)

    loss_grad = grad(task_loss)
    current = {n: params[n] for n in adapted}
    for _ in range(steps):
        grads = loss_grad(current, x, y)
        current = {n: v - (lr[n] if isinstance(lr, dict) else lr) * grads[n] for n, v in current.items()}
    return {n: current.get(n, v) for n, v in params.items()}


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


def make_convnet(
    out_features: int | None = 5,
    *,
    in_channels: int = 1,
    channels: Sequence[int] = (32, 32, 64, 64),
    image_size: int = 28,
    seed: int | None = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """The few-shot convolutional network of Vinyals et al. (2016) and Finn et al. (2017).

    One block per entry of ``channels``: 3x3 convolution (padding 1), batch norm,
    ReLU, 2x2 max-pooling; then flattening and, unless ``out_features`` is None, a
    linear head (the classifier, the last child, which ANIL adapts). Batch norm keeps no
    running statistics (``track_running_stats=False``): it normalizes with the
    statistics of the images it is given, at meta-training and test time alike (the
    transductive setting of MAML), and it has no buffers, so the network works under
    ``vmap``.

    Parameters
    ----------
    out_features : int or None
        Classes of the head (the "ways"); None returns the embedding network of
        Prototypical Networks.
    in_channels : int
    channels : sequence of int
        Output channels of each block.
    image_size : int
        Side of the square input images.
    seed : int or None
        Seed of the initialisation (the global RNG is left as it was); None uses the global RNG.
    dtype : torch.dtype
    """
    if not channels or any(c < 1 for c in channels) or in_channels < 1:
        raise InputError(f"The 'channels' of make_convnet must be ints >= 1; got {list(channels)!r}.")
    if out_features is not None and out_features < 1:
        raise InputError(f"The 'out_features' parameter of make_convnet must be >= 1 or None; got {out_features!r}.")
    side = image_size
    for _ in channels:
        side //= 2
    if side < 1:
        raise InputError(
            f"{len(channels)} pooling blocks shrink {image_size} px images to nothing; use larger images or fewer blocks."
        )

    def build() -> nn.Sequential:
        layers: list[nn.Module] = []
        previous = in_channels
        for c in channels:
            layers += [
                nn.Conv2d(previous, c, 3, padding=1, dtype=dtype),
                nn.BatchNorm2d(c, track_running_stats=False, dtype=dtype),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            previous = c
        layers.append(nn.Flatten())
        if out_features is not None:
            layers.append(nn.Linear(previous * side * side, out_features, dtype=dtype))
        return nn.Sequential(*layers)

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# --- the meta-batch folded into the channels: the conv net without vmap ----------------------

_FOLD_LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear)


def foldable(model: nn.Module) -> bool:
    """Whether :func:`fold_predict` runs ``model``: an ``nn.Sequential`` of Conv2d (no dilation),
    BatchNorm2d without running statistics, ReLU, MaxPool2d, one Flatten and Linear layers
    after it (the networks of :func:`make_convnet`), without buffers."""
    if not isinstance(model, nn.Sequential) or any(True for _ in model.buffers()):
        return False
    flat = False
    for layer in model:
        if not isinstance(layer, _FOLD_LAYERS):
            return False
        if isinstance(layer, nn.BatchNorm2d) and layer.track_running_stats:
            return False
        if isinstance(layer, nn.Conv2d) and (layer.dilation != (1, 1) or layer.groups != 1 or layer.bias is None
                                             or layer.padding_mode != "zeros"):  # fmt: skip
            return False
        if isinstance(layer, nn.Linear) and (not flat or layer.bias is None):
            return False
        if isinstance(layer, nn.BatchNorm2d | nn.MaxPool2d | nn.Conv2d) and flat:
            return False
        if isinstance(layer, nn.BatchNorm2d) and not layer.affine:
            return False
        flat = flat or isinstance(layer, nn.Flatten)
    return flat


def fold_predict(model: nn.Sequential, params: Params, x: torch.Tensor) -> torch.Tensor:
    """The outputs of every task at once, ``(T, n, ...)``, for inputs ``x`` of shape ``(T, n, C, H, W)``.

    Each parameter is either shared by the tasks (its own shape) or one per task (a leading
    axis of ``T``). The tasks are folded into the channels: the images become
    ``(n, T * C, H, W)``, each convolution a grouped convolution with ``T`` groups, and batch
    norm, ReLU and max-pooling their native kernels, which normalize each (task, channel)
    over that task's images; after flattening, the linear layers are batched matrix
    products. The result equals ``vmap`` of the per-task forward (batch statistics per task)
    and runs without vmap's batching rules. ``model`` must pass :func:`foldable`.
    """
    tasks, n = x.shape[:2]
    h = x.transpose(0, 1).reshape(n, tasks * x.shape[2], *x.shape[3:])
    for name, layer in model.named_children():

        def stacked(attr: str, layer: nn.Module = layer, name: str = name) -> torch.Tensor:
            value, own = params[f"{name}.{attr}"], getattr(layer, attr)
            return value if value.dim() > own.dim() else value.expand(tasks, *own.shape)

        if isinstance(layer, nn.Conv2d):
            weight = stacked("weight")
            h = torch.nn.functional.conv2d(h, weight.reshape(-1, *weight.shape[2:]), stacked("bias").reshape(-1),
                                           stride=layer.stride, padding=layer.padding, groups=tasks)  # fmt: skip
        elif isinstance(layer, nn.BatchNorm2d):
            h = torch.nn.functional.batch_norm(h, None, None, stacked("weight").reshape(-1), stacked("bias").reshape(-1),
                                               training=True, eps=layer.eps)  # fmt: skip
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
        elif isinstance(layer, nn.MaxPool2d):
            h = torch.nn.functional.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding,
                                               ceil_mode=layer.ceil_mode)  # fmt: skip
        elif isinstance(layer, nn.Flatten):
            h = h.reshape(n, tasks, -1).transpose(0, 1)  # (T, n, C*h*w), each task's features in C, h, w order
        else:  # nn.Linear on (T, n, features)
            h = torch.baddbmm(stacked("bias").unsqueeze(1), h, stacked("weight").transpose(1, 2))
    return h


def fold_loss(model: nn.Sequential, params: Params, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
    """The sum over tasks of each task's loss (``loss_fn`` must be a mean over the points:
    ``T * loss_fn`` of all points is then that sum)."""
    prediction = fold_predict(model, params, x)
    return x.shape[0] * loss_fn(prediction.flatten(0, 1), y.flatten(0, 1))


def fold_adapt(
    model: nn.Sequential,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float | Params,
    loss_fn: LossFn,
    names: Collection[str] | None = None,
) -> Params:
    """:func:`sgd_adapt` of every task at once, on per-task parameters (leading axis ``T``):
    the gradient of the summed task losses is each task's own gradient."""
    adapted = list(params) if names is None else [n for n in params if n in names]
    frozen = {n: v for n, v in params.items() if n not in adapted}
    loss_grad = grad(lambda p: fold_loss(model, {**frozen, **p}, x, y, loss_fn))
    current = {n: params[n] for n in adapted}
    for _ in range(steps):
        grads = loss_grad(current)
        current = {n: v - (lr[n] if isinstance(lr, dict) else lr) * grads[n] for n, v in current.items()}
    return {n: current.get(n, v) for n, v in params.items()}
