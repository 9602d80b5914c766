"""N-way K-shot image classification episodes: the glyph benchmark and Omniglot.

An episode (a task) draws ``ways`` classes of one split without replacement, labels them
``0 .. ways-1`` in the order drawn, and takes ``shots`` support and ``queries`` query
images of each class, all distinct instances. Splits have disjoint classes.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autometa.exceptions import InputError
from autometa.metalearn._glyphs import SPLITS, glyph_cache_dir, load_glyph_dataset
from autometa.metalearn._tasks import TaskBatch

__all__ = ["GlyphTasks", "OmniglotTasks", "sample_episodes"]


def _check_int(owner: str, name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"The '{name}' parameter of {owner} must be an int >= {minimum}; got {value!r}.")


def sample_episodes(
    images: torch.Tensor,
    n_tasks: int,
    generator: torch.Generator,
    *,
    ways: int,
    shots: int,
    queries: int,
    dtype: torch.dtype = torch.float32,
) -> TaskBatch:
    """Draw ``n_tasks`` N-way K-shot episodes from a class-indexed image array.

    Parameters
    ----------
    images : torch.Tensor
        ``uint8`` of shape ``(n_classes, n_instances, height, width)``, ink 255.
    n_tasks : int
    generator : torch.Generator
    ways, shots, queries : int
        Classes per episode, support and query images per class.
    dtype : torch.dtype
        Of the images (scaled to [0, 1]); labels are int64.

    Returns
    -------
    TaskBatch
        ``support_x`` of shape ``(n_tasks, ways * shots, 1, height, width)``,
        ``support_y`` ``(n_tasks, ways * shots)`` with labels ``0 .. ways-1``; the query
        tensors likewise with ``ways * queries`` images. Class-major order.
    """
    _check_int("sample_episodes", "n_tasks", n_tasks, 1)
    n_classes, n_instances, height, width = images.shape
    if ways > n_classes:
        raise InputError(f"The 'ways' parameter must be at most the {n_classes} classes of the split; got {ways!r}.")
    if shots + queries > n_instances:
        raise InputError(
            f"'shots' + 'queries' must be at most the {n_instances} images per class; got {shots} + {queries}."
        )
    classes = torch.rand(n_tasks, n_classes, generator=generator).argsort(dim=1)[:, :ways]
    per_class = shots + queries
    instances = torch.rand(n_tasks, ways, n_instances, generator=generator).argsort(dim=2)[..., :per_class]
    picked = images[classes.unsqueeze(-1), instances].to(dtype) / 255.0  # (T, W, S+Q, H, W)
    support = picked[:, :, :shots].reshape(n_tasks, ways * shots, 1, height, width)
    query = picked[:, :, shots:].reshape(n_tasks, ways * queries, 1, height, width)
    labels = torch.arange(ways, dtype=torch.int64)
    support_y = labels.repeat_interleave(shots).expand(n_tasks, -1).contiguous()
    query_y = labels.repeat_interleave(queries).expand(n_tasks, -1).contiguous()
    return TaskBatch(support.contiguous(), support_y, query.contiguous(), query_y)


@dataclass(frozen=True)
class _EpisodeSettings:
    ways: int = 5
    shots: int = 1
    queries: int = 15
    split: str = "train"

    def _check(self) -> None:
        owner = type(self).__name__
        _check_int(owner, "ways", self.ways, 2)
        _check_int(owner, "shots", self.shots, 1)
        _check_int(owner, "queries", self.queries, 1)
        if self.split not in SPLITS:
            raise InputError(
                f"The 'split' parameter of {owner} must be one of {', '.join(SPLITS)}; got {self.split!r}."
            )


@functools.lru_cache(maxsize=4)
def _glyph_images(
    image_size: int, seed: int, cache_dir: str | None
) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    dataset = load_glyph_dataset(image_size=image_size, seed=seed, cache_dir=cache_dir)
    images, names = {}, {}
    for split in SPLITS:
        index = dataset.classes_of(split)
        images[split] = torch.from_numpy(np.ascontiguousarray(dataset.images[index]))
        names[split] = np.array([f"{a}/{f}/{ord(c):04x}" for a, f, c in
                                 zip(dataset.alphabet[index], dataset.font[index], dataset.character[index], strict=True)])  # fmt: skip
    return images, names


@dataclass(frozen=True)
class GlyphTasks(_EpisodeSettings):
    """N-way K-shot episodes of the offline glyph benchmark (Hershey stroke fonts).

    921 classes in 17 alphabets: 625 meta-train, 98 meta-validation and 198 meta-test
    classes, 20 distorted renderings each (see :mod:`autometa.metalearn._glyphs`). The
    images are rendered on first use (about 10 s) and cached.

    Parameters
    ----------
    ways : int
        Classes per episode.
    shots : int
        Support images per class.
    queries : int
        Query images per class (``shots + queries <= 20``).
    split : str
        "train", "val" or "test" (disjoint classes and alphabets).
    image_size : int
        Side of the images in pixels.
    seed : int
        Seed of the rendering (the distortions), not of the episodes: those come from the
        generator given to :meth:`sample`.
    cache_dir : str, optional
        Where the rendered images are cached; ``~/.cache/autometa/glyphs`` (or
        ``$AUTOMETA_CACHE_DIR/glyphs``) by default.

    Examples
    --------
    >>> tasks = GlyphTasks(ways=5, shots=1, split="train")
    >>> batch = tasks.sample(4, torch.Generator().manual_seed(0))
    >>> batch.support_x.shape, batch.query_y.shape
    (torch.Size([4, 5, 1, 28, 28]), torch.Size([4, 75]))
    """

    image_size: int = 28
    seed: int = 0
    cache_dir: str | None = None
    _images: torch.Tensor = field(init=False, repr=False, compare=False)
    _names: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        _check_int("GlyphTasks", "image_size", self.image_size, 8)
        images, names = _glyph_images(
            self.image_size, self.seed, None if self.cache_dir is None else str(self.cache_dir)
        )
        object.__setattr__(self, "_images", images[self.split])
        object.__setattr__(self, "_names", names[self.split])
        if self.ways > self.n_classes:
            raise InputError(
                f"The 'ways' parameter of GlyphTasks must be at most the {self.n_classes} classes of the "
                f"{self.split!r} split; got {self.ways!r}."
            )
        if self.shots + self.queries > self._images.shape[1]:
            raise InputError(
                f"'shots' + 'queries' of GlyphTasks must be at most {self._images.shape[1]}; "
                f"got {self.shots} + {self.queries}."
            )

    @property
    def n_classes(self) -> int:
        """Classes in this split."""
        return int(self._images.shape[0])

    @property
    def class_names(self) -> tuple[str, ...]:
        """``alphabet/font/code point`` of each class of this split, in class-index order."""
        return tuple(str(n) for n in self._names)

    def sample(self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """Draw ``n_tasks`` episodes; see :func:`sample_episodes` for the shapes."""
        return sample_episodes(
            self._images, n_tasks, generator, ways=self.ways, shots=self.shots, queries=self.queries, dtype=dtype
        )


def _read_omniglot(root: Path, image_size: int) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Images of each split, ``uint8 (n_classes, 20, size, size)`` with ink 255, and class names."""
    from PIL import Image

    backgrounds, evaluations = root / "images_background", root / "images_evaluation"
    for directory in (backgrounds, evaluations):
        if not directory.is_dir():
            raise InputError(
                f"The 'root' parameter of OmniglotTasks must hold images_background/ and images_evaluation/; "
                f"'{directory}' does not exist."
            )
    evaluation_alphabets = sorted(p for p in evaluations.iterdir() if p.is_dir())
    half = len(evaluation_alphabets) // 2
    groups = {
        "train": sorted(p for p in backgrounds.iterdir() if p.is_dir()),
        "val": evaluation_alphabets[:half],
        "test": evaluation_alphabets[half:],
    }
    out: dict[str, tuple[np.ndarray, list[str]]] = {}
    for split, alphabets in groups.items():
        classes: list[np.ndarray] = []
        names: list[str] = []
        for alphabet in alphabets:
            for character in sorted(p for p in alphabet.iterdir() if p.is_dir()):
                files = sorted(character.glob("*.png"))
                if not files:
                    continue
                stack = []
                for f in files:
                    with Image.open(f) as image:
                        gray = image.convert("L").resize((image_size, image_size), Image.Resampling.BOX)
                    stack.append(255 - np.asarray(gray, dtype=np.uint8))  # black ink on white -> ink 255
                classes.append(np.stack(stack))
                names.append(f"{alphabet.name}/{character.name}")
        if not classes:
            raise InputError(f"No character directories with .png files for the {split!r} split under '{root}'.")
        n = min(len(c) for c in classes)
        out[split] = (np.stack([c[:n] for c in classes]), names)
    return out


