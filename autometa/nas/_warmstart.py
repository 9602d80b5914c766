"""Warm-started DARTS: a store of searched architectures described by their tasks, and the
starting point of a new search taken from the most similar stored task (Grobelnik and
Vanschoren 2022).

A task is described by a vector of named numbers: for images an embedding of the task
(:func:`image_task_embedding`), for tables OpenML meta-features
(:func:`table_descriptor`). Distances are Euclidean over the names two descriptions share,
each name z-scored over the store.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autometa.exceptions import InputError
from autometa.nas._data import ImageData
from autometa.nas._genotype import Genotype
from autometa.nas._search import SearchResult

__all__ = [
    "ArchitectureRecord",
    "ArchitectureStore",
    "WarmStart",
    "image_task_embedding",
    "table_descriptor",
]

Descriptor = dict[str, float]
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _as_descriptor(value: Mapping[str, float] | Sequence[float] | torch.Tensor, owner: str) -> Descriptor:
    if isinstance(value, torch.Tensor):
        value = value.detach().flatten().tolist()
    if isinstance(value, Mapping):
        out = {str(k): float(v) for k, v in value.items()}
    elif isinstance(value, Sequence) and not isinstance(value, str):
        out = {f"e{i}": float(v) for i, v in enumerate(value)}
    else:
        raise InputError(f"The 'descriptor' of {owner} must be a mapping or a sequence of numbers; got {type(value).__name__}.")
    if not any(math.isfinite(v) for v in out.values()):
        raise InputError(f"The 'descriptor' of {owner} has no finite value.")
    return out


@torch.no_grad()
def image_task_embedding(data: ImageData, *, dim: int = 32, size: int = 16, seed: int = 0) -> torch.Tensor:
    """A fixed-length description of an image classification task.

    Images are brought to one channel and ``size x size`` pixels and passed through a
    fixed, seeded random convolutional feature map (two 3x3 convolutions with ReLU,
    global average pooling, ``dim`` features). The embedding is the mean and the standard
    deviation of the features over the task's images, the mean distance between class
    means (how separable the classes look) and the log number of classes.

    Parameters
    ----------
    data : ImageData
    dim : int
        Features of the random map.
    size : int
        Side of the resized images.
    seed : int
        Seed of the random map: compare only embeddings made with the same seed.

    Returns
    -------
    torch.Tensor
        Shape ``(2 * dim + 2,)``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(1, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
    x = data.x.float().cpu().mean(dim=1, keepdim=True)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x - x.mean()) / (x.std() + 1e-8)
    features = torch.cat([net(x[i : i + 512]) for i in range(0, len(x), 512)])
    y = data.y.cpu()
    classes = y.unique()
    means = torch.stack([features[y == c].mean(dim=0) for c in classes])
    spread = torch.pdist(means).mean() if len(classes) > 1 else torch.tensor(0.0)
    return torch.cat([features.mean(dim=0), features.std(dim=0), spread.view(1), torch.tensor([math.log(len(classes))])])


def table_descriptor(task: Any, *, groups: Sequence[str] = ("simple", "statistical", "info_theory")) -> Descriptor:
    """OpenML meta-features of a tabular :class:`~autometa.task.Task` (see
    :func:`autometa.metafeatures.extract`), for describing tabular tasks in the store."""
    from autometa.metafeatures import extract

    return {k: float(v) for k, v in extract(task, groups=groups).items()}


@dataclass(frozen=True)
class ArchitectureRecord:
    """One searched architecture and the task it was searched for.

    Attributes
    ----------
    name : str
        Unique within a store (letters, digits, ``_ . -``).
    descriptor : dict of str to float
        The task's description.
    ops : tuple of str
        Columns of the architecture parameters.
    alpha_normal, alpha_reduce : torch.Tensor
        The searched architecture parameters, ``(edges, ops)``.
    genotype : Genotype
    valid_accuracy : float or None
        The search's final validation accuracy.
    has_weights : bool
        The store also holds the search network's weights.
    """

    name: str
    descriptor: Descriptor
    ops: tuple[str, ...]
    alpha_normal: torch.Tensor
    alpha_reduce: torch.Tensor
    genotype: Genotype
    valid_accuracy: float | None = None
    has_weights: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "descriptor": self.descriptor,
            "ops": list(self.ops),
            "alpha_normal": self.alpha_normal.tolist(),
            "alpha_reduce": self.alpha_reduce.tolist(),
            "genotype": self.genotype.to_dict(),
            "valid_accuracy": self.valid_accuracy,
            "has_weights": self.has_weights,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchitectureRecord:
        return cls(
            name=d["name"],
            descriptor={k: float(v) for k, v in d["descriptor"].items()},
            ops=tuple(d["ops"]),
            alpha_normal=torch.tensor(d["alpha_normal"]),
            alpha_reduce=torch.tensor(d["alpha_reduce"]),
            genotype=Genotype.from_dict(d["genotype"]),
            valid_accuracy=d.get("valid_accuracy"),
            has_weights=bool(d.get("has_weights", False)),
        )


