"""Few-shot image episodes: the glyph benchmark (Hershey fonts) and the Omniglot loader.

The glyph images are rendered once per machine (about 10 s) and cached under
~/.cache/autometa/glyphs; every later use loads the cache in well under a second."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("HersheyFonts")

from autometa.exceptions import InputError  # noqa: E402
from autometa.metalearn import (  # noqa: E402
    ALPHABETS,
    GlyphTasks,
    OmniglotTasks,
    TaskBatch,
    load_glyph_dataset,
    sample_episodes,
)


@pytest.fixture(scope="module")
def glyphs():
    return load_glyph_dataset()


def make_images(n_classes: int = 10, n_instances: int = 6, size: int = 4) -> torch.Tensor:
    """Image ``(c, i)`` is constant ``c * n_instances + i``: every pixel names its class and instance."""
    codes = torch.arange(n_classes * n_instances, dtype=torch.uint8).view(n_classes, n_instances, 1, 1)
    return codes.expand(n_classes, n_instances, size, size).contiguous()


def decode(x: torch.Tensor, n_instances: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    code = torch.round(x[..., 0, 0, 0] * 255).long()
    return code // n_instances, code % n_instances


def test_sample_episodes_shapes_labels_and_distinct_instances():
    batch = sample_episodes(make_images(), 7, torch.Generator().manual_seed(0), ways=3, shots=2, queries=4)
    assert isinstance(batch, TaskBatch)
    assert batch.support_x.shape == (7, 6, 1, 4, 4) and batch.query_x.shape == (7, 12, 1, 4, 4)
    assert batch.support_y.dtype == torch.int64 and batch.support_x.dtype == torch.float32
    assert torch.equal(batch.support_y[0], torch.tensor([0, 0, 1, 1, 2, 2]))
    s_class, s_inst = decode(batch.support_x)
    q_class, q_inst = decode(batch.query_x)
    for t in range(7):
        # one class per label, ways distinct classes, no image both in support and query
        mapping = {int(y): int(c) for y, c in zip(batch.support_y[t], s_class[t], strict=True)}
        assert len(set(mapping.values())) == 3
        assert all(mapping[int(y)] == int(c) for y, c in zip(batch.query_y[t], q_class[t], strict=True))
        images = {(int(c), int(i)) for c, i in zip(s_class[t], s_inst[t], strict=True)}
        images |= {(int(c), int(i)) for c, i in zip(q_class[t], q_inst[t], strict=True)}
        assert len(images) == 18


def test_sample_episodes_rejects_too_many_ways_or_images():
    with pytest.raises(InputError, match="ways"):
        sample_episodes(make_images(), 1, torch.Generator(), ways=11, shots=1, queries=1)
    with pytest.raises(InputError, match="shots"):
        sample_episodes(make_images(), 1, torch.Generator(), ways=2, shots=3, queries=4)


def test_glyph_benchmark_size_and_alphabets_disjoint_between_splits(glyphs):
    n = glyphs.images.shape[0]
    assert glyphs.images.shape == (n, 20, 28, 28) and glyphs.images.dtype == np.uint8 and n >= 900
    splits = {s: set(glyphs.alphabet[glyphs.split == s]) for s in ("train", "val", "test")}
    assert splits["train"].isdisjoint(splits["val"]) and splits["train"].isdisjoint(splits["test"])
    assert splits["val"].isdisjoint(splits["test"])
    assert {a.name for a in ALPHABETS} == set(glyphs.alphabet)
    # every class is a distinct glyph (font, code point)
    assert len(set(zip(glyphs.font, glyphs.character, strict=True))) == n


def test_glyph_classes_are_not_near_duplicates_across_splits(glyphs):
    """The canonical-shape rule removed look-alikes: class means of two splits never match."""
    means = glyphs.images.astype(np.float64).mean(axis=1).reshape(len(glyphs.images), -1)
    means -= means.mean(axis=1, keepdims=True)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    train, test = means[glyphs.split == "train"], means[glyphs.split == "test"]
    assert float((train @ test.T).max()) < 0.97


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_glyph_episodes_draw_only_classes_of_their_split(glyphs, split):
    """Decode every sampled image back to its class: it must be a class of the episode's split."""
    tasks = GlyphTasks(ways=5, shots=1, queries=3, split=split)
    assert tasks.n_classes == int((glyphs.split == split).sum())
    batch = tasks.sample(40, torch.Generator().manual_seed(1))
    flat = glyphs.images.reshape(-1, 28 * 28)
    lookup = {flat[i].tobytes(): i // 20 for i in range(len(flat))}
    seen = set()
    for x in (batch.support_x, batch.query_x):
        pixels = torch.round(x * 255).to(torch.uint8).reshape(-1, 28 * 28).numpy()
        seen |= {lookup[row.tobytes()] for row in pixels}
    assert {str(glyphs.split[c]) for c in seen} == {split}
    assert len(seen) > 5


def test_glyph_tasks_shapes_range_and_seeding():
    tasks = GlyphTasks(ways=5, shots=1, queries=15, split="val")
    a = tasks.sample(3, torch.Generator().manual_seed(0))
    b = tasks.sample(3, torch.Generator().manual_seed(0))
    c = tasks.sample(3, torch.Generator().manual_seed(1))
    assert a.support_x.shape == (3, 5, 1, 28, 28) and a.query_x.shape == (3, 75, 1, 28, 28)
    assert a.support_x.dtype == torch.float32 and a.query_y.dtype == torch.int64
    assert float(a.support_x.min()) >= 0.0 and float(a.support_x.max()) <= 1.0
    assert set(a.query_y.unique().tolist()) == set(range(5))
    assert torch.equal(a.support_x, b.support_x) and not torch.equal(a.support_x, c.support_x)
    assert len(tasks.class_names) == tasks.n_classes
    assert GlyphTasks(split="train").n_classes + GlyphTasks(split="val").n_classes + GlyphTasks(
        split="test"
    ).n_classes == len(load_glyph_dataset().images)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ways": 1}, "ways"),
        ({"shots": 0}, "shots"),
        ({"split": "dev"}, "split"),
        ({"shots": 10, "queries": 11}, "queries"),
        ({"ways": 10_000}, "ways"),
        ({"image_size": 4}, "image_size"),
    ],
)
def test_glyph_tasks_reject_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        GlyphTasks(**kwargs)


