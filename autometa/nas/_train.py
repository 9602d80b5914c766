"""Training a network from scratch: the evaluation of a searched (or a fixed) cell."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autometa.exceptions import InputError
from autometa.nas._data import ImageData, MinibatchSampler
from autometa.nas._genotype import Genotype
from autometa.nas._network import GenotypeNetwork, count_parameters
from autometa.nas._search import accuracy, resolve_device

__all__ = ["TrainResult", "train_genotype", "train_network"]

logger = logging.getLogger("autometa.nas")


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train_network`.

    Attributes
    ----------
    valid_curve : tuple of (int, float)
        ``(step, validation accuracy)`` at every evaluation.
    valid_accuracy : float
        Validation accuracy at the end.
    test_accuracy : float or None
        Accuracy on the test data, when given.
    n_parameters : int
    seconds : float
    """

    valid_curve: tuple[tuple[int, float], ...]
    valid_accuracy: float
    test_accuracy: float | None
    n_parameters: int
    seconds: float


def train_network(
    net: nn.Module,
    train: ImageData,
    valid: ImageData,
    *,
    steps: int,
    test: ImageData | None = None,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 3e-4,
    batch_size: int = 64,
    grad_clip: float = 5.0,
    eval_every: int = 100,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``net`` in place with SGD (momentum, cosine schedule) on cross-entropy.

    Parameters
    ----------
    net : torch.nn.Module
        Its device is used for the data.
    train, valid : ImageData
    steps : int
        Minibatch updates.
    test : ImageData, optional
        Scored once at the end.
    lr, momentum, weight_decay, batch_size, grad_clip : float or int
    eval_every : int
        Steps between validation evaluations.
    seed : int
        Seeds the minibatch order (and drop-path masks).
    callback : callable, optional
        ``callback(step, valid_accuracy)`` at every evaluation.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"The 'steps' parameter of train_network must be an int >= 1; got {steps!r}.")
    if not lr > 0:
        raise InputError(f"The 'lr' parameter of train_network must be > 0; got {lr!r}.")
    device = next(net.parameters()).device
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    sampler = MinibatchSampler(len(train), batch_size, seed, table=train.stem_kernel == 1)
    curve: list[tuple[int, float]] = []
    start = time.perf_counter()
    net.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step in range(1, steps + 1):
            index = sampler.next()
            optimizer.zero_grad()
            loss = F.cross_entropy(net(train.x[index].to(device)), train.y[index].to(device))
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
            optimizer.step()
            schedule.step()
            if step % eval_every == 0 or step == steps:
                acc = accuracy(net, valid)
                curve.append((step, acc))
                logger.info("train step %d/%d: loss %.4f, valid accuracy %.4f", step, steps, loss.item(), acc)
                if callback is not None:
                    callback(step, acc)
    test_acc = accuracy(net, test) if test is not None else None
    return TrainResult(tuple(curve), curve[-1][1], test_acc, count_parameters(net), time.perf_counter() - start)


def train_genotype(
    genotype: Genotype,
    train: ImageData,
    valid: ImageData,
    *,
    steps: int,
    test: ImageData | None = None,
    channels: int = 16,
    n_cells: int = 8,
    drop_path: float = 0.0,
    device: str | None = None,
    seed: int = 0,
    **train_kwargs: object,
) -> tuple[GenotypeNetwork, TrainResult]:
    """Build the network of ``genotype`` and train it from scratch.

    Parameters
    ----------
    genotype : Genotype
    train, valid, test : ImageData
    steps : int
    channels, n_cells : int
        Size of the network (DARTS evaluates with more cells and channels than it searches with).
    drop_path : float
    device : str, optional
        "cpu" or "cuda" (default: cuda when present).
    seed : int
        Seeds the initialisation and the training.
    **train_kwargs
        Passed to :func:`train_network` (``lr``, ``batch_size``, ``eval_every``, ...).

    Returns
    -------
    (GenotypeNetwork, TrainResult)
    """
    net = GenotypeNetwork(
        genotype,
        train.in_channels,
        max(train.n_classes, valid.n_classes),
        channels=channels,
        n_cells=n_cells,
        stem_kernel=train.stem_kernel,
        drop_path=drop_path,
        seed=seed,
    ).to(resolve_device(device))
    result = train_network(net, train, valid, steps=steps, test=test, seed=seed, **train_kwargs)  # type: ignore[arg-type]
    return net, result
