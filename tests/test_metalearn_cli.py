"""``autometa metalearn`` on the new algorithms and task families (the sinusoid run is in test_cli.py)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from autometa.cli import app  # noqa: E402
from autometa.metalearn import make_convnet  # noqa: E402

runner = CliRunner()



def _run(*args: str):
    return runner.invoke(app, ["metalearn", *args])


@pytest.mark.slow  # about 3 s: two CLI runs with test-set scoring
def test_glyph_protonet_run_writes_accuracy_with_ci_and_resumes(tmp_path):
    pytest.importorskip("HersheyFonts")
    out = tmp_path / "proto"
    common = ["--algo", "protonet", "--tasks", "glyphs", "--ways", "5", "--shots", "1", "--queries", "3",
              "--meta-batch", "2", "--width", "8", "--test-tasks", "10", "--out", str(out)]  # fmt: skip
    res = _run(*common, "--iterations", "2")
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    acc = results["test_accuracy"]["after_0_steps"]
    assert 0.0 <= acc["mean"] <= 1.0 and acc["ci95"] > 0 and results["test_split_classes"] == 198
    assert set(torch.load(out / "init.pt")) == {n for n, _ in make_convnet(None, channels=(8,) * 4).named_parameters()}
    assert (out / "metrics.csv").read_text().splitlines()[0] == "iteration,seconds,train_query_loss,val_accuracy"
    res = _run(*common, "--iterations", "3")
    assert res.exit_code == 0 and "resuming at meta-iteration 2" in res.stderr
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2 + 1


def test_metasgd_on_line_tasks_saves_the_learned_rates(tmp_path):
    out = tmp_path / "msgd"
    res = _run("--algo", "metasgd", "--tasks", "line", "--iterations", "3", "--meta-batch", "4", "--test-tasks", "20",
               "--out", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    state = torch.load(out / "init.pt")
    assert any(name.startswith("inner_lr:") for name in state)
    assert set(json.loads((out / "results.json").read_text())["test_mse"]) == {
        "after_0_steps",
        "after_1_steps",
        "after_10_steps",
    }


def test_alpaca_run_prints_its_predictive_calibration(tmp_path):
    out = tmp_path / "alpaca"
    res = _run("--algo", "alpaca", "--tasks", "sinusoid", "--iterations", "3", "--meta-batch", "4", "--test-tasks", "20",
               "--out", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "predictive calibration: test NLL" in res.stdout and "90% interval coverage" in res.stdout
    assert "coverage90" in json.loads((out / "results.json").read_text())["test_calibration"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "protonet", "--tasks", "sinusoid"], "classifies"),
        (["--algo", "relation", "--tasks", "line"], "--algo relation classifies"),
        (["--algo", "alpaca", "--tasks", "glyphs"], "--algo alpaca regresses"),
        (["--algo", "maml", "--full-context"], "--full-context applies to --algo matching only"),
        (["--algo", "bayes"], "--algo must be one of"),
        (["--tasks", "mnist"], "--tasks must be"),
        (["--tasks", "omniglot"], "--data-dir"),
        (["--device", "tpu"], "--device must be"),
        (["--tasks", "harmonic", "--shots", "0"], "at least 1"),
    ],
)
def test_metalearn_refuses_bad_options(tmp_path, args, message):
    res = _run(*args, "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and message in res.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_metalearn_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    res = _run("--device", "cuda", "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and "no CUDA GPU" in res.stderr
