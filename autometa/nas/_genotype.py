"""Genotypes: the discrete cell architectures a search ends with, their JSON form, and
the discretization of continuous architecture weights into one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from autometa.exceptions import InputError
from autometa.nas._ops import OPERATIONS

__all__ = ["Genotype", "discretize", "edge_count"]

Edge = tuple[str, int]
"""``(operation name, input index)``; inputs 0 and 1 are the cell's two inputs, ``2 + j``
is intermediate node ``j``."""


def edge_count(n_nodes: int) -> int:
    """Edges of a search cell with ``n_nodes`` intermediate nodes (node ``i`` has ``2 + i`` inputs)."""
    return sum(2 + i for i in range(n_nodes))


def _check_cell(edges: Sequence[Edge], name: str, inputs_per_node: int) -> tuple[Edge, ...]:
    cell: list[Edge] = []
    for item in edges:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InputError(f"The '{name}' cell of a Genotype must hold (operation, input) pairs; got {item!r}.")
        op, source = item
        if op not in OPERATIONS or op == "none":
            raise InputError(f"The '{name}' cell of a Genotype has an unknown or 'none' operation {op!r}.")
        if isinstance(source, bool) or not isinstance(source, int):
            raise InputError(f"The '{name}' cell of a Genotype must give integer inputs; got {source!r}.")
        cell.append((str(op), int(source)))
    if not cell or len(cell) % inputs_per_node:
        raise InputError(
            f"The '{name}' cell of a Genotype must hold {inputs_per_node} edges per node; got {len(cell)} edges."
        )
    for position, (_, source) in enumerate(cell):
        node = position // inputs_per_node
        if not 0 <= source < 2 + node:
            raise InputError(
                f"The '{name}' cell of a Genotype feeds node {node} from input {source}; it must be in [0, {1 + node}]."
            )
    return tuple(cell)


@dataclass(frozen=True)
class Genotype:
    """A discrete cell architecture: a normal and a reduction cell.

    Parameters
    ----------
    normal, reduce : sequence of (str, int)
        For every intermediate node in order, its ``inputs_per_node`` incoming edges as
        ``(operation, input)``; inputs 0 and 1 are the outputs of the two previous cells,
        ``2 + j`` is intermediate node ``j``. All intermediate nodes are concatenated
        to form the cell's output.
    inputs_per_node : int
        Incoming edges kept per node (2 in DARTS).
    """

    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]
    inputs_per_node: int = 2
    _n_nodes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        k = self.inputs_per_node
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"The 'inputs_per_node' parameter of Genotype must be an int >= 1; got {k!r}.")
        object.__setattr__(self, "normal", _check_cell(self.normal, "normal", k))
        object.__setattr__(self, "reduce", _check_cell(self.reduce, "reduce", k))
        if len(self.normal) != len(self.reduce):
            raise InputError(
                "The 'normal' and 'reduce' cells of a Genotype must have as many nodes; got "
                f"{len(self.normal) // k} and {len(self.reduce) // k}."
            )
        object.__setattr__(self, "_n_nodes", len(self.normal) // k)

    @property
    def n_nodes(self) -> int:
        """Intermediate nodes per cell."""
        return self._n_nodes

    def node_edges(self, cell: str) -> list[tuple[Edge, ...]]:
        """The incoming edges of each intermediate node of ``cell`` ("normal" or "reduce")."""
        edges = self.normal if cell == "normal" else self.reduce
        k = self.inputs_per_node
        return [edges[i * k : (i + 1) * k] for i in range(self.n_nodes)]

    def skip_share(self, cell: str = "normal") -> float:
        """Fraction of the edges of ``cell`` that are skip connections."""
        edges = self.normal if cell == "normal" else self.reduce
        return sum(op == "skip_connect" for op, _ in edges) / len(edges)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "autometa.nas.Genotype/1",
            "inputs_per_node": self.inputs_per_node,
            "normal": [list(e) for e in self.normal],
            "reduce": [list(e) for e in self.reduce],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        if not isinstance(data, dict) or "normal" not in data or "reduce" not in data:
            raise InputError(f"A genotype must be a mapping with 'normal' and 'reduce' keys; got {data!r:.200}.")
        return cls(
            normal=tuple(tuple(e) for e in data["normal"]),  # type: ignore[misc]
            reduce=tuple(tuple(e) for e in data["reduce"]),  # type: ignore[misc]
            inputs_per_node=int(data.get("inputs_per_node", 2)),
        )

    @classmethod
    def random(cls, ops: Sequence[str], n_nodes: int, seed: int = 0) -> Genotype:
        """A genotype drawn uniformly (the random-search baseline of NAS): for every node of
        the normal, then the reduction cell, 2 distinct inputs and an operation of ``ops``
        (``"none"`` excluded) per input, from a generator seeded with ``seed``."""
        choices = [op for op in ops if op != "none"]
        if not choices or isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or n_nodes < 1:
            raise InputError(f"Genotype.random needs an operation besides 'none' and n_nodes >= 1; got {list(ops)!r}, "
                             f"{n_nodes!r}.")
        gen = torch.Generator().manual_seed(seed)

        def cell() -> tuple[Edge, ...]:
            edges: list[Edge] = []
            for node in range(n_nodes):
                inputs = torch.randperm(2 + node, generator=gen)[:2].sort().values.tolist()
                edges += [(choices[int(torch.randint(len(choices), (1,), generator=gen))], int(j)) for j in inputs]
            return tuple(edges)

        normal = cell()
        return cls(normal=normal, reduce=cell())

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"A genotype must be JSON; parsing failed: {error}.") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write the genotype as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        """Read a genotype written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"The genotype file '{path}' does not exist.")
        return cls.from_json(path.read_text())


