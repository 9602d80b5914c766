"""The learned performance predictor and its cost-aware warm start, on the shipped meta-dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autometa import Task
from autometa.metadb import SQLMetaDB, load_shipped
from autometa.spaces import config_key, default_initial_configs, get_space, in_space
from autometa.warmstart import PerformancePredictor, PredictorWarmStarter, normalized_regret

METADATA = Path(__file__).resolve().parents[1] / "metadata"
pytestmark = pytest.mark.skipif(not (METADATA / "MANIFEST.json").is_file(), reason="no shipped meta-dataset")
METRIC = "balanced_accuracy"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    store = SQLMetaDB(f"sqlite:///{tmp_path_factory.mktemp('pred') / 'm.sqlite'}", shipped=False)
    load_shipped(store, METADATA)
    yield store
    store.close()


@pytest.fixture(scope="module")
def held_out(db):
    tasks = db.tasks()
    m = db.performance_matrix(METRIC)
    clf = sorted(t for t in m.index if tasks.loc[t, "problem_type"] in ("binary", "multiclass"))
    return clf[::10]  # 12 tasks the predictor never sees


@pytest.fixture(scope="module")
def predictor(db, held_out):
    return PerformancePredictor(metric=METRIC, problem_type="binary", n_models=2).fit(db, exclude=held_out)


def test_the_predictor_ranks_a_held_out_tasks_configurations(db, held_out, predictor):
    from scipy.stats import spearmanr

    assert not set(held_out) & set(predictor.tasks_)
    matrix = db.performance_matrix(METRIC)
    configs = db.configurations()
    hashes = [h for h in matrix.columns if h in configs]
    regret = normalized_regret(matrix.loc[held_out, hashes], greater_is_better=True)
    mf = db.metafeatures()
    rhos, top_regret = [], []
    for t in held_out:
        mean, std = predictor.predict(mf.loc[t].to_dict(), [configs[h] for h in hashes])
        true = matrix.loc[t, hashes].to_numpy(dtype=float)
        ok = np.isfinite(true)
        rhos.append(spearmanr(mean[ok], true[ok]).statistic)
        top_regret.append(regret.loc[t, hashes[int(np.argmax(mean))]])
        assert (std >= 0).all()
    # learned across tasks, it ranks an unseen task's configurations far better than chance
    assert np.median(rhos) > 0.5
    assert np.mean(top_regret) < regret.median(axis=1).mean()


def test_predicted_fit_time_grows_with_the_rows(predictor):
    space = get_space("binary")
    configs = [dict(c) for c in default_initial_configs(space, _FakeTask())]
    small = predictor.predict_fit_seconds(500, 10, 2, configs)
    large = predictor.predict_fit_seconds(50_000, 10, 2, configs)
    assert (large > small).all() and (small > 0).all()
    svm = [c["family"] for c in configs].index("svm")
    linear = [c["family"] for c in configs].index("linear")
    assert large[svm] / small[svm] > large[linear] / small[linear]  # a kernel method grows faster


def test_the_predictor_start_is_cost_aware_diverse_and_keeps_every_default(db, held_out, breast_cancer):
    task = Task(breast_cancer, label="target", time_budget_s=60)
    space = get_space("binary", families=["hist_gradient_boosting", "random_forest", "linear", "svm", "knn"])
    starter = PredictorWarmStarter(db, exclude=held_out, n_samples=100, n_models=2)
    sugg = starter.suggest(task, space, n=12)
    assert len(sugg) == 12 and all(in_space(s.config, space) for s in sugg)
    assert len({config_key(s.config) for s in sugg}) == 12
    defaults = {config_key(c) for c in default_initial_configs(space, task)}
    assert defaults <= {config_key(s.config) for s in sugg}  # never less than the defaults start
    picks = [s for s in sugg if s.source == "predictor"]
    assert picks and all("predicted trial time" in s.explanation for s in picks)
    assert len({s.config["family"] for s in picks}) >= 2  # spread over families
    assert starter.suggest(task, space, n=12) == sugg  # seeded: the same list again


class _FakeTask:
    metric = "accuracy"


@pytest.mark.slow
def test_zero_shot_suggestions_come_from_the_predictor_with_the_default_second(db, tmp_path, monkeypatch, iris):
    from autometa import suggest_config

    monkeypatch.setenv("AUTOMETA_CACHE_DIR", str(tmp_path))
    task = Task(iris, label="target")
    sugg = suggest_config(task, n=4, metadb=db)
    assert sorted(s.source for s in sugg[:2]) == ["default", "predictor"]
    assert all(s.source in ("predictor", "default") for s in sugg) and len(sugg) == 4
    scores = [s.predicted_score for s in sugg if s.source == "predictor"]
    assert scores == sorted(scores, reverse=True)  # best predicted first
    assert "learned on" in next(s for s in sugg if s.source == "predictor").explanation
    # the guard: the default first unless the predictor's best is predicted better by more
    # than `zero_shot_guard` spreads; the threshold just below and just above the measured z
    # flips the order
    unguarded = PredictorWarmStarter(db, zero_shot_guard=None).ranked(task, n=4)
    assert [s.source for s in unguarded][:2] == ["predictor", "default"]
    best, default = unguarded[0], unguarded[1]
    z = (best.predicted_score - default.predicted_score) / np.hypot(best.extra["uncertainty"],
                                                                    default.extra["uncertainty"])
    assert default.extra["z_of_best"] == pytest.approx(z)
    keeps = PredictorWarmStarter(db, zero_shot_guard=z - 1e-6).ranked(task, n=4)
    assert keeps[0].config == best.config and keeps[1].source == "default"
    holds = PredictorWarmStarter(db, zero_shot_guard=z + 1e-6).ranked(task, n=4)
    assert holds[0].source == "default" and "spreads" in holds[0].explanation
    assert holds[1].config == best.config  # the predictor's best comes second
    assert (sugg[0].source == "default") == (z <= 4.0)  # the shipped threshold


def test_a_cached_predictor_survives_a_recorded_run_and_is_refitted_past_its_tolerance(db, tmp_path, monkeypatch,
                                                                                       diabetes):
    # Each recorded run adds a task to the store; refitting on every run would spend seconds
    # of each run's budget. A copy of the store, so that the module's store stays as loaded.
    import shutil

    from autometa import tune

    monkeypatch.setenv("AUTOMETA_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "copy.sqlite"
    shutil.copy(str(db.url).removeprefix("sqlite:///"), copy)
    store = SQLMetaDB(f"sqlite:///{copy}", shipped=False)
    first = PerformancePredictor.for_metadb(store, metric="rmse", problem_type="regression", n_models=1)
    assert first.store_counts_[0] == store.info()["tasks"]
    tune(Task(diabetes, label="target", seed=0), n_trials=2, families=["linear"], metadb=store, record=True,
         time_budget_s=60)
    assert store.info()["tasks"] == first.store_counts_[0] + 1
    again = PerformancePredictor.for_metadb(store, metric="rmse", problem_type="regression", n_models=1)
    assert again.store_counts_ == first.store_counts_  # loaded from the cache, not refitted
    refit = PerformancePredictor.for_metadb(store, metric="rmse", problem_type="regression", n_models=1, stale_tasks=0)
    assert refit.store_counts_[0] == first.store_counts_[0] + 1  # refitted on the store as it is now
    store.close()
