"""Surrogate transfer: ensemble weights on constructed cases, the surrogate cache, the
SMAC and Optuna integrations on real data, and search-space pruning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autometa import tune
from autometa.metadb import SQLMetaDB
from autometa.metadb._shipped import load_shipped
from autometa.optimizers import OptunaOptimizer, SMACOptimizer
from autometa.spaces import FAMILY_KEY, fixed_design, get_space
from autometa.transfer import (
    RGPE,
    TSTR,
    SpaceLayout,
    SurrogateStore,
    TaskSurrogate,
    TransferModel,
    bounding_box,
    encode_configs,
    expected_improvement,
    fit_surrogate_store,
    fix_unimportant,
    ranking_losses,
)

METADATA = Path(__file__).resolve().parents[1] / "metadata"


def test_ranking_losses_count_misordered_pairs():
    y = np.array([1.0, 2.0, 3.0])
    samples = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    # perfect, fully reversed, one swap, all tied (ties count as misranked)
    assert ranking_losses(samples, y).tolist() == [0.0, 3.0, 1.0, 3.0]


def test_expected_improvement_prefers_low_mean_and_high_spread():
    ei = expected_improvement(np.array([0.0, -1.0, 0.0]), np.array([0.1, 0.1, 1.0]), best=0.0)
    assert ei[1] > ei[2] > ei[0] > 0


# -- constructed stores: one stored task is the new task's surface, one its mirror image --


def _surface(X: np.ndarray, sign: float) -> np.ndarray:
    """A smooth loss over HGB's normalized hyperparameters (learning rate and leaves dominate)."""
    return sign * (np.nan_to_num(X, nan=0.5) ** 2 @ np.linspace(1.0, 0.2, X.shape[1]))


@pytest.fixture(scope="module")
def constructed():
    space = get_space("binary", families=["hist_gradient_boosting"])
    configs = fixed_design("binary", "hist_gradient_boosting", n=32, seed=0)
    X = encode_configs(space, configs)
    same = TaskSurrogate.fit("same", space, X, _surface(X, 1.0))
    mirror = TaskSurrogate.fit("mirror", space, X, _surface(X, -1.0))
    mf = pd.DataFrame({"NumberOfInstances": [1000.0, 50.0], "NumberOfFeatures": [10.0, 300.0]}, index=["same", "mirror"])
    store = SurrogateStore("balanced_accuracy", "binary", {"same": same, "mirror": mirror}, mf,
                           {"same": configs[:3], "mirror": configs[-3:]}, "test")
    # the new task's observations: other points of the same space, on the "same" surface
    new = fixed_design("binary", "hist_gradient_boosting", n=12, seed=7)
    Xn = encode_configs(space, new)
    return space, store, Xn, _surface(Xn, 1.0)


def test_rgpe_gives_the_identical_task_the_weight_and_drops_the_mirror(constructed):
    space, store, Xn, yn = constructed
    ens = RGPE(store, space, seed=0).fit(Xn, yn)
    assert ens.weights.get("same", 0) > 0.6
    assert "mirror" not in ens.weights  # ranks worse than chance: dropped
    assert sum(ens.weights.values()) == pytest.approx(1.0)
    mean, var = ens.predict(Xn)
    assert np.corrcoef(mean, yn)[0, 1] > 0.9 and (var > 0).all()


def test_tstr_weights_follow_ranking_agreement_and_metafeatures(constructed):
    space, store, Xn, yn = constructed
    # before any observation only meta-features speak: the near task weighs more
    ens = TSTR(store, space, metafeatures={"NumberOfInstances": 900.0, "NumberOfFeatures": 12.0})
    ens.fit(np.empty((0, len(space))), np.empty(0))
    assert ens.weights.get("same", 0) > ens.weights.get("mirror", 0)
    # with observations, ranking agreement dominates even against misleading meta-features
    ens = TSTR(store, space, metafeatures={"NumberOfInstances": 50.0, "NumberOfFeatures": 300.0}).fit(Xn, yn)
    assert ens.weights.get("same", 0) > 0 and ens.weights.get("mirror", 0) == 0


def test_ensemble_proposals_beat_random_on_the_transferred_surface(constructed):
    space, store, _, _ = constructed
    pool = fixed_design("binary", "hist_gradient_boosting", n=64, seed=3)
    P = encode_configs(space, pool)
    truth = _surface(P, 1.0)
    ens = RGPE(store, space).fit(P[:3], truth[:3])
    mean, var = ens.predict(P)
    pick = int(np.argmax(expected_improvement(mean, np.sqrt(var), ens.incumbent_value())))
    assert (truth < truth[pick]).mean() < 0.2  # among the best fifth of the pool


# -- the cache of stored surrogates, on real shipped evaluations --------------------------


