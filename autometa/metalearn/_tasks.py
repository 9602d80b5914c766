"""Task distributions for meta-learning and the batch of tasks every algorithm consumes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from autometa.exceptions import InputError

__all__ = ["HarmonicTasks", "LineTasks", "SinusoidTasks", "TaskBatch"]


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

    def to(self, dtype: torch.dtype | None = None, *, device: torch.device | str | None = None) -> TaskBatch:
        """The same batch with its floating-point tensors cast to ``dtype`` (integer class
        labels keep theirs) and every tensor moved to ``device``."""

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if dtype is not None and t.is_floating_point() else None)

        return TaskBatch(*(move(t) for t in (self.support_x, self.support_y, self.query_x, self.query_y)))


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


def _uniform(
    generator: torch.Generator, shape: tuple[int, ...], bounds: tuple[float, float], dtype: torch.dtype
) -> torch.Tensor:
    low, high = bounds
    return torch.rand(shape, generator=generator, dtype=dtype) * (high - low) + low


def _check_regression_settings(
    owner: str, k_support: int, k_query: int | None, ranges: dict[str, tuple[float, float]]
) -> None:
    if k_support < 1:
        raise InputError(f"The 'k_support' parameter of {owner} must be >= 1; got {k_support!r}.")
    if k_query is not None and k_query < 1:
        raise InputError(f"The 'k_query' parameter of {owner} must be >= 1 or None; got {k_query!r}.")
    for name, (low, high) in ranges.items():
        if not low <= high:
            raise InputError(
                f"The '{name}' parameter of {owner} must be (low, high) with low <= high; got {(low, high)!r}."
            )


@dataclass(frozen=True)
class LineTasks:
    """Linear regression tasks ``y = slope * x + intercept`` (the line family of Finn et
    al. 2018), slope and intercept from ``U[slope_range]`` and ``U[intercept_range]``,
    inputs from ``U[x_range]``.

    Parameters
    ----------
    k_support : int
    k_query : int or None
        ``None`` means as many as ``k_support``.
    slope_range, intercept_range, x_range : tuple of float
    """

    k_support: int = 10
    k_query: int | None = None
    slope_range: tuple[float, float] = (-3.0, 3.0)
    intercept_range: tuple[float, float] = (-3.0, 3.0)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        _check_regression_settings("LineTasks", self.k_support, self.k_query,
                                   {n: getattr(self, n) for n in ("slope_range", "intercept_range", "x_range")})  # fmt: skip

    def sample(self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """Draw ``n_tasks`` tasks; x and y of shape ``(n_tasks, k, 1)``."""
        if n_tasks < 1:
            raise InputError(f"The 'n_tasks' parameter of LineTasks.sample must be >= 1; got {n_tasks!r}.")
        k_query = self.k_support if self.k_query is None else self.k_query
        slope = _uniform(generator, (n_tasks, 1, 1), self.slope_range, dtype)
        intercept = _uniform(generator, (n_tasks, 1, 1), self.intercept_range, dtype)
        sx = _uniform(generator, (n_tasks, self.k_support, 1), self.x_range, dtype)
        qx = _uniform(generator, (n_tasks, k_query, 1), self.x_range, dtype)
        return TaskBatch(sx, slope * sx + intercept, qx, slope * qx + intercept)


@dataclass(frozen=True)
class HarmonicTasks:
    """Sums of two harmonics, ``y = a1 sin(w x + b1) + a2 sin(2 w x + b2)``, after the
    harmonic family of Lacoste et al. (2018): ``w ~ U[frequency_range]``, phases
    ``b ~ U[0, 2 pi]``, amplitudes ``a ~ N(0, 1)``, inputs ``x ~ U[x_range]``.

    The defaults are ours: the frequency range of Lacoste et al. over a window short
    enough (about one to two periods) that ten points pin a task down.

    Parameters
    ----------
    k_support : int
    k_query : int or None
        ``None`` means as many as ``k_support``.
    frequency_range, x_range : tuple of float
    """

    k_support: int = 10
    k_query: int | None = None
    frequency_range: tuple[float, float] = (5.0, 7.0)
    x_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        _check_regression_settings("HarmonicTasks", self.k_support, self.k_query,
                                   {n: getattr(self, n) for n in ("frequency_range", "x_range")})  # fmt: skip

    def sample(self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """Draw ``n_tasks`` tasks; x and y of shape ``(n_tasks, k, 1)``."""
        if n_tasks < 1:
            raise InputError(f"The 'n_tasks' parameter of HarmonicTasks.sample must be >= 1; got {n_tasks!r}.")
        k_query = self.k_support if self.k_query is None else self.k_query
        w = _uniform(generator, (n_tasks, 1, 1), self.frequency_range, dtype)
        phases = _uniform(generator, (n_tasks, 2, 1, 1), (0.0, 2 * math.pi), dtype)
        amplitudes = torch.randn((n_tasks, 2, 1, 1), generator=generator, dtype=dtype)

        def f(x: torch.Tensor) -> torch.Tensor:
            return amplitudes[:, 0] * torch.sin(w * x + phases[:, 0]) + amplitudes[:, 1] * torch.sin(
                2 * w * x + phases[:, 1]
            )

        sx = _uniform(generator, (n_tasks, self.k_support, 1), self.x_range, dtype)
        qx = _uniform(generator, (n_tasks, k_query, 1), self.x_range, dtype)
        return TaskBatch(sx, f(sx), qx, f(qx))
