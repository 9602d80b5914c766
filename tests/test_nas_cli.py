"""autometa nas search | train | metanas through typer's CliRunner on the sub-application."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from autometa.cli._nas import nas_app  # noqa: E402
from autometa.nas import Genotype  # noqa: E402

runner = CliRunner()
TINY = ["--channels", "2", "--cells", "1", "--nodes", "1", "--batch-size", "16", "--device", "cpu"]



@pytest.mark.slow  # two searches and two task embeddings: 1-3 s
def test_search_writes_a_genotype_and_a_store_warm_starts_the_next_search(tmp_path):
    store = tmp_path / "store"
    first = runner.invoke(nas_app, ["search", "--classes", "0,1", "--steps", "2", *TINY, "--store", str(store),
                                    "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert Genotype.load(tmp_path / "a" / "genotype.json").n_nodes == 1
    second = runner.invoke(nas_app, ["search", "--classes", "0,2", "--steps", "2", *TINY, "--store", str(store),
                                     "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert json.loads((tmp_path / "b" / "result.json").read_text())["warm_start"][0] == "a"
    assert "warm start from 'a'" in second.output


def test_train_a_genotype_from_scratch(tmp_path):
    Genotype(normal=(("sep_conv_3x3", 0), ("skip_connect", 1)), reduce=(("max_pool_3x3", 0), ("skip_connect", 1))).save(
        tmp_path / "g.json")
    result = runner.invoke(nas_app, ["train", str(tmp_path / "g.json"), "--classes", "0,1", "--steps", "5",
                                     "--channels", "2", "--cells", "2", "--device", "cpu", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads((tmp_path / "t" / "result.json").read_text())["test_accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--guard", "magic"], "--guard must be one of"),
        (["search", "--ops", "all"], "--ops must be darts, fewshot or tabular"),
        (["search", "--data", "nothing.csv"], "an existing .npz file or a table with a label; got 'nothing.csv'"),
        (["search", "--label", "y"], "'label' parameter of load_data applies to a CSV or Parquet table; 'digits' is not"),
        (["search", "--classes", "1,x"], "--classes must be integers"),
        (["search", "--data", "glyphs:Klingon"], "Unknown glyph alphabet 'Klingon'"),
        (["search", "--order", "third"], "'order'"),
        (["train", "missing.json"], "does not exist"),
        (["metanas", "--benchmark", "omniglot"], "needs --omniglot-root"),
        (["metanas", "--benchmark", "imagenet"], "--benchmark must be glyphs or omniglot"),
        (["metanas", "--outer", "sgd"], "--outer must be reptile or fomaml"),
        (["metanas", "--hard-fraction", "1.5"], "--hard-fraction must be between 0 and 1"),
    ],
)
def test_refused_input_exits_2_with_one_line_and_no_traceback(args, message, tmp_path):
    result = runner.invoke(nas_app, [*args, "--out", str(tmp_path / "o")] if args[0] != "train" else args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow  # renders the glyph alphabets and meta-trains twice: ~10 s
def test_metanas_writes_a_meta_architecture_and_scores_the_pruned_network(tmp_path):
    out = tmp_path / "metanas"
    args = ["metanas", "--iterations", "2", "--meta-batch", "1", "--test-tasks", "3", "--channels", "2",
            "--image-size", "12", "--device", "cpu", "--out", str(out)]
    res = runner.invoke(nas_app, args)
    assert res.exit_code == 0, res.output
    meta = Genotype.load(out / "meta_genotype.json")
    assert meta.n_nodes == 2
    results = json.loads((out / "results.json").read_text())
    assert results["iterations"] == 2 and len(results["records"]) == 2
    accuracy = results["accuracy"]
    assert accuracy["pruned"] == accuracy["unpruned"]  # the default hard last half: adaptation runs the pruned network
    assert 0.0 <= accuracy["pruned"]["mean"] <= 1.0
    res = runner.invoke(nas_app, args)  # the same run again: the checkpoint is complete, nothing is retrained
    assert res.exit_code == 0, res.output
    assert json.loads((out / "results.json").read_text())["records"] == results["records"]
    res = runner.invoke(nas_app, [*args[:2], "3", *args[3:]])  # another schedule cannot reuse the checkpoint
    assert res.exit_code == 2 and "other settings" in res.output and "Traceback" not in res.output
