"""autometa.nas on tables: fully connected operations, the table encoding, a search with a
linear stem, warm starts by meta-features, and the CLI on a CSV file."""

from __future__ import annotations

import json
import warnings

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from autometa import Task  # noqa: E402
from autometa.cli._nas import nas_app  # noqa: E402
from autometa.exceptions import InputError, ResumeError  # noqa: E402
from autometa.nas import (  # noqa: E402
    TABULAR_OPS,
    ArchitectureStore,
    BNSettings,
    DARTSSearch,
    Genotype,
    GenotypeNetwork,
    ImageData,
    SearchNetwork,
    count_parameters,
    load_data,
    split_data,
    table_data,
    table_descriptor,
)
from autometa.nas._ops import make_op  # noqa: E402


def _task(frame, label):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(frame, label=label)


@pytest.fixture(scope="module")
def credit_task(credit_small):
    return _task(credit_small, "Status")


@pytest.mark.parametrize("name", TABULAR_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_tabular_ops_keep_the_shape_of_a_row(name, stride):
    op = make_op(name, 6, stride, BNSettings(), in_search=True)
    x = torch.randn(5, 6, 1, 1)
    out = op(x)
    assert out.shape == (5, 6, 1, 1)
    if name != "none":  # every output unit depends on the row (a stride-2 skip once fed half of them padding)
        assert (out.abs().sum(dim=(0, 2, 3)) > 0).all()


def test_dense_relu_is_a_fully_connected_layer():
    op = make_op("dense_relu", 4, 1, BNSettings(affine=False, track_running_stats=False))
    x = torch.randn(8, 4, 1, 1)
    weight = op[1].weight.view(4, 4)
    z = torch.relu(x.flatten(1)) @ weight.T
    expected = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
    assert torch.allclose(op(x).flatten(1), expected, atol=1e-5)


def test_table_data_encodes_with_statistics_of_the_fit_rows_only(credit_task):
    n = len(credit_task.X)
    fit, rest = ImageData.split_index(n, 0.5, seed=0)
    data = table_data(credit_task, fit_rows=fit)
    assert data.x.shape[0] == n and data.x.shape[2:] == (1, 1) and data.stem_kernel == 1
    assert data.n_classes == 2 and set(data.y.unique().tolist()) == {0, 1}
    x = data.x.flatten(1)
    scaled = ~((x == 0) | (x == 1)).all(0)  # the rest are one-hot columns
    numeric = credit_task.numeric_features
    with_missing = int(credit_task.X[numeric].iloc[fit.numpy()].isna().any().sum())  # standardized indicators
    assert len(numeric) == 9 and with_missing == 3 and int(scaled.sum()) == 9 + 3
    fit_x, rest_x = x[fit][:, scaled], x[rest][:, scaled]
    assert fit_x.mean(0).abs().max() < 1e-4 and (fit_x.std(0, unbiased=False) - 1).abs().max() < 1e-3
    assert rest_x.mean(0).abs().max() > 1e-2  # centred on the fit rows, not on the others
    first, _ = data.split(0.5, seed=0)  # ImageData.split makes the split split_index describes
    assert torch.equal(first.x, data.x[fit])


def test_table_data_refuses_a_regression_label(credit_small):
    with pytest.raises(InputError, match="needs a classification label; 'Seniority' is regression"):
        table_data(_task(credit_small, "Seniority"))


def test_search_on_a_table_uses_a_linear_stem_and_tabular_operations(credit_task):
    data = table_data(credit_task)
    train, valid = data.split(0.5)
    search = DARTSSearch(ops=TABULAR_OPS, channels=4, n_cells=2, n_nodes=2, batch_size=32, eval_every=3, seed=0)
    result = search.search(train, valid, steps=6)
    stem = search.network_.stem[0]
    assert stem.kernel_size == (1, 1) and stem.weight.numel() == data.in_channels * 3 * 4  # no dead 3x3 taps
    assert {op for op, _ in result.genotype.normal + result.genotype.reduce} <= set(TABULAR_OPS) - {"none"}
    assert 0.0 <= result.final_valid_accuracy <= 1.0 and len(result.history) == 2  # quality: the benchmark
    pruned = search.network_.prune(result.genotype)
    assert pruned.stem[0].kernel_size == (1, 1) and pruned(valid.x[:3]).shape == (3, 2)


def test_stem_kernel_is_checked_and_sizes_the_stem():
    cell = Genotype(normal=(("dense_relu", 0), ("glu", 1)), reduce=(("bottleneck", 0), ("skip_connect", 1)))
    wide, narrow = (count_parameters(GenotypeNetwork(cell, 10, 3, channels=4, n_cells=2, stem_kernel=k)) for k in (3, 1))
    assert wide - narrow == 10 * 12 * 8  # 8 of the 9 taps per stem weight are gone
    with pytest.raises(InputError, match="'stem_kernel' parameter of SearchNetwork must be 1"):
        SearchNetwork(10, 3, stem_kernel=2)


def test_table_store_warm_starts_from_the_task_with_the_nearest_meta_features(tmp_path, credit, iris):
    store = ArchitectureStore(tmp_path / "store")
    shape = (5, len(TABULAR_OPS))  # 2 nodes
    tasks = {"iris": _task(iris, "target"), "credit": _task(credit.sample(800, random_state=1), "Status")}
    for value, (name, task) in enumerate(tasks.items()):
        train, valid = table_data(task).split(0.5)
        result = DARTSSearch(ops=TABULAR_OPS, channels=2, n_cells=1, n_nodes=2, batch_size=32, seed=0).search(
            train, valid, steps=1, init_alphas=(torch.full(shape, float(value)), torch.full(shape, float(value))))
        store.add(name, table_descriptor(task), result)
    new = _task(credit.sample(800, random_state=2), "Status")
    start = store.warm_start(table_descriptor(new), ops=TABULAR_OPS, shape=shape)
    assert start is not None and start.sources[0][0] == "credit"
    stored = {r.name: r for r in store.records}["credit"]
    assert torch.allclose(start.alphas[0], stored.alpha_normal)


def test_cli_searches_and_trains_a_table(tmp_path, make_csv, credit_small):
    runner = CliRunner()
    data = str(make_csv(credit_small))
    tiny = ["--channels", "2", "--cells", "1", "--device", "cpu"]
    res = runner.invoke(nas_app, ["search", "--data", data, "--label", "Status", "--steps", "3", "--nodes", "1",
                                  "--batch-size", "16", *tiny, "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    genotype = Genotype.load(tmp_path / "s" / "genotype.json")
    assert {op for op, _ in genotype.normal} <= set(TABULAR_OPS)
    res = runner.invoke(nas_app, ["train", str(tmp_path / "s" / "genotype.json"), "--data", data, "--label", "Status",
                                  "--steps", "5", *tiny, "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert 0.0 <= json.loads((tmp_path / "t" / "result.json").read_text())["test_accuracy"] <= 1.0
    res = runner.invoke(nas_app, ["search", "--data", data, "--label", "Seniority", "--steps", "1", *tiny,
                                  "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "needs a classification label" in res.output
    assert not (tmp_path / "r").exists()
    res = runner.invoke(nas_app, ["search", "--data", data, "--label", "nope", "--steps", "1", *tiny,
                                  "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_table_store_never_warm_starts_from_a_task_described_otherwise(tmp_path, credit_task):
    store = ArchitectureStore(tmp_path / "store")
    train, valid = table_data(credit_task).split(0.5)
    result = DARTSSearch(ops=TABULAR_OPS, channels=2, n_cells=1, n_nodes=1, batch_size=32).search(train, valid, steps=1)
    store.add("images", [0.1, 0.2, 0.3], result)  # an image-task embedding: no meta-feature names
    shape = (2, len(TABULAR_OPS))
    assert store.warm_start(table_descriptor(credit_task), ops=TABULAR_OPS, shape=shape) is None


def test_a_checkpoint_never_resumes_on_other_data(tmp_path, credit_small):
    ckpt = tmp_path / "search.pt"
    search = DARTSSearch(ops=TABULAR_OPS, channels=2, n_cells=1, n_nodes=1, batch_size=32)
    train, valid = table_data(_task(credit_small, "Status")).split(0.5)
    search.search(train, valid, steps=2, checkpoint=ckpt)
    other_train, other_valid = table_data(_task(credit_small, "Home")).split(0.5)  # same rows, other label
    with pytest.raises(ResumeError, match=r"other settings: data \('[0-9a-f]{16}' in the file, '[0-9a-f]{16}' now\)"):
        search.search(other_train, other_valid, steps=2, checkpoint=ckpt)


def test_batches_of_one_table_row_are_refused(credit_task):
    train, valid = table_data(credit_task).split(0.5)
    with pytest.raises(InputError, match="at least 2 rows"):
        DARTSSearch(ops=TABULAR_OPS, channels=2, n_cells=1, n_nodes=1, batch_size=1).search(train, valid, steps=1)


def test_the_split_never_shows_the_test_rows_and_the_encoder_only_the_train_rows(tmp_path, make_csv, credit_small):
    marked = ImageData(torch.arange(40, dtype=torch.float32).view(40, 1, 1, 1), torch.arange(40) % 2)
    train, valid, test = split_data(marked, seed=3)
    seen = set(train.x.flatten().tolist()) | set(valid.x.flatten().tolist())
    assert len(train) == 20 and len(valid) == 10 and not seen & set(test.x.flatten().tolist())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, task = load_data(make_csv(credit_small), label="Status", seed=3)
    assert task is not None and task.label == "Status" and len(data) == len(credit_small)
    train, valid, _ = split_data(data, seed=3)
    x = data.x.flatten(1)
    scaled = ~((x == 0) | (x == 1)).all(0)
    assert train.x.flatten(1)[:, scaled].mean(0).abs().max() < 1e-4  # centred on the training rows
    assert valid.x.flatten(1)[:, scaled].mean(0).abs().max() > 1e-2