def _discretize_cell(weights: torch.Tensor, ops: Sequence[str], n_nodes: int, k: int) -> tuple[Edge, ...]:
    usable = [i for i, op in enumerate(ops) if op != "none"]
    cell: list[Edge] = []
    start = 0
    for node in range(n_nodes):
        n_in = 2 + node
        block = weights[start : start + n_in][:, usable]
        strength, best = block.max(dim=1)
        keep = sorted(torch.argsort(strength, descending=True, stable=True)[: min(k, n_in)].tolist())
        cell.extend((ops[usable[int(best[j])]], int(j)) for j in keep)
        start += n_in
    return tuple(cell)


def discretize(
    normal_weights: torch.Tensor,
    reduce_weights: torch.Tensor,
    ops: Sequence[str],
    *,
    inputs_per_node: int = 2,
) -> Genotype:
    """The genotype of continuous architecture weights, as in DARTS.

    Each intermediate node keeps its ``inputs_per_node`` strongest incoming edges, an
    edge's strength being the largest weight of an operation other than "none"; a kept
    edge holds that operation.

    Parameters
    ----------
    normal_weights, reduce_weights : torch.Tensor
        Shape ``(edges, len(ops))``: the (softmax) weights of each edge's operations, in
        the edge order of a search cell.
    ops : sequence of str
        The operation names of the weights' columns.
    inputs_per_node : int
    """
    if inputs_per_node not in (1, 2):  # the first node has only two inputs
        raise InputError(f"The 'inputs_per_node' parameter of discretize must be 1 or 2; got {inputs_per_node!r}.")
    n_edges, n_ops = normal_weights.shape
    if n_ops != len(ops) or reduce_weights.shape != normal_weights.shape:
        raise InputError(
            f"Architecture weights must have shape (edges, {len(ops)}) for both cells; got "
            f"{tuple(normal_weights.shape)} and {tuple(reduce_weights.shape)}."
        )
    n_nodes = 0
    while edge_count(n_nodes) < n_edges:
        n_nodes += 1
    if n_edges == 0 or edge_count(n_nodes) != n_edges:
        raise InputError(f"Architecture weights must have 2, 5, 9, 14, ... rows (2 + i edges into node i); got {n_edges}.")
    normal = _discretize_cell(normal_weights.detach().cpu(), ops, n_nodes, inputs_per_node)
    reduce = _discretize_cell(reduce_weights.detach().cpu(), ops, n_nodes, inputs_per_node)
    return Genotype(normal, reduce, inputs_per_node)
