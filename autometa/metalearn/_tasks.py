"""Task distributions for meta-learning and the batch of tasks every algorithm consumes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from autometa.exceptions import InputError

__all__ = ["SinusoidTasks", "TaskBatch"]


@dataclass(frozen=True)
class TaskBatch:
    """A meta-batch of regression or classification tasks, stacked on the first axis.

    Every tensor has the tasks on axis 0, so ``support_x[i]`` is the support inputs of
    task ``i``; all tasks of a batch have the same number of support and query points.

    Attributes
    ----------
    support_x, support_y : torch.Tensor
        Shape ``(n_tasks, k_support, ...)``: the data an inner loop adapts on.
    query_x, query_y : torch.Tensor
        Shape ``(n_tasks, k_query, ...)``: the data the adapted model is scored on.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    def __post_init__(self) -> None:
        n = self.support_x.shape[0]
        for name in ("support_y", "query_x", "query_y"):
            tensor = getattr(self, name)
            if tensor.shape[0] != n:
                raise InputError(
                    f"The '{name}' tensor of a TaskBatch must have {n} tasks on axis 0 like "
                    f"'support_x'; got shape {tuple(tensor.shape)}."
                )
        if self.support_x.shape[:2] != self.support_y.shape[:2] or self.query_x.shape[:2] != self.query_y.shape[:2]:
            raise InputError(
                "The x and y tensors of a TaskBatch must agree on (n_tasks, n_points); got support "
                f"{tuple(self.support_x.shape)}/{tuple(self.support_y.shape)}, query "
                f"{tuple(self.query_x.shape)}/{tuple(self.query_y.shape)}."
            )

    def __len__(self) -> int:
        return int(self.support_x.shape[0])

    def task(self, index: int) -> TaskBatch:
        """The batch holding only task ``index`` (axis 0 kept, of length 1)."""
        sl = slice(index, index + 1)
        return TaskBatch(self.support_x[sl], self.support_y[sl], self.query_x[sl], self.query_y[sl])

    def to(self, dtype: torch.dtype) -> TaskBatch:
        """The same batch with every tensor cast to ``dtype``."""
        return TaskBatch(*(t.to(dtype) for t in (self.support_x, self.support_y, self.query_x, self.query_y)))


@dataclass(frozen=True)
class SinusoidTasks:
    """Sinusoid regression tasks of Finn et al. (2017), section 5.1.

    A task is ``y = amplitude * sin(x - phase)`` with amplitude drawn from
    ``U[amplitude_range]``, phase from ``U[phase_range]``; the ``k_support`` support
    and ``k_query`` query inputs are drawn independently from ``U[x_range]``.

    Parameters
    ----------
    k_support : int
        Support points per task (the "K" of K-shot regression).
    k_query : int or None
        Query points per task; ``None`` means as many as ``k_support``.
    amplitude_range, phase_range, x_range : tuple of float
        Bounds ``(low, high)`` of the uniform distributions.
    """

    k_support: int = 10
    k_query: int | None = None
    amplitude_range: tuple[float, float] = (0.1, 5.0)
    phase_range: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        if self.k_support < 1:
            raise InputError(f"The 'k_support' parameter of SinusoidTasks must be >= 1; got {self.k_support!r}.")
        if self.k_query is not None and self.k_query < 1:
            raise InputError(f"The 'k_query' parameter of SinusoidTasks must be >= 1 or None; got {self.k_query!r}.")
        for name in ("amplitude_range", "phase_range", "x_range"):
            low, high = getattr(self, name)
            if not low <= high:
                raise InputError(
                    f"The '{name}' parameter of SinusoidTasks must be (low, high) with low <= high; got {(low, high)!r}."
                )

    def sample(self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """Draw ``n_tasks`` tasks.

        Parameters
        ----------
        n_tasks : int
            Tasks in the meta-batch.
        generator : torch.Generator
            Source of randomness (seed it with ``torch.Generator().manual_seed(seed)``);
            the same generator state gives the same batch.
        dtype : torch.dtype

        Returns
        -------
        TaskBatch
            x and y tensors of shape ``(n_tasks, k, 1)``.
        """
        return self.sample_with_params(n_tasks, generator, dtype=dtype)[0]

    def sample_with_params(
        self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> tuple[TaskBatch, torch.Tensor, torch.Tensor]:
        """Like :meth:`sample`, and also return the amplitudes and phases, each ``(n_tasks,)``."""
        if n_tasks < 1:
            raise InputError(f"The 'n_tasks' parameter of SinusoidTasks.sample must be >= 1; got {n_tasks!r}.")
        k_query = self.k_support if self.k_query is None else self.k_query

        def uniform(shape: tuple[int, ...], bounds: tuple[float, float]) -> torch.Tensor:
            low, high = bounds
            return torch.rand(shape, generator=generator, dtype=dtype) * (high - low) + low

        amplitude = uniform((n_tasks,), self.amplitude_range)
        phase = uniform((n_tasks,), self.phase_range)
        support_x = uniform((n_tasks, self.k_support, 1), self.x_range)
        query_x = uniform((n_tasks, k_query, 1), self.x_range)
        batch = TaskBatch(
            support_x,
            self.evaluate(support_x, amplitude, phase),
            query_x,
            self.evaluate(query_x, amplitude, phase),
        )
        return batch, amplitude, phase

    @staticmethod
    def evaluate(x: torch.Tensor, amplitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """``amplitude * sin(x - phase)`` for x of shape ``(n_tasks, k, 1)`` and per-task parameters."""
        return amplitude.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))
