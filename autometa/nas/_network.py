"""Cells and networks: the continuous search network (mixed edges, architecture
parameters) and the discrete network a genotype describes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from autometa.exceptions import InputError
from autometa.nas._genotype import Genotype, discretize, edge_count
from autometa.nas._ops import DARTS_OPS, BNSettings, FactorizedReduce, ReLUConvBN, make_op, validate_ops

__all__ = ["GenotypeNetwork", "MixedEdge", "SearchNetwork", "count_parameters", "reduction_cells"]

ARCH_NAMES = ("alpha_normal", "alpha_reduce")
"""Names of the architecture parameters of a :class:`SearchNetwork`."""


def reduction_cells(n_cells: int) -> tuple[int, ...]:
    """Positions of the reduction cells: at 1/3 and 2/3 of the depth, as in DARTS (one in
    the middle of a 2-cell network, none in a 1-cell network)."""
    if n_cells >= 3:
        return (n_cells // 3, 2 * n_cells // 3)
    return (1,) if n_cells == 2 else ()


def _check_int(value: object, name: str, owner: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"The '{name}' parameter of {owner} must be an int >= {low}; got {value!r}.")
    return value


def _check_stem_kernel(value: object, owner: str) -> None:
    if value not in (1, 3) or isinstance(value, bool):
        raise InputError(f"The 'stem_kernel' parameter of {owner} must be 1 (tables) or 3 (images); got {value!r}.")


class MixedEdge(nn.Module):
    """A DARTS edge: the weighted sum of every candidate operation applied to its input."""

    def __init__(self, channels: int, stride: int, ops: Sequence[str], bn: BNSettings) -> None:
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels, stride, bn, in_search=True) for name in ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))  # type: ignore[return-value]


class _Preprocess(nn.Module):
    """The two 1x1 (or factorised-reduce) layers bringing a cell's inputs to its width."""

    def __init__(self, c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool, bn: BNSettings) -> None:
        super().__init__()
        self.pre0: nn.Module = (
            FactorizedReduce(c_prev_prev, c, bn) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0, bn)
        )
        self.pre1 = ReLUConvBN(c_prev, c, 1, 1, 0, bn)


class SearchCell(_Preprocess):
    """A cell of the search network: 2 inputs, ``n_nodes`` intermediate nodes, a mixed
    edge from every earlier state into every node, the nodes concatenated as output."""

    def __init__(
        self,
        n_nodes: int,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        ops: Sequence[str],
        bn: BNSettings,
    ) -> None:
        super().__init__(c_prev_prev, c_prev, c, reduction_prev, bn)
        self.n_nodes = n_nodes
        self.reduction = reduction
        self.edges = nn.ModuleList()
        self.strides: list[int] = []
        for node in range(n_nodes):
            for source in range(2 + node):
                stride = 2 if reduction and source < 2 else 1
                self.edges.append(MixedEdge(c, stride, ops, bn))
                self.strides.append(stride)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor, aux_skip: float) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(self.n_nodes):
            total: torch.Tensor | int = 0
            for j, h in enumerate(states):
                out = self.edges[offset + j](h, weights[offset + j])
                if aux_skip and self.strides[offset + j] == 1:
                    out = out + aux_skip * h
                total = total + out
            offset += len(states)
            states.append(total)  # type: ignore[arg-type]
        return torch.cat(states[2:], dim=1)