@dataclass(frozen=True)
class WarmStart:
    """The starting point of a warm-started search.

    Attributes
    ----------
    alphas : (torch.Tensor, torch.Tensor)
        ``(alpha_normal, alpha_reduce)`` for :meth:`DARTSSearch.search`'s ``init_alphas``.
    weights : dict of str to torch.Tensor or None
        The nearest task's search-network weights without its classifier
        (``init_weights``), when stored and asked for.
    sources : tuple of (str, float)
        The stored tasks used, with their distances.
    """

    alphas: tuple[torch.Tensor, torch.Tensor]
    weights: dict[str, torch.Tensor] | None
    sources: tuple[tuple[str, float], ...]


class ArchitectureStore:
    """Searched architectures with their task descriptions, in memory or in a directory.

    A directory store keeps ``index.json`` (every record, human-readable) and
    ``weights/<name>.pt`` for records saved with weights; it is read when opened and
    written on every :meth:`add`. Not safe for concurrent writers.

    Parameters
    ----------
    path : path, optional
        Directory of the store (created on the first :meth:`add`); None keeps it in memory.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._records: dict[str, ArchitectureRecord] = {}
        self._weights: dict[str, dict[str, torch.Tensor]] = {}
        if self.path is not None and (self.path / "index.json").is_file():
            try:
                data = json.loads((self.path / "index.json").read_text())
                for d in data["records"]:
                    record = ArchitectureRecord.from_dict(d)
                    self._records[record.name] = record
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise InputError(f"'{self.path / 'index.json'}' is not an architecture store index: {error}.") from None

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> list[ArchitectureRecord]:
        return list(self._records.values())

    def add(
        self,
        name: str,
        descriptor: Mapping[str, float] | Sequence[float] | torch.Tensor,
        result: SearchResult,
        *,
        weights: Mapping[str, torch.Tensor] | None = None,
        replace: bool = False,
    ) -> ArchitectureRecord:
        """Store the result of a search for the task ``descriptor`` describes.

        Parameters
        ----------
        name : str
        descriptor : mapping, sequence or tensor of numbers
        result : SearchResult
        weights : mapping, optional
            The search network's ``state_dict`` (for warm starts that reuse weights).
        replace : bool
            Overwrite a record of the same name instead of refusing.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise InputError(f"The 'name' of an architecture record must match {_NAME.pattern}; got {name!r}.")
        if name in self._records and not replace:
            raise InputError(f"The store already holds an architecture named {name!r}; pass replace=True.")
        if not isinstance(result, SearchResult):
            raise InputError(f"The 'result' parameter of ArchitectureStore.add must be a SearchResult; got {type(result).__name__}.")
        history = result.history
        record = ArchitectureRecord(
            name=name,
            descriptor=_as_descriptor(descriptor, "ArchitectureStore.add"),
            ops=tuple(result.ops),
            alpha_normal=result.alpha_normal.detach().cpu().clone(),
            alpha_reduce=result.alpha_reduce.detach().cpu().clone(),
            genotype=result.genotype,
            valid_accuracy=history[-1].valid_accuracy if history else None,
            has_weights=weights is not None,
        )
        self._records[name] = record
        if weights is not None:
            self._weights[name] = {k: v.detach().cpu().clone() for k, v in weights.items()}
        self._save(name)
        return record

    def _save(self, name: str) -> None:
        if self.path is None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if name in self._weights:
            (self.path / "weights").mkdir(exist_ok=True)
            torch.save(self._weights[name], self.path / "weights" / f"{name}.pt")
        index = {"format": "autometa.nas.ArchitectureStore/1", "records": [r.to_dict() for r in self.records]}
        tmp = self.path / "index.json.tmp"
        tmp.write_text(json.dumps(index, indent=1))
        tmp.replace(self.path / "index.json")

    def weights(self, name: str) -> dict[str, torch.Tensor] | None:
        """The stored search-network weights of record ``name`` (None if not stored)."""
        if name in self._weights:
            return self._weights[name]
        if self.path is not None and self._records.get(name, None) is not None and self._records[name].has_weights:
            file = self.path / "weights" / f"{name}.pt"
            if file.is_file():
                self._weights[name] = torch.load(file, weights_only=True)
                return self._weights[name]
        return None

    def _compatible(self, ops: Sequence[str] | None, shape: tuple[int, int] | None) -> list[ArchitectureRecord]:
        return [
            r
            for r in self._records.values()
            if (ops is None or tuple(ops) == r.ops) and (shape is None or tuple(r.alpha_normal.shape) == tuple(shape))
        ]

    def nearest(
        self,
        descriptor: Mapping[str, float] | Sequence[float] | torch.Tensor,
        *,
        k: int = 1,
        ops: Sequence[str] | None = None,
        shape: tuple[int, int] | None = None,
        exclude: Sequence[str] = (),
    ) -> list[tuple[ArchitectureRecord, float]]:
        """The ``k`` stored records closest to ``descriptor``, nearest first, with distances.

        Only records with operations ``ops`` and architecture shape ``shape`` (when given)
        and not named in ``exclude`` are considered. Every descriptor name is z-scored
        with the mean and standard deviation over those records (a constant name is only
        centred); the distance is the root mean squared difference over the names both
        descriptions have finite values for.
        """
        query = _as_descriptor(descriptor, "ArchitectureStore.nearest")
        if k < 1:
            raise InputError(f"The 'k' parameter of ArchitectureStore.nearest must be >= 1; got {k!r}.")
        candidates = [r for r in self._compatible(ops, shape) if r.name not in exclude]
        if not candidates:
            return []
        scale: dict[str, tuple[float, float]] = {}
        for key in query:
            values = [r.descriptor[key] for r in candidates if math.isfinite(r.descriptor.get(key, math.nan))]
            if values:
                mean = sum(values) / len(values)
                std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
                scale[key] = (mean, std if std > 1e-12 else 1.0)
        scored = []
        for r in candidates:
            diffs = [
                ((query[key] - r.descriptor[key]) / scale[key][1]) ** 2
                for key in scale
                if math.isfinite(query[key]) and math.isfinite(r.descriptor.get(key, math.nan))
            ]
            scored.append((r, math.sqrt(sum(diffs) / len(diffs)) if diffs else math.inf))
        scored.sort(key=lambda item: item[1])
        return scored[:k]

    def warm_start(
        self,
        descriptor: Mapping[str, float] | Sequence[float] | torch.Tensor,
        *,
        ops: Sequence[str],
        shape: tuple[int, int],
        k: int = 1,
        with_weights: bool = False,
        exclude: Sequence[str] = (),
    ) -> WarmStart | None:
        """Architecture parameters to start a search for the task ``descriptor`` describes.

        ``k = 1`` takes the nearest stored task's parameters; ``k > 1`` averages the ``k``
        nearest, weighted by inverse distance. Returns None when no stored record has
        these ``ops`` and ``shape`` (``(edges, len(ops))``) and a description sharing a
        name with ``descriptor``: start cold.

        Parameters
        ----------
        descriptor
        ops : sequence of str
        shape : (int, int)
        k : int
        with_weights : bool
            Also return the nearest task's search-network weights (without the
            classifier), if stored.
        exclude : sequence of str
            Record names to leave out (for leave-one-out studies).
        """
        # A record sharing no descriptor name (an image task for a table) is not similar: skip it.
        near = [(r, d) for r, d in self.nearest(descriptor, k=k, ops=ops, shape=shape, exclude=exclude)
                if math.isfinite(d)]
        if not near:
            return None
        inverse = [1.0 / max(d, 1e-8) for _, d in near]
        total = sum(inverse)
        normal = sum(w / total * r.alpha_normal for (r, _), w in zip(near, inverse, strict=True))
        reduce = sum(w / total * r.alpha_reduce for (r, _), w in zip(near, inverse, strict=True))
        weights = None
        if with_weights:
            stored = self.weights(near[0][0].name)
            if stored is not None:
                weights = {k_: v for k_, v in stored.items() if not k_.startswith("classifier.")}
        return WarmStart(
            alphas=(normal.clone(), reduce.clone()),  # type: ignore[union-attr]
            weights=weights,
            sources=tuple((r.name, d) for r, d in near),
        )