def _fake_omniglot(root, *, alphabets=(("A", 3), ("B", 2)), evaluation=(("C", 2), ("D", 3)), drawers=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, spec in (("images_background", alphabets), ("images_evaluation", evaluation)):
        for name, n_chars in spec:
            for k in range(n_chars):
                d = root / folder / name / f"character{k + 1:02d}"
                d.mkdir(parents=True)
                for j in range(drawers):
                    pixels = np.where(rng.random((105, 105)) < 0.1, 0, 255).astype(np.uint8)  # black ink on white
                    Image.fromarray(pixels).convert("1").save(d / f"{k:04d}_{j + 1:02d}.png")


def test_omniglot_loader_splits_by_alphabet_and_inverts(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMETA_CACHE_DIR", str(tmp_path / "cache"))
    _fake_omniglot(tmp_path / "omniglot")
    root = str(tmp_path / "omniglot")
    train = OmniglotTasks(root=root, ways=2, shots=1, queries=2, split="train")
    val = OmniglotTasks(root=root, ways=2, shots=1, queries=2, split="val")
    test = OmniglotTasks(root=root, ways=2, shots=1, queries=2, split="test")
    assert (train.n_classes, val.n_classes, test.n_classes) == (5, 2, 3)
    assert {n.split("/")[0] for n in train.class_names} == {"A", "B"}
    assert {n.split("/")[0] for n in val.class_names} == {"C"} and {n.split("/")[0] for n in test.class_names} == {"D"}
    batch = train.sample(2, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (2, 2, 1, 28, 28)
    assert 0.0 < float(batch.support_x.mean()) < 0.3  # ink (about 10% of pixels) is bright
    assert list((tmp_path / "cache" / "omniglot").glob("*.npz"))


def test_omniglot_loader_names_a_missing_directory(tmp_path):
    with pytest.raises(InputError, match="images_background"):
        OmniglotTasks(root=str(tmp_path))
    with pytest.raises(InputError, match="root"):
        OmniglotTasks()
