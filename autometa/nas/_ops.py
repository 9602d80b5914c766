"""Candidate operations of the DARTS cell search space and the named operation sets.

Every operation maps ``(N, C, H, W)`` to ``(N, C, H / stride, W / stride)``, so any of
them can sit on any edge of a cell. Tables enter as ``(N, features, 1, 1)`` tensors, where
a 1x1 convolution is a fully connected layer: :data:`TABULAR_OPS` is their set. Batch normalisation is created by :func:`batch_norm`
with the network's two switches: ``affine`` (learned scale and shift; off during the
search, as in DARTS, so the architecture weights alone scale an operation) and
``track_running_stats`` (off for few-shot learning, where every forward pass normalises
with the statistics of its own batch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from autometa.exceptions import InputError

__all__ = [
    "DARTS_OPS",
    "FEWSHOT_OPS",
    "OPERATIONS",
    "TABULAR_OPS",
    "BNSettings",
    "FactorizedReduce",
    "ReLUConvBN",
    "make_op",
    "validate_ops",
]


@dataclass(frozen=True)
class BNSettings:
    """How the batch-norm layers of a network are built.

    Parameters
    ----------
    affine : bool
        Learn a scale and shift per channel.
    track_running_stats : bool
        Keep running statistics for evaluation mode; ``False`` normalises every batch
        with its own statistics (transductive, as few-shot learners do).
    """

    affine: bool = True
    track_running_stats: bool = True


def batch_norm(channels: int, bn: BNSettings) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=bn.affine, track_running_stats=bn.track_running_stats)


class ReLUConvBN(nn.Sequential):
    """ReLU, a (possibly non-square) convolution, batch norm."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int | tuple[int, int],
        stride: int,
        padding: int | tuple[int, int],
        bn: BNSettings,
        dilation: int = 1,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            batch_norm(c_out, bn),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise dilated convolution, pointwise convolution, batch norm."""

    def __init__(self, c: int, kernel: int, stride: int, padding: int, dilation: int, bn: BNSettings) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=stride, padding=padding, dilation=dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            batch_norm(c, bn),
        )


class SepConv(nn.Sequential):
    """A separable convolution applied twice (the first one carries the stride)."""

    def __init__(self, c: int, kernel: int, stride: int, padding: int, bn: BNSettings) -> None:
        super().__init__(
            DilConv(c, kernel, stride, padding, 1, bn),
            DilConv(c, kernel, 1, padding, 1, bn),
        )


class Conv1x5Then5x1(nn.Sequential):
    """ReLU, a 1x5 then a 5x1 convolution, batch norm (a factorised 5x5 receptive field)."""

    def __init__(self, c: int, stride: int, bn: BNSettings) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 5), stride=(1, stride), padding=(0, 2), bias=False),
            nn.Conv2d(c, c, (5, 1), stride=(stride, 1), padding=(2, 0), bias=False),
            batch_norm(c, bn),
        )


class Dense(nn.Sequential):
    """An activation, a 1x1 convolution, batch norm: on tables (``(N, C, 1, 1)``
    tensors) a fully connected layer with a choice of activation."""

    def __init__(self, c: int, stride: int, activation: nn.Module, bn: BNSettings) -> None:
        super().__init__(activation, nn.Conv2d(c, c, 1, stride=stride, bias=False), batch_norm(c, bn))


class Bottleneck(nn.Sequential):
    """Two fully connected layers through ``c // 4`` units (ReLU before each, batch norm
    after each): a deeper edge with half the parameters of one :class:`Dense` layer."""

    def __init__(self, c: int, stride: int, bn: BNSettings) -> None:
        hidden = max(1, c // 4)
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, hidden, 1, stride=stride, bias=False),
            batch_norm(hidden, bn),
            nn.ReLU(inplace=False),
            nn.Conv2d(hidden, c, 1, bias=False),
            batch_norm(c, bn),
        )


class GatedLinear(nn.Module):
    """A gated linear unit: ``a * sigmoid(b)`` of a 1x1 convolution to ``2c`` channels,
    then batch norm (multiplicative feature interactions, as in tabular networks)."""

    def __init__(self, c: int, stride: int, bn: BNSettings) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 2 * c, 1, stride=stride, bias=False)
        self.bn = batch_norm(c, bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(nn.functional.glu(self.conv(x), dim=1))


class Zero(nn.Module):
    """The "none" operation: zeros of the output shape (the edge is absent)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x * 0.0
        return x[:, :, :: self.stride, :: self.stride] * 0.0


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convolutions on offset grids, concatenated.

    Used for a stride-2 skip connection and to bring the output of the cell before a
    reduction cell to the next resolution. Odd sizes are padded first, so the result is
    ``ceil(H / 2)`` like a stride-2 convolution with padding. On a 1x1 input (a table row)
    both convolutions read the input itself.
    """

    def __init__(self, c_in: int, c_out: int, bn: BNSettings) -> None:
        super().__init__()
        if c_out < 2:
            raise InputError(f"The 'c_out' parameter of FactorizedReduce must be >= 2; got {c_out!r}.")
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = batch_norm(c_out, bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        h, w = x.shape[-2:]
        if h == w == 1:  # a table row: no grid to offset, both halves see the input
            return self.bn(torch.cat([self.conv_a(x), self.conv_b(x)], dim=1))
        padded = nn.functional.pad(x, (0, 1 + w % 2, 0, 1 + h % 2))
        shifted = padded[:, :, 1 : h + 1 + h % 2, 1 : w + 1 + w % 2]
        out = torch.cat([self.conv_a(padded[:, :, : h + h % 2, : w + w % 2]), self.conv_b(shifted)], dim=1)
        return self.bn(out)


def _pool(kind: str, c: int, stride: int, bn: BNSettings, with_bn: bool) -> nn.Module:
    pool: nn.Module
    if kind == "max":
        pool = nn.MaxPool2d(3, stride=stride, padding=1)
    else:
        pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    return nn.Sequential(pool, batch_norm(c, bn)) if with_bn else pool


def _skip(c: int, stride: int, bn: BNSettings) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c, bn)


OpFactory = Callable[[int, int, BNSettings, bool], nn.Module]
"""``factory(channels, stride, bn, in_search) -> module``; ``in_search`` adds the batch
norm DARTS puts after a pooling operation inside a mixed edge."""

OPERATIONS: dict[str, OpFactory] = {
    "none": lambda c, s, bn, search: Zero(s),
    "max_pool_3x3": lambda c, s, bn, search: _pool("max", c, s, bn, search),
    "avg_pool_3x3": lambda c, s, bn, search: _pool("avg", c, s, bn, search),
    "skip_connect": lambda c, s, bn, search: _skip(c, s, bn),
    "sep_conv_3x3": lambda c, s, bn, search: SepConv(c, 3, s, 1, bn),
    "sep_conv_5x5": lambda c, s, bn, search: SepConv(c, 5, s, 2, bn),
    "dil_conv_3x3": lambda c, s, bn, search: DilConv(c, 3, s, 2, 2, bn),
    "dil_conv_5x5": lambda c, s, bn, search: DilConv(c, 5, s, 4, 2, bn),
    "conv_3x3": lambda c, s, bn, search: ReLUConvBN(c, c, 3, s, 1, bn),
    "conv_1x5_5x1": lambda c, s, bn, search: Conv1x5Then5x1(c, s, bn),
    "dense_relu": lambda c, s, bn, search: Dense(c, s, nn.ReLU(inplace=False), bn),
    "dense_tanh": lambda c, s, bn, search: Dense(c, s, nn.Tanh(), bn),
    "dense_silu": lambda c, s, bn, search: Dense(c, s, nn.SiLU(inplace=False), bn),
    "bottleneck": lambda c, s, bn, search: Bottleneck(c, s, bn),
    "glu": lambda c, s, bn, search: GatedLinear(c, s, bn),
}
"""Every operation an edge can hold, by name."""

DARTS_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
"""The 8 operations of DARTS (Liu et al. 2019)."""

FEWSHOT_OPS: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "dil_conv_3x3",
    "conv_3x3",
    "conv_1x5_5x1",
)
"""The 7-operation few-shot set of MetaNAS: no "none" and no 5x5 convolutions."""

TABULAR_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "dense_relu",
    "dense_tanh",
    "dense_silu",
    "bottleneck",
    "glu",
)
"""Operations for tables, whose rows enter as ``(features, 1, 1)`` "images": fully
connected layers with different activations, a narrow two-layer bottleneck, a gated
linear unit, the identity and no edge. (Pooling and spatial convolutions are void or
wasteful on a 1x1 grid.)"""


def validate_ops(ops: object, owner: str) -> tuple[str, ...]:
    """``ops`` as a tuple of known, distinct operation names, or an :class:`InputError`."""
    if isinstance(ops, str) or not hasattr(ops, "__iter__"):
        raise InputError(f"The 'ops' parameter of {owner} must be a sequence of operation names; got {ops!r}.")
    names = tuple(ops)  # type: ignore[call-overload]
    unknown = [n for n in names if n not in OPERATIONS]
    if unknown:
        raise InputError(
            f"The 'ops' parameter of {owner} has unknown operations {unknown!r}; known: {', '.join(OPERATIONS)}."
        )
    if len(set(names)) != len(names) or not names or names == ("none",):
        raise InputError(
            f"The 'ops' parameter of {owner} must name distinct operations, at least one besides 'none'; got {names!r}."
        )
    return names


def make_op(name: str, channels: int, stride: int, bn: BNSettings, *, in_search: bool = False) -> nn.Module:
    """Build operation ``name`` for ``channels`` channels and the given stride."""
    if name not in OPERATIONS:
        raise InputError(f"Unknown operation {name!r}; known: {', '.join(OPERATIONS)}.")
    return OPERATIONS[name](channels, stride, bn, in_search)