@pytest.fixture(scope="module")
def small_metadata(tmp_path_factory):
    if not (METADATA / "MANIFEST.json").is_file():
        pytest.skip("no shipped meta-dataset")
    d = tmp_path_factory.mktemp("meta")
    for f in ("MANIFEST.json", "suite.csv", "configurations.csv"):
        shutil.copy(METADATA / f, d / f)
    (d / "evaluations").mkdir()
    (d / "metafeatures").mkdir()
    suite = pd.read_csv(METADATA / "suite.csv")
    clf = suite[suite.problem_type != "regression"].task_id.str.replace("/", "__")
    files = [f for f in sorted((METADATA / "evaluations").glob("*.csv")) if f.stem in set(clf)][:6]
    for f in files:
        shutil.copy(f, d / "evaluations" / f.name)
        mf = METADATA / "metafeatures" / f"{f.stem}.json"
        if mf.is_file():
            shutil.copy(mf, d / "metafeatures" / mf.name)
    return d


@pytest.fixture(scope="module")
def small_db(small_metadata, tmp_path_factory):
    db = SQLMetaDB(f"sqlite:///{tmp_path_factory.mktemp('tdb') / 'm.sqlite'}")
    load_shipped(db, small_metadata)
    yield db
    db.close()


@pytest.mark.slow
def test_stored_surrogates_are_fitted_once_and_cached(small_db, tmp_path, monkeypatch):
    store = fit_surrogate_store(small_db, metric="balanced_accuracy", problem_type="binary", cache=tmp_path)
    assert len(store.tasks) >= 5
    files = list((tmp_path / "surrogates").glob("*.joblib"))
    assert len(files) == 1

    def no_refit(*args, **kwargs):
        raise AssertionError("a cached store was refitted")

    monkeypatch.setattr(TaskSurrogate, "fit", no_refit)
    again = fit_surrogate_store(small_db, metric="balanced_accuracy", problem_type="binary", cache=tmp_path)
    assert again.fingerprint == store.fingerprint and again.tasks == store.tasks
    monkeypatch.undo()
    # another metric is another store
    other = fit_surrogate_store(small_db, metric="accuracy", problem_type="binary", cache=tmp_path)
    assert other.fingerprint != store.fingerprint and len(list((tmp_path / "surrogates").glob("*.joblib"))) == 2
    # a stored surrogate reproduces its task's ranking of the stored configurations
    task = store.tasks[0]
    row = small_db.performance_matrix("balanced_accuracy").loc[task].dropna()
    confs = small_db.configurations()
    space = get_space("binary")
    mean, _ = store.surrogates[task].predict(SpaceLayout(space), encode_configs(space, [confs[h] for h in row.index]))
    assert np.corrcoef(mean, -row.to_numpy())[0, 1] > 0.8


@pytest.mark.slow
def test_a_recorded_run_refits_only_what_changed(small_metadata, tmp_path, monkeypatch, breast_cancer):
    # Each recorded run adds a task to the store; the cached surrogates of the unchanged
    # tasks are reused instead of refitting all of them inside the next run's budget.
    from autometa import Task, tune

    store_db = SQLMetaDB(f"sqlite:///{tmp_path / 'own.sqlite'}")
    load_shipped(store_db, small_metadata)
    first = fit_surrogate_store(store_db, metric="balanced_accuracy", problem_type="binary", cache=tmp_path)
    tune(Task(breast_cancer, label="target", seed=0), n_trials=2, families=["linear"], metadb=store_db,
         record=True, isolation="none")
    fitted = []
    fit = TaskSurrogate.fit

    def counting_fit(name, *args, **kwargs):
        fitted.append(name)
        return fit(name, *args, **kwargs)

    monkeypatch.setattr(TaskSurrogate, "fit", counting_fit)
    again = fit_surrogate_store(store_db, metric="balanced_accuracy", problem_type="binary", cache=tmp_path)
    assert again.fingerprint != first.fingerprint  # the store changed
    assert set(first.tasks) <= set(again.tasks) and not set(fitted) & set(first.tasks)
    assert len(list((tmp_path / "surrogates").glob("*.joblib"))) == 1  # rewritten, not piled up
    store_db.close()


# -- inside the optimizers, on real data ------------------------------------------------


@pytest.fixture(scope="module")
def real_store(small_db, tmp_path_factory):
    return fit_surrogate_store(small_db, metric="balanced_accuracy", problem_type="binary",
                               cache=tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["smac", "optuna"])
