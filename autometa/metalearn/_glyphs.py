"""An offline few-shot image benchmark rendered from the Hershey stroke fonts.

Every distinct glyph of the fonts shipped with the ``hershey-fonts`` package is a class;
the fonts are grouped into alphabets (Latin styles, Gothic, Greek, Cyrillic, Japanese,
symbol sets) and whole alphabets are assigned to the meta-train, meta-validation and
meta-test splits, as Omniglot does with its background and evaluation alphabets. Glyphs
that look alike (the same letter in a bolder variant of a font, "O" and "0", shared
punctuation) are merged into one class by a near-duplicate test on canonical renderings,
across all alphabets, so no class appears twice in any split or in two splits.

Each class gets ``instances`` images drawn with a random affine map (rotation, scale,
shear, translation), a random stroke width and per-vertex jitter, rasterized with Pillow
at 4x the image size and box-filtered down. The images are rendered once and cached as
a compressed ``.npz`` keyed by :data:`GLYPH_DATA_VERSION`, the image size and the seed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autometa.exceptions import InputError

__all__ = [
    "ALPHABETS",
    "GLYPH_DATA_VERSION",
    "Alphabet",
    "GlyphDataset",
    "glyph_cache_dir",
    "load_glyph_dataset",
    "render_glyph_dataset",
]

GLYPH_DATA_VERSION = "glyphs-v1"
"""Changes whenever the alphabets, the near-duplicate rule or the renderer change."""

SPLITS = ("train", "val", "test")

_LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ALL = None  # every non-blank glyph of the font


@dataclass(frozen=True)
class Alphabet:
    """A group of Hershey fonts drawing one script in one style, and the split it belongs to.

    Attributes
    ----------
    name : str
    fonts : tuple of str
        Names in ``HersheyFonts().default_font_names``; later fonts add only the glyphs
        that are not near-duplicates of earlier ones.
    characters : str or None
        The characters (font code points) taken from each font; None takes every glyph.
    split : str
        "train", "val" or "test".
    """

    name: str
    fonts: tuple[str, ...]
    characters: str | None
    split: str


ALPHABETS: tuple[Alphabet, ...] = (
    # Latin letters first: the symbol fonts repeat them, and those copies are dropped
    Alphabet("Latin (sans)", ("futural", "futuram"), _LATIN, "train"),
    Alphabet("Latin (roman)", ("rowmans", "rowmand", "rowmant"), _LATIN, "train"),
    Alphabet("Latin (Times)", ("timesr", "timesrb"), _LATIN, "train"),
    Alphabet("Latin (Times italic)", ("timesi", "timesib"), _LATIN, "train"),
    Alphabet("Latin (script)", ("scripts", "scriptc"), _LATIN, "train"),
    Alphabet("Latin (cursive)", ("cursive",), _LATIN, "train"),
    Alphabet("Gothic (English)", ("gothiceng", "gothgbt"), _LATIN, "train"),
    Alphabet("Japanese", ("japanese",), _ALL, "train"),
    Alphabet("Gothic (Italian)", ("gothicita", "gothitt"), _LATIN, "val"),
    Alphabet("Gothic (German)", ("gothicger", "gothgrt"), _LATIN, "test"),
    Alphabet("Greek", ("greek", "greekc", "greeks", "timesg"), _LATIN[:52], "test"),
    Alphabet("Cyrillic", ("cyrillic", "cyrilc_1"), _ALL, "test"),
    Alphabet("Symbolic", ("symbolic",), _ALL, "train"),
    Alphabet("Math (upper)", ("mathupp",), _ALL, "val"),
    Alphabet("Astrology", ("astrology",), _ALL, "val"),
    Alphabet("Music", ("music",), _ALL, "test"),
    Alphabet("Meteorology", ("meteorology",), _ALL, "test"),
)
"""The alphabets in processing order: a glyph that nearly duplicates one kept earlier (in
any alphabet) is dropped, so each shape belongs to the first alphabet that draws it."""

_SUPERSAMPLE = 4
_NEAR_DUPLICATE = 0.90  # cosine similarity of centred canonical renderings
_MIN_EXTENT = 0.3  # glyphs smaller than this fraction of the font's cap-to-bottom height are dropped


@dataclass(frozen=True)
class GlyphDataset:
    """Rendered glyph images and their class metadata.

    Attributes
    ----------
    images : numpy.ndarray
        ``uint8`` of shape ``(n_classes, instances, image_size, image_size)``, ink 255 on 0.
    alphabet, character, font : numpy.ndarray
        One string per class: its alphabet, the character code it has in ``font``.
    split : numpy.ndarray
        One of "train", "val", "test" per class.
    """

    images: np.ndarray
    alphabet: np.ndarray
    character: np.ndarray
    font: np.ndarray
    split: np.ndarray

    def classes_of(self, split: str) -> np.ndarray:
        """Indices of the classes of ``split``."""
        if split not in SPLITS:
            raise InputError(f"The 'split' parameter must be one of {', '.join(SPLITS)}; got {split!r}.")
        return np.flatnonzero(self.split == split)


def glyph_cache_dir() -> Path:
    """``$AUTOMETA_CACHE_DIR/glyphs`` if set, else ``~/.cache/autometa/glyphs``."""
    root = os.environ.get("AUTOMETA_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "autometa"
    return base / "glyphs"


def _glyph_strokes() -> list[tuple[Alphabet, str, str, list[np.ndarray]]]:
    """(alphabet, font, character, strokes normalized to the unit box) of every candidate glyph."""
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as error:
        from autometa.extras import MissingDependencyError

        raise MissingDependencyError(
            f"The glyph benchmark needs the hershey-fonts package ({error}): pip install hershey-fonts==2.1.0 "
            "(or pip install 'autometa[nas]')."
        ) from error
    fonts = HersheyFonts()
    out: list[tuple[Alphabet, str, str, list[np.ndarray]]] = []
    for alphabet in ALPHABETS:
        for font in alphabet.fonts:
            fonts.load_default_font(font)
            options = fonts.render_options
            height = float(options.bottom_line - options.cap_line)
            chars = alphabet.characters if alphabet.characters is not None else "".join(fonts.all_glyphs)
            for char in chars:
                strokes = [np.asarray(s, dtype=np.float64) for s in fonts.strokes_for_text(char) if len(s) > 0]
                if not strokes:
                    continue
                points = np.concatenate(strokes)
                low, high = points.min(axis=0), points.max(axis=0)
                if float((high - low).max()) < _MIN_EXTENT * height:
                    continue
                center = (low + high) / 2
                # the font's height maps to the unit; the glyph is centred on its bounding box
                scale = 1.0 / max(height, float((high - low).max()))
                out.append((alphabet, font, char, [(s - center) * scale for s in strokes]))
    return out


def _rasterize(strokes: list[np.ndarray], size: int, width: float) -> np.ndarray:
    """Strokes in pixel coordinates of a ``size * _SUPERSAMPLE`` canvas -> ``(size, size)`` float in [0, 1]."""
    from PIL import Image, ImageDraw

    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    w = max(1, round(width * _SUPERSAMPLE))
    r = w / 2
    for s in strokes:
        pts = [(float(x), float(y)) for x, y in s]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=w, joint="curve")
        for x, y in (pts[0], pts[-1]) if len(pts) > 1 else pts:  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    array = np.asarray(canvas, dtype=np.float32) / 255.0
    return array.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))


def _place(strokes: list[np.ndarray], size: int, matrix: np.ndarray, shift: np.ndarray) -> list[np.ndarray]:
    """Unit-box strokes -> supersampled pixel coordinates: ``matrix @ p * 0.8 size + centre + shift``."""
    big = size * _SUPERSAMPLE
    return [(s @ matrix.T) * 0.8 * big + big / 2 + shift * _SUPERSAMPLE for s in strokes]


def render_glyph_dataset(*, image_size: int = 28, instances: int = 20, seed: int = 0) -> GlyphDataset:
    """Render the benchmark (no cache; see :func:`load_glyph_dataset`).

    Parameters
    ----------
    image_size : int
        Side of the square images in pixels (>= 8).
    instances : int
        Images per class, each with its own random distortion.
    seed : int
        Seeds the distortions.

    Returns
    -------
    GlyphDataset
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise InputError(f"The 'image_size' parameter must be an int >= 8; got {image_size!r}.")
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise InputError(f"The 'instances' parameter must be an int >= 1; got {instances!r}.")
    candidates = _glyph_strokes()
    # near-duplicate test on canonical renderings at 28 px (thin strokes, antialiased)
    kept: list[tuple[Alphabet, str, str, list[np.ndarray]]] = []
    kept_vectors = np.zeros((len(candidates), 28 * 28))
    for alphabet, font, char, strokes in candidates:
        canonical = _rasterize(_place(strokes, 28, np.eye(2), np.zeros(2)), 28, 1.2)
        vector = canonical.ravel() - canonical.mean()
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            continue
        vector /= norm
        if kept and float(np.max(kept_vectors[: len(kept)] @ vector)) > _NEAR_DUPLICATE:
            continue
        kept_vectors[len(kept)] = vector
        kept.append((alphabet, font, char, strokes))

    rng = np.random.default_rng(seed)
    images = np.zeros((len(kept), instances, image_size, image_size), dtype=np.uint8)
    unit = image_size / 28.0  # the distortions are specified for 28 px images
    for c, (_, _, _, strokes) in enumerate(kept):
        for i in range(instances):
            angle = math.radians(rng.uniform(-15, 15))
            scale = rng.uniform(0.85, 1.1, size=2)
            shear = rng.uniform(-0.2, 0.2)
            rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
            matrix = rotation @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(scale)
            jittered = [s + rng.normal(0.0, 0.012, size=s.shape) for s in strokes]
            shift = rng.uniform(-1.5, 1.5, size=2) * unit
            width = rng.uniform(1.2, 2.6) * unit
            image = _rasterize(_place(jittered, image_size, matrix, shift), image_size, width)
            images[c, i] = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return GlyphDataset(
        images=images,
        alphabet=np.array([a.name for a, _, _, _ in kept]),
        character=np.array([ch for _, _, ch, _ in kept]),
        font=np.array([f for _, f, _, _ in kept]),
        split=np.array([a.split for a, _, _, _ in kept]),
    )


def load_glyph_dataset(
    *, image_size: int = 28, instances: int = 20, seed: int = 0, cache_dir: str | Path | None = None
) -> GlyphDataset:
    """The rendered benchmark, from the cache when present (rendered and cached otherwise).

    Parameters
    ----------
    image_size, instances, seed
        As in :func:`render_glyph_dataset`.
    cache_dir : path, optional
        Where ``<GLYPH_DATA_VERSION>-<size>px-<instances>x-seed<seed>.npz`` lives;
        :func:`glyph_cache_dir` by default.
    """
    directory = Path(cache_dir) if cache_dir is not None else glyph_cache_dir()
    path = directory / f"{GLYPH_DATA_VERSION}-{image_size}px-{instances}x-seed{seed}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return GlyphDataset(**{name: data[name] for name in GlyphDataset.__dataclass_fields__})
    dataset = render_glyph_dataset(image_size=image_size, instances=instances, seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **{name: getattr(dataset, name) for name in GlyphDataset.__dataclass_fields__})
    os.replace(tmp, path)
    return dataset
