"""kNN warm start and zero-shot suggestions on the shipped meta-dataset (real evaluations)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from autometa import Task, tune
from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metadb._shipped import load_shipped
from autometa.spaces import config_key
from autometa.warmstart import KNNWarmStarter, MetaFeatureIndex, PortfolioWarmStarter, suggest_config

METADATA = Path(__file__).resolve().parents[1] / "metadata"
pytestmark = pytest.mark.skipif(not (METADATA / "MANIFEST.json").is_file(), reason="no shipped meta-dataset")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    store = SQLMetaDB(f"sqlite:///{tmp_path_factory.mktemp('ws') / 'm.sqlite'}")
    load_shipped(store, METADATA)
    yield store
    store.close()


@pytest.fixture(scope="module")
def knn(db):
    return MetaFeatureIndex(db, metric="balanced_accuracy", problem_type="binary")


def test_a_stored_task_is_its_own_nearest_neighbour_unless_excluded(db, knn):
    mf = db.metafeatures()
    name = knn.tasks[0]
    own = mf.loc[name].to_dict()
    nbs = knn.neighbors(own)
    assert nbs[0].task == name and nbs[0].distance == pytest.approx(0.0, abs=1e-9)
    assert [n.distance for n in nbs] == sorted(n.distance for n in nbs)
    loo = MetaFeatureIndex(db, metric="balanced_accuracy", problem_type="binary", exclude=[name])
    assert name not in [n.task for n in loo.neighbors(own)]


def test_suggestions_are_each_neighbours_best_distinct_configurations(db, knn):
    matrix = db.performance_matrix("balanced_accuracy")
    own = db.metafeatures().loc[knn.tasks[1]].to_dict()
    sugg = knn.best_of_neighbors(own, n=10)
    assert 0 < len(sugg) <= 10
    assert len({config_key(s.config) for s in sugg}) == len(sugg)
    for s in sugg:
        assert s.predicted_score == pytest.approx(matrix.loc[s.neighbor.task].max())
        assert s.neighbor.task in s.explanation


def test_only_tasks_of_the_same_kind_are_neighbours(db):
    tasks = db.tasks()
    reg = MetaFeatureIndex(db, metric="rmse", problem_type="regression")
    assert set(tasks.loc[reg.tasks, "problem_type"]) == {"regression"}


def test_suggest_config_keeps_the_package_default_first_or_second(db, iris):
    task = Task(iris, label="target")
    sugg = suggest_config(task, n=5, metadb=db, method="knn")
    assert len(sugg) == 5
    sources = [s.source for s in sugg]
    assert "default" in sources[:2] and sources.count("default") == 1
    assert "learned default" in sources[:3] and sources.count("learned default") == 1
    assert sugg[sources.index("default")].config["family"] == "hist_gradient_boosting"
    assert all(s.neighbor is not None and np.isfinite(s.predicted_score) for s in sugg if s.source == "knn")


@pytest.mark.slow
def test_warm_started_tune_evaluates_the_suggestions_first(db, breast_cancer):
    task = Task(breast_cancer, label="target", time_budget_s=300)
    from autometa.spaces import get_space

    initial = [s.config for s in KNNWarmStarter(db).suggest(task, get_space("binary"), n=15)]
    families = {c["family"] for c in initial}
    assert {"hist_gradient_boosting", "random_forest", "linear", "knn"} <= families  # family defaults kept
    result = tune(task, optimizer="smac", n_trials=6, warm_start=KNNWarmStarter(db), n_initial=15, isolation="none")
    assert [config_key(r.config) for r in result.history[:6]] == [config_key(c) for c in initial[:6]]
    assert result.setup["warm_start"]["name"] == "knn" and result.setup["warm_start"]["n"] == 15
    assert result.best_score > 0.9


def test_normalized_regret_is_zero_for_the_best_and_one_for_the_worst_or_failed():
    import pandas as pd

    from autometa.warmstart import normalized_regret

    m = pd.DataFrame({"a": [0.9, 10.0], "b": [0.7, 12.0], "c": [np.nan, 11.0]}, index=["t1", "t2"])
    r = normalized_regret(m, greater_is_better=True)
    assert r.loc["t1"].tolist() == [0.0, 1.0, 1.0] and r.loc["t2"].tolist() == [1.0, 0.0, 0.5]
    assert normalized_regret(m, greater_is_better=False).loc["t2"].tolist() == [0.0, 1.0, 0.5]


def test_greedy_portfolio_lowers_mean_regret_monotonically(db):
    from autometa.warmstart import GreedyPortfolio, normalized_regret

    pf = GreedyPortfolio(db, metric="balanced_accuracy", problem_type="binary", size=8)
    assert len(pf.portfolio) == 8 and len({config_key(c) for c in pf.portfolio}) == 8
    assert all(a >= b for a, b in zip(pf.curve, pf.curve[1:], strict=False))
    # the first pick is the single configuration with the lowest mean regret over the tasks
    m = db.performance_matrix("balanced_accuracy").loc[pf.tasks]
    r = normalized_regret(m.dropna(axis=1, how="all"), greater_is_better=True)
    assert pf.curve[0] == pytest.approx(r.mean().min())
    # leave-one-task-out: the held-out task is not used
    loo = GreedyPortfolio(db, metric="balanced_accuracy", problem_type="binary", size=4, exclude=[pf.tasks[0]])
    assert pf.tasks[0] not in loo.tasks
    assert [s.source for s in pf.top(3)] == ["portfolio"] * 3


def test_a_conditioned_portfolio_starts_from_the_nearest_tasks(db, knn):
    from autometa.warmstart import GreedyPortfolio, normalized_regret

    own = db.metafeatures().loc[knn.tasks[2]].to_dict()
    pf = GreedyPortfolio(db, metric="balanced_accuracy", problem_type="binary", size=6,
                         metafeatures=own, neighbors=3, exclude=[knn.tasks[2]])
    near = [nb.task for nb in MetaFeatureIndex(db, metric="balanced_accuracy", problem_type="binary",
                                               exclude=[knn.tasks[2]]).neighbors(own)]
    assert pf.near_tasks == [t for t in near if t in pf.tasks][:3]
    r = normalized_regret(db.performance_matrix("balanced_accuracy").loc[pf.tasks].dropna(axis=1, how="all"),
                          greater_is_better=True)
    # the first pick minimizes the near tasks' mean regret; the far tasks only break ties
    first = r.loc[pf.near_tasks, pf.hashes[0]].mean()
    assert first == pytest.approx(r.loc[pf.near_tasks].mean().min())
    assert "nearest stored tasks" in pf.top(1)[0].explanation
    with pytest.raises(InputError, match="metafeatures"):
        GreedyPortfolio(db, metric="balanced_accuracy", problem_type="binary", neighbors=3)


def test_tunability_against_package_and_learned_defaults(db):
    from autometa.defaults import tunability

    rows = {r.family: r for r in tunability(db, metric="balanced_accuracy", problem_type="binary")}
    assert {"hist_gradient_boosting", "svm", "linear"} <= set(rows)
    for r in rows.values():
        assert r.vs_package_default >= 0  # the best of 32 includes the default itself
        assert r.learned_default["family"] == r.family and r.n_configs == 32
    # learned defaults beat package defaults on average (Probst et al.: they roughly halve tunability)
    assert np.mean([r.vs_learned_default for r in rows.values()]) < np.mean([r.vs_package_default for r in rows.values()])


@pytest.mark.slow
def test_own_runs_do_not_hide_a_family_from_the_tunability_table(tmp_path, breast_cancer):
    # A recorded run adds configurations scored on its one task; the stored tasks must still
    # count as covering the family's shared design.
    from autometa import tune
    from autometa.defaults import tunability

    store = SQLMetaDB(f"sqlite:///{tmp_path / 'own.sqlite'}")
    load_shipped(store, METADATA)
    tune(Task(breast_cancer, label="target", seed=0), n_trials=6, backend="random", families=["svm"], metadb=store,
         record=True, isolation="none", warm_start="none")
    rows = {r.family: r for r in tunability(store, metric="balanced_accuracy", problem_type="binary")}
    assert "svm" in rows and rows["svm"].n_tasks >= 100 and rows["svm"].n_configs == 32
    store.close()


def test_a_task_far_from_the_metadb_falls_back_to_default_then_portfolio(db, iris):
    from autometa.metafeatures import extract

    task = Task(iris, label="target")
    far = {k: (v * 1e4 + 1e4 if np.isfinite(v) else v) for k, v in extract(task).items()}
    sugg = suggest_config(task, n=4, metadb=db, metafeatures=far, method="knn")
    assert [s.source for s in sugg] == ["default", "learned default", "portfolio", "portfolio"]
    assert "far from every stored task" in sugg[0].explanation


def test_hyperparameter_importance_by_fanova(db):
    from autometa.defaults import hyperparameter_importance

    imp = hyperparameter_importance(db, family="svm", metric="balanced_accuracy", problem_type="binary", max_tasks=6)
    assert set(imp.index) == {"C", "gamma_scale", "class_weight"}
    assert imp["mean"].sum() == pytest.approx(1.0, abs=1e-6)  # shares of explained variance
    assert imp.index[0] == "gamma_scale"  # the RBF width matters most (as in the tunability literature)
    assert (imp["tasks"] == 6).all()


def test_top_level_suggest_config(db, iris):
    import autometa

    sugg = autometa.suggest_config(Task(iris, label="target"), n=3, metadb=db, method="knn")
    assert len(sugg) == 3 and "default" in [s.source for s in sugg[:2]]


def test_the_starters_restrict_to_the_space_and_keep_the_family_defaults(db, iris):
    from autometa.spaces import get_space, in_space

    task = Task(iris, label="target")
    space = get_space("multiclass", families=["svm", "linear", "knn"])
    for starter in (KNNWarmStarter(db), PortfolioWarmStarter(db), PortfolioWarmStarter(db, neighbors=5)):
        sugg = starter.suggest(task, space, n=8)
        assert 0 < len(sugg) <= 8 and all(in_space(s.config, space) for s in sugg)
        assert len({config_key(s.config) for s in sugg}) == len(sugg)
        assert {s.config["family"] for s in sugg if s.source == "default"} == {"svm", "linear", "knn"}
        assert any(s.source in ("knn", "portfolio", "learned default") for s in sugg)  # meta-knowledge used


def test_tune_falls_back_to_the_defaults_on_a_metadb_without_this_kind(tmp_path, iris):
    from autometa.exceptions import AutometaWarning

    empty = SQLMetaDB(f"sqlite:///{tmp_path / 'empty.sqlite'}", shipped=False)  # no task at all
    task = Task(iris, label="target", time_budget_s=120)
    with pytest.warns(AutometaWarning, match="Starting from each family's default"):
        result = tune(task, warm_start="knn", metadb=empty, n_trials=2, optimizer="random", isolation="none",
                      families=["linear", "knn"])
    ws = result.setup["warm_start"]
    assert ws["name"] == "defaults" and ws["fallback_from"] == "knn"
    assert [r.config["family"] for r in result.history] == ["linear", "knn"]  # the two family defaults, in order


def test_meta_starts_move_configurations_too_slow_for_the_budget_last(db, credit, credit_small):
    # Trial times predicted from the stored fit times, scaled to this table's rows under the
    # protocol the tuner will choose: on the 4,454-row credit table a 30 s budget gets 5-fold
    # CV and cannot afford some stored forests and SVMs, which a cost-aware start moves
    # behind everything else; a 10 s budget gets one holdout (a fifth of the fits); a long
    # budget moves nothing.
    import warnings

    from autometa.spaces import get_space
    from autometa.warmstart import predicted_trial_seconds, trial_shape

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = Task(credit, label="Status", time_budget_s=30)
        holdout = Task(credit, label="Status", time_budget_s=10)
        long = Task(credit, label="Status", time_budget_s=36_000)
        small = Task(credit_small, label="Status", time_budget_s=30)
    assert trial_shape(short)[0] == 5 and trial_shape(holdout)[0] == 1
    space = get_space("binary")
    for cls in (PortfolioWarmStarter, KNNWarmStarter):
        plain = cls(db, cost_aware=False).suggest(short, space, n=25)
        costed = cls(db).suggest(short, space, n=25)
        assert sorted(config_key(s.config) for s in costed) == sorted(config_key(s.config) for s in plain)
        late = [s.extra.get("deferred", False) for s in costed]
        assert any(late), cls  # something is too slow for 30 s on 4,454 rows
        assert late == sorted(late)  # every deferred suggestion after every kept one
        assert all(s.extra["predicted_seconds"] > 7.5 and "moved last" in s.explanation for s in costed if s.extra.get("deferred"))
        kept = [config_key(s.config) for s in costed if not s.extra.get("deferred")]
        assert kept == [config_key(s.config) for s in plain if config_key(s.config) in set(kept)]  # order kept
        assert not any(s.extra.get("deferred") for s in cls(db).suggest(long, space, n=25))
    configs = [s.config for s in PortfolioWarmStarter(db, cost_aware=False).suggest(short, space, n=25)]
    big, little = predicted_trial_seconds(db, short, configs), predicted_trial_seconds(db, small, configs)
    known = np.isfinite(big)
    assert known.all() and np.all(big > little)  # more rows, longer trials (never stored: the family's median)
    once = predicted_trial_seconds(db, holdout, configs)
    assert np.all(once < big / 3)  # one fit on 75% of the rows, not five on 80%


def test_regression_tune_evaluates_the_slow_boosting_after_the_family_defaults(credit_small):
    from autometa.warmstart import DefaultsWarmStarter

    task = Task(credit_small.head(300), label="Amount", problem_type="regression", seed=0)
    kw = dict(families=["hist_gradient_boosting", "linear"], n_trials=3, protocol="holdout", isolation="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shipped = tune(task, warm_start="defaults", **kw)
        single = tune(task, warm_start=DefaultsWarmStarter(second_defaults=False), **kw)
    configs = [r.config for r in shipped.history]
    assert [c["family"] for c in configs[:2]] == ["hist_gradient_boosting", "linear"]
    assert configs[2]["hist_gradient_boosting:max_iter"] == 1000 and shipped.history[2].ok
    assert [r.config for r in single.history][:2] == configs[:2]
    assert single.history[2].config.get("hist_gradient_boosting:max_iter") != 1000  # the optimizer's own third


def test_max_stored_distance_is_each_stored_tasks_nearest_neighbour_computed_in_blocks(knn, monkeypatch):
    """The largest distance from a stored task to its nearest other stored task: the same
    whether the pairs are computed at once or a few tasks at a time (bounded memory)."""
    import autometa.warmstart._knn as knn_module

    X, w = knn._X, knn._w  # the scaled stored meta-features and their weights
    d = (w * np.abs(X[:, None, :] - X[None, :, :])).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    expected = float(d.min(axis=1).max())
    assert knn.max_stored_distance() == pytest.approx(expected, rel=1e-12)
    monkeypatch.setattr(knn_module, "_PAIR_BLOCK_ELEMENTS", 500)  # a handful of tasks per block
    fresh = type(knn).__new__(type(knn))
    fresh.__dict__.update(knn.__dict__, _max_stored=None)
    assert fresh.max_stored_distance() == pytest.approx(expected, rel=1e-12)