def test_tune_with_transfer_on_real_data(backend, small_task, real_store):
    space = get_space("binary", families=["knn", "decision_tree"], seed=0)
    ens = RGPE(real_store, space, seed=0)
    res = tune(small_task, backend=backend, n_trials=7, time_budget_s=120, isolation="none", transfer=ens,
               space=space, initial_configs=[], refit=False)
    assert len(res.history) == 7 and sum(r.ok for r in res.history) >= 6
    # the ensemble was fitted on the trials: it knows the observations and has weights
    assert len(ens._y) >= 3 and ens.weights
    assert {r.config[FAMILY_KEY] for r in res.history} <= {"knn", "decision_tree"}


def test_transfer_model_is_smacs_surrogate(real_store):
    space = get_space("binary", families=["linear", "knn"], seed=0)
    opt = SMACOptimizer(space, seed=0, transfer=RGPE(real_store, space))
    assert isinstance(opt._smac._config_selector._model, TransferModel)
    opt2 = OptunaOptimizer(space, seed=0, transfer=TSTR(real_store, space))
    assert type(opt2._study.sampler).__name__ == "TransferSampler"


# -- pruning -------------------------------------------------------------------------------


def test_bounding_box_shrinks_to_the_given_configurations():
    space = get_space("binary", seed=0)
    configs = fixed_design("binary", "random_forest", n=6, seed=0)
    box = bounding_box(space, configs, margin=0.0)
    assert list(box[FAMILY_KEY].choices) == ["random_forest"]
    for name in box:
        if name.startswith("random_forest:") and hasattr(box[name], "lower"):
            vals = [c[name] for c in configs if name in c]
            assert box[name].lower <= min(vals) and box[name].upper >= max(vals)
    assert not any(n.startswith("svm:") for n in box)
    for c in box.sample_configuration(20):
        c.check_valid_configuration()


def test_fix_unimportant_turns_weak_hyperparameters_into_constants():
    space = get_space("binary", families=["knn", "decision_tree"], seed=0)
    imp = {"knn:n_neighbors": 0.8, "knn:weights": 0.01, "decision_tree:max_depth": 0.02}
    pruned, fixed = fix_unimportant(space, imp, {"knn:weights": "distance"}, threshold=0.05)
    assert set(fixed) == {"knn:weights", "decision_tree:max_depth"}
    for c in pruned.sample_configuration(20):
        d = dict(c)
        if d[FAMILY_KEY] == "knn":
            assert d["knn:weights"] == "distance"
    assert json.dumps(sorted(pruned["knn:n_neighbors"].__dict__)) == json.dumps(sorted(space["knn:n_neighbors"].__dict__))


@pytest.mark.slow
def test_cli_tune_with_transfer_and_pruning(small_metadata, make_csv, credit_small, tmp_path, _private_metadb):
    from typer.testing import CliRunner

    from autometa.cli import app

    load_shipped(SQLMetaDB(_private_metadb), small_metadata)
    monkey_cache = tmp_path / "cache"
    runner = CliRunner(env={"AUTOMETA_CACHE_DIR": str(monkey_cache)})
    data = make_csv(credit_small)
    res = runner.invoke(app, ["tune", str(data), "--label", "Status", "--transfer", "tstr", "--prune", "box",
                              "--n-trials", "3", "--families", "knn,decision_tree,linear", "--time-budget", "120",
                              "--out", str(tmp_path / "out"), "--no-record"])
    assert res.exit_code == 0, res.output
    assert "transfer: tstr over" in res.stderr and "pruned space: bounding box" in res.stderr
    assert list((monkey_cache / "surrogates").glob("*.joblib"))
    for args, match in ((["--transfer", "magic"], "--transfer must be"),
                        (["--transfer", "rgpe", "--backend", "random"], "model-based optimizer"),
                        (["--prune", "everything"], "--prune must be")):
        res = runner.invoke(app, ["tune", str(data), "--label", "Status", *args, "--out", str(tmp_path / "o2")])
        assert res.exit_code == 2 and match in res.stderr, res.output
        assert not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_metadb_prepare_fits_once_what_first_runs_would(small_metadata, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from autometa.cli import app

    monkeypatch.setenv("AUTOMETA_CACHE_DIR", str(tmp_path / "cache"))
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    db = SQLMetaDB(url)
    load_shipped(db, small_metadata)
    db.close()
    res = CliRunner().invoke(app, ["metadb", "prepare", "--url", url])
    assert res.exit_code == 0, res.output
    assert "classification (balanced_accuracy), performance predictor:" in res.stdout
    assert "regression (rmse), performance predictor: skipped" in res.stdout  # no stored regression task
    for part in ("predictors", "surrogates", "importance"):
        assert list((tmp_path / "cache" / part).iterdir()), part

    def no_refit(*args, **kwargs):
        raise AssertionError("prepared models were fitted again")

    monkeypatch.setattr(TaskSurrogate, "fit", no_refit)
    store = SQLMetaDB(url)
    fit_surrogate_store(store, metric="balanced_accuracy", problem_type="binary")  # from the cache
    store.close()