@functools.lru_cache(maxsize=2)
def _omniglot_images(root: str, image_size: int) -> dict[str, tuple[torch.Tensor, tuple[str, ...]]]:
    key = hashlib.sha1(f"{Path(root).resolve()}|{image_size}".encode()).hexdigest()[:12]
    path = glyph_cache_dir().parent / "omniglot" / f"omniglot-v1-{image_size}px-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return {
                s: (torch.from_numpy(data[f"{s}_images"]), tuple(str(n) for n in data[f"{s}_names"])) for s in SPLITS
            }
    read = _read_omniglot(Path(root), image_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    arrays: dict[str, Any] = {f"{s}_images": read[s][0] for s in SPLITS} | {
        f"{s}_names": np.array(read[s][1]) for s in SPLITS
    }
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return {s: (torch.from_numpy(read[s][0]), tuple(read[s][1])) for s in SPLITS}


@dataclass(frozen=True)
class OmniglotTasks(_EpisodeSettings):
    """N-way K-shot episodes of Omniglot (Lake et al. 2015) read from a local copy.

    ``root`` must hold the unzipped ``images_background/<alphabet>/<character>/*.png`` and
    ``images_evaluation/...`` folders of the official release. Splits by alphabet: the 30
    background alphabets (964 characters) are meta-train, the first half of the 20
    evaluation alphabets in sorted order meta-validation, the second half meta-test. The
    images are resized to ``image_size`` (box filter) and cached under
    ``~/.cache/autometa/omniglot``. Nothing is downloaded.

    Parameters
    ----------
    root : str
        The Omniglot directory.
    ways, shots, queries, split
        As in :class:`GlyphTasks`.
    image_size : int
    """

    root: str = ""
    image_size: int = 28
    _images: torch.Tensor = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        _check_int("OmniglotTasks", "image_size", self.image_size, 8)
        if not self.root:
            raise InputError("The 'root' parameter of OmniglotTasks must name the local Omniglot directory; got ''.")
        images, names = _omniglot_images(str(self.root), self.image_size)[self.split]
        object.__setattr__(self, "_images", images)
        object.__setattr__(self, "_names", names)
        if self.ways > self.n_classes:
            raise InputError(
                f"The 'ways' parameter of OmniglotTasks must be at most the {self.n_classes} classes of the "
                f"{self.split!r} split; got {self.ways!r}."
            )

    @property
    def n_classes(self) -> int:
        """Classes (characters) in this split."""
        return int(self._images.shape[0])

    @property
    def class_names(self) -> tuple[str, ...]:
        """``alphabet/character`` of each class of this split."""
        return self._names

    def sample(self, n_tasks: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """Draw ``n_tasks`` episodes; see :func:`sample_episodes` for the shapes."""
        return sample_episodes(
            self._images, n_tasks, generator, ways=self.ways, shots=self.shots, queries=self.queries, dtype=dtype
        )