class GenotypeCell(_Preprocess):
    """A discrete cell: each intermediate node sums the operations a genotype assigns it."""

    def __init__(
        self,
        genotype: Genotype,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        bn: BNSettings,
        pool_bn: bool,
    ) -> None:
        super().__init__(c_prev_prev, c_prev, c, reduction_prev, bn)
        self.reduction = reduction
        self.nodes = genotype.node_edges("reduce" if reduction else "normal")
        self.ops = nn.ModuleList()
        for edges in self.nodes:
            for name, source in edges:
                stride = 2 if reduction and source < 2 else 1
                self.ops.append(make_op(name, c, stride, bn, in_search=pool_bn))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        i = 0
        for edges in self.nodes:
            total: torch.Tensor | int = 0
            for _, source in edges:
                out = self.ops[i](states[source])
                if drop_prob > 0 and self.training and not isinstance(self.ops[i], nn.Identity):
                    keep = torch.bernoulli(torch.full((out.shape[0], 1, 1, 1), 1 - drop_prob, device=out.device))
                    out = out / (1 - drop_prob) * keep
                total = total + out
                i += 1
            states.append(total)  # type: ignore[arg-type]
        return torch.cat(states[2:], dim=1)


class _Backbone(nn.Module):
    """Stem, a stack of cells with the DARTS channel plan, global pooling, a linear head."""

    cells: nn.ModuleList

    def _build(
        self,
        in_channels: int,
        n_classes: int,
        channels: int,
        n_cells: int,
        n_nodes: int,
        stem_multiplier: int,
        bn: BNSettings,
        make_cell,  # noqa: ANN001 - (c_pp, c_p, c, reduction, reduction_prev) -> cell
        stem_kernel: int = 3,
    ) -> None:
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, stem_kernel, padding=stem_kernel // 2, bias=False),
            nn.BatchNorm2d(c_stem, track_running_stats=bn.track_running_stats),
        )
        c_pp, c_p, c = c_stem, c_stem, channels
        reductions = reduction_cells(n_cells)
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(n_cells):
            reduction = i in reductions
            if reduction:
                c *= 2
            self.cells.append(make_cell(c_pp, c_p, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, n_nodes * c
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, n_classes)

    def _head(self, s: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(s).flatten(1))


class SearchNetwork(_Backbone):
    """The DARTS search network: stacked search cells sharing two architecture parameters.

    ``alpha_normal`` and ``alpha_reduce`` (shape ``(edges, len(ops))``) are the
    architecture parameters of all normal and all reduction cells; an edge's operation
    weights are ``softmax(alpha / temperature)``. Every other parameter is a network
    weight (:meth:`weight_parameters`).

    Parameters
    ----------
    in_channels, n_classes : int
        Image channels and classes.
    channels : int
        Width of the first cells (doubled at each reduction cell).
    n_cells : int
        Cells in the stack; reduction cells sit at 1/3 and 2/3 of the depth.
    n_nodes : int
        Intermediate nodes per cell.
    ops : sequence of str
        The candidate operations of every edge (:data:`DARTS_OPS` by default).
    stem_multiplier : int
        The stem convolution has ``stem_multiplier * channels`` outputs.
    stem_kernel : int
        Side of the stem convolution: 3 for images, 1 for tables (rows as
        ``(features, 1, 1)`` tensors, where it is a fully connected layer).
    bn : BNSettings, optional
        Default: not affine (as in DARTS), running statistics tracked.
    seed : int or None
        Seed of the initialisation (the global RNG is left as it was); None uses it.

    Attributes
    ----------
    temperature : float
        Softmax temperature of the architecture weights (1 by default; anneal it with
        :class:`DARTSSearch` or MetaNAS).
    aux_skip : float
        Coefficient of the DARTS- auxiliary skip connection added to every stride-1
        edge (0 disables it).
    hard : bool
        Run the discretized architecture (False by default): the forward pass keeps
        only the edges and operations of :meth:`genotype`, each with weight 1, so its
        output is the pruned network's, while the architecture gradient flows through
        the softmax weights (straight-through). MetaNAS uses it to meta-train the very
        network that is pruned at meta-test time.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        *,
        channels: int = 16,
        n_cells: int = 8,
        n_nodes: int = 4,
        ops: Sequence[str] = DARTS_OPS,
        stem_multiplier: int = 3,
        stem_kernel: int = 3,
        bn: BNSettings | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        owner = "SearchNetwork"
        _check_stem_kernel(stem_kernel, owner)
        for name, value, low in (
            ("in_channels", in_channels, 1),
            ("n_classes", n_classes, 2),
            ("channels", channels, 2),
            ("n_cells", n_cells, 1),
            ("n_nodes", n_nodes, 1),
            ("stem_multiplier", stem_multiplier, 1),
        ):
            _check_int(value, name, owner, low)
        self.ops = validate_ops(ops, owner)
        self.bn = bn if bn is not None else BNSettings(affine=False)
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "n_classes": n_classes,
            "channels": channels,
            "n_cells": n_cells,
            "n_nodes": n_nodes,
            "ops": list(self.ops),
            "stem_multiplier": stem_multiplier,
            "bn": {"affine": self.bn.affine, "track_running_stats": self.bn.track_running_stats},
        }
        if stem_kernel != 3:  # only then: configs (and the checkpoints keyed by them) of image networks stay as they were
            self.config["stem_kernel"] = stem_kernel
        self.n_nodes = n_nodes
        self.temperature = 1.0
        self.aux_skip = 0.0
        self.hard = False
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self._build(
                in_channels,
                n_classes,
                channels,
                n_cells,
                n_nodes,
                stem_multiplier,
                self.bn,
                lambda cpp, cp, c, red, red_prev: SearchCell(n_nodes, cpp, cp, c, red, red_prev, self.ops, self.bn),
                stem_kernel,
            )
            shape = (edge_count(n_nodes), len(self.ops))
            self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape))
            self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape))

    # --- parameters ---------------------------------------------------------------------

    def arch_parameters(self) -> list[nn.Parameter]:
        """``[alpha_normal, alpha_reduce]``."""
        return [self.alpha_normal, self.alpha_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the architecture parameters."""
        return [p for name, p in self.named_parameters() if name not in ARCH_NAMES]

    def named_weight_parameters(self) -> dict[str, nn.Parameter]:
        return {name: p for name, p in self.named_parameters() if name not in ARCH_NAMES}

    def edge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The operation weights of the normal and the reduction edges, ``(edges, ops)``,
        each row summing to one."""
        return (
            torch.softmax(self.alpha_normal / self.temperature, dim=-1),
            torch.softmax(self.alpha_reduce / self.temperature, dim=-1),
        )

    def hard_edge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The straight-through weights of the current genotype: 1 on each kept edge's
        kept operation and 0 elsewhere in value, the softmax weights' gradient."""
        soft = self.edge_weights()
        genotype = discretize(*soft, self.ops)
        hard = []
        for weights, cell in zip(soft, (genotype.normal, genotype.reduce), strict=True):
            mask = torch.zeros_like(weights)
            for i, (name, source) in enumerate(cell):
                mask[edge_count(i // genotype.inputs_per_node) + source, self.ops.index(name)] = 1.0
            hard.append(mask + weights - weights.detach())
        return hard[0], hard[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal, w_reduce = self.hard_edge_weights() if self.hard else self.edge_weights()
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, weights, self.aux_skip)
        return self._head(s1)

    # --- discretization ------------------------------------------------------------------

    def genotype(self) -> Genotype:
        """The discrete architecture of the current architecture weights (top 2 inputs per node)."""
        with torch.no_grad():
            w_normal, w_reduce = self.edge_weights()
        return discretize(w_normal, w_reduce, self.ops)

    def skip_share(self) -> float:
        """Share of skip connections among the edges of the current normal-cell genotype."""
        return self.genotype().skip_share("normal") if "skip_connect" in self.ops else 0.0

    def prune(self, genotype: Genotype | None = None) -> GenotypeNetwork:
        """The discrete network of ``genotype`` (the current one by default) with the weights
        this network holds for the kept operations; nothing is retrained.

        The kept operations enter with weight 1, so prune after the architecture weights
        have become nearly one-hot (a low temperature), as MetaNAS does.
        """
        genotype = genotype if genotype is not None else self.genotype()
        if genotype.n_nodes != self.n_nodes:
            raise InputError(f"The genotype has {genotype.n_nodes} nodes per cell; this network has {self.n_nodes}.")
        cfg: dict[str, Any] = self.config
        net = GenotypeNetwork(
            genotype,
            int(cfg["in_channels"]),
            int(cfg["n_classes"]),
            channels=int(cfg["channels"]),
            n_cells=int(cfg["n_cells"]),
            stem_multiplier=int(cfg["stem_multiplier"]),
            stem_kernel=int(cfg.get("stem_kernel", 3)),
            bn=self.bn,
            pool_bn=True,
            seed=None,
        ).to(self.alpha_normal.device)
        net.stem.load_state_dict(self.stem.state_dict())
        net.classifier.load_state_dict(self.classifier.state_dict())
        for search_module, module in zip(self.cells, net.cells, strict=True):
            search_cell, cell = cast(SearchCell, search_module), cast(GenotypeCell, module)
            cell.pre0.load_state_dict(search_cell.pre0.state_dict())
            cell.pre1.load_state_dict(search_cell.pre1.state_dict())
            i = 0
            for node, edges in enumerate(cell.nodes):
                offset = edge_count(node)
                for name, source in edges:
                    mixed = cast(MixedEdge, search_cell.edges[offset + source])
                    cell.ops[i].load_state_dict(mixed.ops[self.ops.index(name)].state_dict())
                    i += 1
        return net


class GenotypeNetwork(_Backbone):
    """The network of a genotype: stacked discrete cells, trained from scratch (or pruned
    from a search network).

    Parameters
    ----------
    genotype : Genotype
    in_channels, n_classes, channels, n_cells, stem_multiplier, stem_kernel : int
        As in :class:`SearchNetwork`.
    bn : BNSettings, optional
        Default: affine, running statistics tracked.
    pool_bn : bool
        Put a batch norm after pooling operations, as inside a search network's mixed
        edges (needed to take over a search network's weights, see
        :meth:`SearchNetwork.prune`).
    drop_path : float
        Probability of dropping an operation's output per example during training.
    seed : int or None
    """

    def __init__(
        self,
        genotype: Genotype,
        in_channels: int,
        n_classes: int,
        *,
        channels: int = 16,
        n_cells: int = 8,
        stem_multiplier: int = 3,
        stem_kernel: int = 3,
        bn: BNSettings | None = None,
        pool_bn: bool = False,
        drop_path: float = 0.0,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        owner = "GenotypeNetwork"
        _check_stem_kernel(stem_kernel, owner)
        if not isinstance(genotype, Genotype):
            raise InputError(f"The 'genotype' parameter of {owner} must be a Genotype; got {type(genotype).__name__}.")
        for name, value, low in (
            ("in_channels", in_channels, 1),
            ("n_classes", n_classes, 2),
            ("channels", channels, 2),
            ("n_cells", n_cells, 1),
            ("stem_multiplier", stem_multiplier, 1),
        ):
            _check_int(value, name, owner, low)
        if not 0.0 <= drop_path < 1.0:
            raise InputError(f"The 'drop_path' parameter of {owner} must be in [0, 1); got {drop_path!r}.")
        self.genotype = genotype
        self.bn = bn if bn is not None else BNSettings()
        self.drop_path = drop_path
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self._build(
                in_channels,
                n_classes,
                channels,
                n_cells,
                genotype.n_nodes,
                stem_multiplier,
                self.bn,
                lambda cpp, cp, c, red, red_prev: GenotypeCell(genotype, cpp, cp, c, red, red_prev, self.bn, pool_bn),
                stem_kernel,
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_path)
        return self._head(s1)


def count_parameters(module: nn.Module, *, exclude: Sequence[str] = ARCH_NAMES) -> int:
    """Number of trainable scalars of ``module`` (architecture parameters excluded)."""
    return sum(p.numel() for name, p in module.named_parameters() if name not in exclude)
