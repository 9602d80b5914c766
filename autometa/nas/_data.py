"""Image data for the searches: validation of ``(x, y)`` pairs, a seeded minibatch
sampler that can be checkpointed, two offline task families (class subsets of
scikit-learn's digits and of the Hershey glyph alphabets), tables as ``(features, 1, 1)``
"images", the one loader of all of them by name or path (:func:`load_data`) and the
seeded 50/25/25 split that search and training share (:func:`split_rows`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autometa.exceptions import InputError
from autometa.task import Task

__all__ = [
    "ImageData",
    "MinibatchSampler",
    "digits_data",
    "digits_task",
    "glyph_task",
    "load_data",
    "split_data",
    "split_rows",
    "table_data",
]


@dataclass(frozen=True)
class ImageData:
    """Labelled images: ``x`` of shape ``(n, channels, height, width)``, ``y`` int64 ``(n,)``
    holding class indices ``0 .. n_classes - 1``."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.ndim != 4 or not self.x.is_floating_point():
            shape = tuple(self.x.shape) if hasattr(self.x, "shape") else type(self.x).__name__
            raise InputError(f"Images 'x' must be a float tensor of shape (n, channels, height, width); got {shape}.")
        if not isinstance(self.y, torch.Tensor) or self.y.ndim != 1 or self.y.shape[0] != self.x.shape[0]:
            shape = tuple(self.y.shape) if hasattr(self.y, "shape") else type(self.y).__name__
            raise InputError(f"Labels 'y' must be a tensor of shape ({self.x.shape[0]},); got {shape}.")
        if self.y.dtype != torch.int64:
            raise InputError(f"Labels 'y' must be int64 class indices; got dtype {self.y.dtype}.")
        if len(self.y) == 0 or int(self.y.min()) < 0:
            raise InputError("Labels 'y' must be non-empty class indices >= 0.")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1

    @property
    def in_channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def stem_kernel(self) -> int:
        """1 for a table (rows as ``(features, 1, 1)``), 3 for images."""
        return 1 if tuple(self.x.shape[2:]) == (1, 1) else 3

    @staticmethod
    def split_index(n: int, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The row indices :meth:`split` gives to each part, for ``n`` rows."""
        if not 0.0 < fraction < 1.0:
            raise InputError(f"The 'fraction' parameter of ImageData.split must be in (0, 1); got {fraction!r}.")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        cut = int(round(fraction * n))
        return order[:cut], order[cut:]

    def subset(self, index: torch.Tensor | Sequence[int]) -> ImageData:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageData(self.x[index], self.y[index])

    def split(self, fraction: float, seed: int = 0) -> tuple[ImageData, ImageData]:
        """A seeded random split into ``fraction`` and the rest."""
        first, rest = self.split_index(len(self), fraction, seed)
        return self.subset(first), self.subset(rest)

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(self.x.to(device), self.y.to(device))


class MinibatchSampler:
    """Endless seeded minibatches: shuffled epochs, the last partial batch dropped.

    Its state (:meth:`state_dict`) can be saved with a checkpoint, so a resumed run
    draws the batches an uninterrupted run would have drawn.
    """

    def __init__(self, n: int, batch_size: int, seed: int, *, table: bool = False) -> None:
        if batch_size < 1:
            raise InputError(f"The 'batch_size' parameter must be >= 1; got {batch_size!r}.")
        self.n = n
        self.batch_size = min(batch_size, n)
        if table and self.batch_size < 2:  # batch norm over one 1x1 row has no variance to normalise by
            raise InputError(f"Batches of table rows need at least 2 rows; got a batch size of {self.batch_size} "
                             f"({n} rows): raise the batch size.")
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.position = 0

    def next(self) -> torch.Tensor:
        if self.position + self.batch_size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return index

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"]
        self.position = int(state["position"])


def digits_data() -> ImageData:
    """scikit-learn's 1,797 handwritten digits as 1x8x8 images scaled to [0, 1] (offline)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(np.asarray(bunch.images, dtype=np.float32) / 16.0).unsqueeze(1)
    return ImageData(x, torch.tensor(bunch.target, dtype=torch.int64))


def digits_task(classes: Sequence[int], data: ImageData | None = None) -> ImageData:
    """The digits of ``classes`` only, relabelled ``0 .. len(classes) - 1`` in that order:
    a family of related tasks (class subsets) for warm-started search."""
    classes = list(classes)
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(0 <= c <= 9 for c in classes):
        raise InputError(f"The 'classes' parameter of digits_task must be >= 2 distinct digits 0-9; got {classes!r}.")
    data = data if data is not None else digits_data()
    mask = torch.isin(data.y, torch.tensor(classes))
    lookup = torch.full((10,), -1, dtype=torch.int64)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    return ImageData(data.x[mask], lookup[data.y[mask]])


def glyph_task(
    alphabet: str,
    classes: Sequence[int] | None = None,
    *,
    image_size: int = 16,
    instances: int = 60,
    seed: int = 0,
) -> ImageData:
    """Glyphs of one alphabet of the offline glyph benchmark as a classification task.

    Harder than the digits (more classes that look alike, random distortions per image), so
    searches do not saturate near 100% accuracy.

    Parameters
    ----------
    alphabet : str
        An alphabet name of :data:`autometa.metalearn.ALPHABETS`, such as "Cyrillic".
    classes : sequence of int, optional
        Positions of the wanted glyphs among the alphabet's classes (in the benchmark's
        order), relabelled ``0 .. len(classes) - 1`` in the given order; all by default.
    image_size, instances, seed
        As in :func:`autometa.metalearn.load_glyph_dataset` (rendered once, then cached).

    Returns
    -------
    ImageData
        ``instances`` images of shape ``(1, image_size, image_size)`` per class, ink 1 on 0.
    """
    from autometa.metalearn import ALPHABETS, load_glyph_dataset

    if alphabet not in {a.name for a in ALPHABETS}:  # checked before any rendering
        names = ", ".join(sorted(a.name for a in ALPHABETS))
        raise InputError(f"Unknown glyph alphabet {alphabet!r}; choose one of: {names}.")
    dataset = load_glyph_dataset(image_size=image_size, instances=instances, seed=seed)
    members = np.flatnonzero(dataset.alphabet == alphabet)
    chosen = list(range(len(members))) if classes is None else list(classes)
    if (len(chosen) < 2 or len(set(chosen)) != len(chosen)
            or not all(isinstance(c, (int, np.integer)) and 0 <= c < len(members) for c in chosen)):
        raise InputError(f"The 'classes' parameter of glyph_task must be >= 2 distinct positions in "
                         f"0..{len(members) - 1} (the classes of {alphabet!r}); got {classes!r}.")
    images = dataset.images[members[chosen]]  # (classes, instances, size, size)
    x = torch.tensor(images.reshape(-1, 1, image_size, image_size), dtype=torch.float32) / 255.0
    y = torch.arange(len(chosen), dtype=torch.int64).repeat_interleave(images.shape[1])
    return ImageData(x, y)


def table_data(task: Any, *, fit_rows: Sequence[int] | torch.Tensor | None = None) -> ImageData:
    """A classification table (:class:`autometa.task.Task`) as input of the searches.

    Each row becomes a ``(features, 1, 1)`` tensor, on which a 1x1 convolution is a fully
    connected layer (search it with :data:`TABULAR_OPS`). Features are encoded as in
    autometa's pipelines: numbers median-imputed with missing-value indicators and
    standardized, categories one-hot. Labels become class indices in sorted label order.

    Parameters
    ----------
    task : Task
        A binary or multiclass task.
    fit_rows : sequence of int, optional
        Rows the encoder is fitted on: the training rows, so that validation and test
        rows stay unseen (see :meth:`ImageData.split_index`). All rows by default.
    """
    from autometa.spaces import onehot_preprocessor

    if str(getattr(task, "problem_type", "")) not in ("binary", "multiclass"):
        raise InputError(
            f"Architecture search on tables needs a classification label; {getattr(task, 'label', '?')!r} is "
            f"{getattr(task, 'problem_type', 'not a Task')}: choose a categorical label."
        )
    X = task.X
    rows = np.arange(len(X)) if fit_rows is None else np.asarray(torch.as_tensor(fit_rows, dtype=torch.long))
    if rows.size == 0 or rows.min() < 0 or rows.max() >= len(X):
        raise InputError(f"The 'fit_rows' parameter of table_data must index rows 0..{len(X) - 1}.")
    encoder = onehot_preprocessor(task.numeric_features, task.categorical_features)
    encoder.fit(X.iloc[rows])
    x = np.asarray(encoder.transform(X), dtype=np.float32)
    _, codes = np.unique(task.y.astype(str).to_numpy(), return_inverse=True)
    return ImageData(torch.from_numpy(x).reshape(len(x), -1, 1, 1), torch.from_numpy(codes.astype(np.int64)))


def split_rows(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices ``(train, valid, test)`` of ``n`` rows: 50% / 25% / 25%, seeded.

    ``autometa nas search`` searches on train and valid, ``autometa nas train`` trains on
    train and tests on test: with the same seed a search never sees the test rows.
    """
    rest, test = ImageData.split_index(n, 0.75, seed)
    train, valid = ImageData.split_index(len(rest), 2 / 3, seed + 1)
    return rest[train], rest[valid], test


def split_data(data: ImageData, seed: int = 0) -> tuple[ImageData, ImageData, ImageData]:
    """``(train, valid, test)`` parts of ``data``, by :func:`split_rows`."""
    train, valid, test = (data.subset(rows) for rows in split_rows(len(data), seed))
    return train, valid, test


def load_data(
    data: str | os.PathLike[str],
    *,
    label: str | None = None,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> tuple[ImageData, Task | None]:
    """Load a classification task for the searches by name or path.

    Parameters
    ----------
    data : str or path-like
        "digits" (scikit-learn's 8x8 digits, offline), "glyphs:<alphabet>" (an alphabet
        of the offline glyph benchmark at 16x16, see :func:`glyph_task`), an ``.npz``
        file with arrays ``x`` ``(n, [channels,] height, width)`` and ``y`` ``(n,)`` of
        integer class labels (relabelled ``0 .. classes - 1`` in sorted order), or, with
        ``label``, a CSV or Parquet table.
    label : str, optional
        The target column of a table.
    classes : sequence of int, optional
        Classes to keep (digits), or positions in a glyph alphabet: a class-subset task.
    seed : int
        The seed of :func:`split_rows`: a table's encoder is fitted on its train rows only.

    Returns
    -------
    (ImageData, Task or None)
        The data, and the :class:`autometa.Task` of a table (None otherwise).
    """
    chosen = None if classes is None else list(classes)
    if label is None:
        return _load_images(data, chosen), None
    path = Path(data)
    if not path.is_file() or path.suffix == ".npz":
        raise InputError(f"The 'label' parameter of load_data applies to a CSV or Parquet table; {str(data)!r} is not one.")
    if chosen:
        raise InputError("The 'classes' parameter of load_data only applies to 'digits' or 'glyphs:<alphabet>'.")
    task = Task(path, label=label)
    train, _, _ = split_rows(len(task.X), seed)
    return table_data(task, fit_rows=train), task


def _load_images(data: str | os.PathLike[str], classes: list[int] | None) -> ImageData:
    name = str(data)
    if name == "digits":
        return digits_task(classes) if classes is not None else digits_data()
    if name.startswith("glyphs:"):
        return glyph_task(name.removeprefix("glyphs:"), classes)
    path = Path(data)
    if path.suffix != ".npz" or not path.is_file():
        raise InputError(f"The 'data' parameter of load_data must be 'digits', 'glyphs:<alphabet>', an existing .npz "
                         f"file or a table with a label; got {name!r}.")
    if classes:
        raise InputError("The 'classes' parameter of load_data only applies to 'digits' or 'glyphs:<alphabet>'.")
    try:
        arrays = np.load(path)
        x, y = np.asarray(arrays["x"], dtype=np.float32), np.asarray(arrays["y"])
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"'{path}' must hold arrays 'x' and 'y' ({exc}).") from None
    if x.ndim == 3:
        x = x[:, None]
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"The labels 'y' in '{path}' must be integers; got dtype {y.dtype}.")
    _, codes = np.unique(y, return_inverse=True)
    return ImageData(torch.from_numpy(x), torch.from_numpy(codes.astype(np.int64)))
