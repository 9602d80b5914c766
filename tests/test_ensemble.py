"""Ensemble selection: out-of-fold predictions of real trials, Caruana selection, the
fitted ensemble estimator, and the ensemble as tune's final model (API, files, resume,
CLI, estimators, meta-database, regression)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks
from typer.testing import CliRunner

from autometa import AutoMetaClassifier, AutoMetaRegressor, InputError, Task, load_model, tune
from autometa.cli import app
from autometa.ensemble import EnsembleClassifier, EnsembleRegressor, OOFPool, caruana_selection, score_matrix
from autometa.evaluation import Evaluator, ReplayEvaluator, make_splits, prediction_matrix
from autometa.metadb import SQLMetaDB
from autometa.metrics import tracked_metrics
from autometa.spaces import build_pipeline, config_to_dict, family_defaults, get_space

FAMS = ["linear", "knn", "decision_tree"]
runner = CliRunner()


def _task(frame: pd.DataFrame, label: str, **kw) -> Task:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(frame, label=label, **kw)


def _configs(task: Task, families=FAMS) -> list[dict]:
    """Each family's default plus two seeded random configurations of the space."""
    space = get_space(task.problem_type, families=families, seed=0)
    return [config_to_dict(c) for c in family_defaults(space)] + [config_to_dict(c) for c in space.sample_configuration(2)]


@pytest.fixture(scope="module")
def credit_task(credit_small) -> Task:
    return _task(credit_small, "Status", time_budget_s=300)


@pytest.fixture(scope="module")
def credit_oof(credit_task):
    """Real trials' results (with out-of-fold predictions) on 600 rows of credit_data."""
    with Evaluator(credit_task, isolation="none") as ev:
        return [ev.evaluate(c) for c in _configs(credit_task)]


# ---------------------------------------------------------------------------- out-of-fold predictions
def test_trials_keep_out_of_fold_probabilities_averaged_over_repeats(credit_task, credit_oof):
    res = credit_oof[0]
    labels = np.unique(credit_task.y.to_numpy())
    assert res.ok and res.oof.dtype == np.float32 and res.oof.shape == (600, len(labels))
    assert np.allclose(res.oof.sum(axis=1), 1.0, atol=1e-5)  # probabilities, every row validated (2x5-fold CV)
    # The mean of the two repeats' fold-model predictions, recomputed by hand.
    splits = make_splits(credit_task)
    pipe = build_pipeline(res.config, credit_task.X, credit_task.problem_type, seed=credit_task.seed)
    total = np.zeros((600, len(labels)))
    for tr, va in splits:
        model = clone(pipe).fit(credit_task.X.iloc[tr], credit_task.y.to_numpy()[tr])
        total[va] += prediction_matrix(model, credit_task.X.iloc[va], labels)
    np.testing.assert_allclose(res.oof, total / 2, atol=1e-5)


def test_rows_no_split_validated_are_nan(credit_task):
    idx = np.arange(600)
    holdout = [(idx[:450], idx[450:])]
    with Evaluator(credit_task, isolation="none", splits=holdout) as ev:
        res = ev.evaluate(_configs(credit_task)[0])
    assert np.isnan(res.oof[:450]).all() and np.isfinite(res.oof[450:]).all()
    labels = np.unique(credit_task.y.to_numpy())
    y = credit_task.y.to_numpy()[450:]
    assert balanced_accuracy_score(y, labels[np.argmax(res.oof[450:], axis=1)]) == pytest.approx(res.fold_scores[0])


def test_regression_trials_keep_out_of_fold_values(diabetes):
    task = _task(diabetes, "target")
    with Evaluator(task, isolation="none") as ev:
        res = ev.evaluate(_configs(task, ["linear"])[0])
    assert res.oof.shape == (len(diabetes),) and np.isfinite(res.oof).all()
    rmse = float(np.sqrt(np.mean((res.oof - diabetes["target"].to_numpy()) ** 2)))
    assert 45 < rmse < 65  # ridge on diabetes


# ---------------------------------------------------------------------------- Caruana selection
def test_fast_scores_equal_scikit_learns(credit_task, credit_oof, iris, diabetes):
    """Selection scores ensembles with its own fast metrics: equal to the Metric functions."""
    from autometa.ensemble._selection import _scorer

    cases = [(credit_task, [r.oof for r in credit_oof])]
    for frame, label, fams in ((iris, "target", ["linear", "knn"]), (diabetes, "target", ["linear", "knn"])):
        task = _task(frame, label)
        with Evaluator(task, isolation="none") as ev:
            cases.append((task, [ev.evaluate(c).oof for c in _configs(task, fams)[:3]]))
    for task, preds in cases:
        y = task.y.to_numpy()
        labels = np.unique(y) if task.is_classification else None
        for metric in tracked_metrics(task.problem_type):
            fast = _scorer(metric, y, labels)
            for p in preds[:3]:
                p = np.asarray(p, dtype=float)
                assert fast(p) == pytest.approx(score_matrix(metric, y, p, labels), rel=1e-9, abs=1e-12), metric.name


def test_caruana_selection_on_real_trials(credit_task, credit_oof):
    y = credit_task.y.to_numpy()
    labels = np.unique(y)
    preds = [r.oof for r in credit_oof]
    sel = caruana_selection(preds, y, "balanced_accuracy", labels=labels, size=20)
    assert sum(sel.weights) == pytest.approx(1.0) and len(sel.weights) == len(preds)
    # Weights are pick counts; the first pick is the best single candidate.
    assert sel.picks[0] == int(np.argmax(sel.single_scores))
    counts = np.bincount(sel.picks, minlength=len(preds))
    np.testing.assert_allclose(sel.weights, counts / counts.sum())
    # The score is that of the weighted average, recomputed with scikit-learn.
    avg = sum(w * p.astype(float) for w, p in zip(sel.weights, preds, strict=True))
    assert sel.score == pytest.approx(balanced_accuracy_score(y, labels[np.argmax(avg, axis=1)]))
    assert sel.score >= max(sel.single_scores)  # the best prefix: never below the best single candidate
    assert sel.score == max(sel.trajectory) and len(sel.picks) == sel.trajectory.index(sel.score) + 1
    # Each greedy round picked the best addition (checked by brute force on round 2).
    if len(sel.picks) >= 2:
        first = preds[sel.picks[0]].astype(float)
        scores = [balanced_accuracy_score(y, labels[np.argmax((first + p) / 2, axis=1)]) for p in preds]
        assert sel.trajectory[1] == pytest.approx(max(scores))


def test_caruana_selection_respects_a_lower_is_better_metric(diabetes):
    task = _task(diabetes, "target")
    with Evaluator(task, isolation="none") as ev:
        preds = [ev.evaluate(c).oof for c in _configs(task, ["linear", "knn", "decision_tree"])]
    y = task.y.to_numpy()
    sel = caruana_selection(preds, y, "rmse", size=15)
    assert sel.score <= min(sel.single_scores)
    avg = sum(w * p.astype(float) for w, p in zip(sel.weights, preds, strict=True))
    assert sel.score == pytest.approx(float(np.sqrt(np.mean((avg - y) ** 2))))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"size": 0}, "'size' parameter"), ({"preds": []}, "at least one candidate"),
    ({"preds": "shapes"}, "one shape"), ({"preds": "nan"}, "No row was predicted"),
])
def test_caruana_selection_refuses_bad_input(kwargs, match, credit_oof, credit_task):
    y = credit_task.y.to_numpy()
    preds = [r.oof for r in credit_oof[:2]]
    if kwargs.get("preds") == "shapes":
        preds = [preds[0], preds[1][:, :1]]
    elif kwargs.get("preds") == "nan":
        preds = [np.full_like(preds[0], np.nan), preds[1]]
    elif "preds" in kwargs:
        preds = kwargs["preds"]
    with pytest.raises(InputError, match=match):
        caruana_selection(preds, y, "accuracy", labels=np.unique(y), size=kwargs.get("size", 5))


def test_the_pool_keeps_only_the_best_on_disk_and_in_memory(tmp_path, credit_oof):
    pool = OOFPool(tmp_path / "oof", nbest=3)
    for i, r in enumerate(credit_oof):
        pool.add(i, -r.scores["balanced_accuracy"], r.oof, fold_models=[LogisticRegression()])
    best = sorted(range(len(credit_oof)), key=lambda i: (-credit_oof[i].scores["balanced_accuracy"], i))[:3]
    assert [c.number for c in pool.candidates()] == best
    assert sorted(p.name for p in (tmp_path / "oof").iterdir()) == sorted(f"{i}.npy" for i in best)
    again = OOFPool(tmp_path / "oof", nbest=3)
    assert again.restore((i, -r.scores["balanced_accuracy"]) for i, r in enumerate(credit_oof)) == 3
    np.testing.assert_array_equal(again.candidates()[0].oof, pool.candidates()[0].oof)
    assert pool.fold_models(best[0]) is not None
    pool.close()
    assert pool.fold_models(best[0]) is None


# ---------------------------------------------------------------------------- the ensemble estimator
@parametrize_with_checks([
    EnsembleClassifier([LogisticRegression(max_iter=500), DecisionTreeClassifier(max_depth=3, random_state=0)], [0.7, 0.3]),
    EnsembleRegressor([LinearRegression(), DecisionTreeRegressor(max_depth=3, random_state=0)]),
])
def test_the_ensemble_is_a_scikit_learn_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_the_ensemble_averages_its_members(credit_task):
    X, y = credit_task.X, credit_task.y.to_numpy()
    a, b = (build_pipeline(c, X, "binary").fit(X, y) for c in _configs(credit_task)[:2])
    ens = EnsembleClassifier.from_fitted([a, b], [3, 1], np.unique(y), n_features=X.shape[1])
    np.testing.assert_allclose(ens.predict_proba(X), 0.75 * prediction_matrix(a, X, ens.classes_)
                               + 0.25 * prediction_matrix(b, X, ens.classes_))
    assert set(ens.predict(X)) <= set(ens.classes_)
    with pytest.raises(InputError, match="'weights' parameter of EnsembleClassifier"):
        EnsembleClassifier([a, b], [1.0, -1.0]).fit(X, y)


# ---------------------------------------------------------------------------- tune's final model
@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, credit_task):
    out = tmp_path_factory.mktemp("ens") / "run"
    url = f"sqlite:///{out.parent / 'metadb.sqlite'}"
    result = tune(credit_task, backend="random", n_trials=8, families=FAMS, isolation="none", out_dir=out,
                  record=True, metadb=SQLMetaDB(url, shipped=False))
    return result, out, url


def test_the_final_model_is_the_ensemble_when_it_beats_the_best_single(ensemble_run, credit_small):
    result, out, _ = ensemble_run
    info = result.setup["ensemble"]
    assert info["used"] and info["model"] == "refit" and "budget allows the refit" in info["reason"]
    ens = result.ensemble
    assert ens["score"] > ens["single_best_score"] and len(ens["members"]) >= 2
    assert sum(m["weight"] for m in ens["members"]) == pytest.approx(1.0)
    assert isinstance(result.model, EnsembleClassifier) and len(result.model.estimators_) == len(ens["members"])
    lb = result.leaderboard
    assert lb.loc[0, "trial"] == "ensemble" and lb.loc[0, "balanced_accuracy"] == ens["score"]
    summary = json.loads((out / "result.json").read_text())
    assert summary["final_model"] == "ensemble (refit)" and summary["ensemble"]["members"] == ens["members"]
    saved = load_model(out / "model.joblib")
    assert saved.ensemble == ens
    pred = saved.predict(credit_small)
    assert {"prediction", "proba_bad", "proba_good"} == set(pred.columns)
    assert (pred["prediction"] == np.where(pred["proba_bad"] > pred["proba_good"], "bad", "good")).all()


def test_the_ensemble_goes_into_the_meta_database(ensemble_run):
    result, out, url = ensemble_run
    db = SQLMetaDB(url, shipped=False)
    rows = db.ensembles()
    assert len(rows) == len(result.ensemble["members"]) and rows["ensemble_id"].nunique() == 1
    assert rows["weight"].sum() == pytest.approx(1.0) and rows["run_key"].iloc[0] == str(out.resolve())
    assert rows["score"].iloc[0] == pytest.approx(result.ensemble["score"])
    assert db.info()["ensembles"] == 1


@pytest.mark.slow
def test_a_resumed_run_selects_over_the_trials_it_did_not_redo(tmp_path, credit_task):
    out = tmp_path / "run"
    tune(credit_task, backend="random", n_trials=3, families=FAMS, isolation="none", out_dir=out)
    assert sorted(p.name for p in (out / "oof").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    second = tune(credit_task, backend="random", n_trials=5, families=FAMS, isolation="none", out_dir=out)
    assert second.n_resumed == 3 and second.setup["ensemble"]["n_candidates"] == 5
    # The resumed trials have no fold models: forcing the fold-model ensemble falls back to a refit.
    third = tune(credit_task, backend="random", n_trials=5, families=FAMS, isolation="none", out_dir=out,
                 ensemble_model="folds")
    if third.ensemble is not None:
        assert third.ensemble["model"] == "refit" and "no fold models" in third.setup["ensemble"]["reason"]


def test_a_trial_read_back_on_resume_has_its_predictions(tmp_path, credit_task, monkeypatch):
    # The run dies while saving a trial's out-of-fold predictions: that trial must not be in
    # trials.jsonl yet (it runs again), or a resume would hold a trial the ensemble can never use.
    calls = []
    add = OOFPool.add

    def dying_add(self, number, *args, **kwargs):
        calls.append(number)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return add(self, number, *args, **kwargs)

    monkeypatch.setattr(OOFPool, "add", dying_add)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        tune(credit_task, backend="random", n_trials=5, families=FAMS, isolation="none", out_dir=out)
    lines = [json.loads(ln) for ln in (out / "trials.jsonl").read_text().splitlines()]
    ok = [r["number"] for r in lines if r["status"] == "ok"]
    assert ok and all((out / "oof" / f"{n}.npy").is_file() for n in ok)


@pytest.mark.slow
def test_fold_models_make_the_ensemble_without_a_refit(credit_task):
    result = tune(credit_task, backend="random", n_trials=8, families=FAMS, isolation="none", ensemble_model="folds")
    assert result.ensemble is not None and result.ensemble["model"] == "folds"
    n_splits = len(make_splits(credit_task))
    assert len(result.model.estimators_) == n_splits * len(result.ensemble["members"])
    assert result.model.weights_.sum() == pytest.approx(1.0)
    proba = result.model.predict_proba(credit_task.X)
    assert proba.shape == (600, 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_fold_models_too_big_to_save_in_the_time_left_give_the_single_best(credit_task, monkeypatch):
    """In ``auto`` mode the fold-model ensemble is made only when loading and saving its
    members' fold models fits in the time left (a fold ensemble of forests can be hundreds
    of MB); otherwise the best single trial is refit and the budget is kept."""
    import autometa._tune as tune_module

    searched = []  # after the last trial: no time to refit the members (folds first), and none for their I/O
    real_cost = tune_module._refit_cost
    monkeypatch.setattr(tune_module, "_refit_cost",
                        lambda r, kind, *rest, **kw: 1e6 if searched else real_cost(r, kind, *rest, **kw))
    monkeypatch.setattr(tune_module, "_FOLD_IO_BYTES_PER_S", 1.0)
    result = tune(credit_task, backend="random", n_trials=8, families=FAMS, isolation="none", time_budget_s=600,
                  callbacks=[lambda p: searched.append(True) if p.n_trials == 8 else None])
    info = result.setup["ensemble"]
    assert result.ensemble is None and not isinstance(result.model, EnsembleClassifier)
    assert "no time to load and save the members' fold models" in info["reason"]
    assert "the best single trial is refit instead" in info["reason"]


def test_no_ensemble_and_a_replay_evaluator_keep_the_single_best(credit_task):
    off = tune(credit_task, backend="random", n_trials=2, families=["linear"], isolation="none", ensemble_size=0)
    assert off.ensemble is None and "turned off" in off.setup["ensemble"]["reason"]
    assert "weight" not in off.leaderboard.columns and off.model.__class__.__name__ == "Pipeline"
    space = get_space("binary", families=["linear"], seed=0)
    table = {}
    for i, c in enumerate(space.sample_configuration(5)):
        cfg = config_to_dict(c)
        table[str(i)] = (cfg, {"balanced_accuracy": 0.6 + i / 100}, "ok", 0.1)
    from autometa.spaces import config_key

    table = {config_key(v[0]): v for v in table.values()}
    replay = tune(credit_task, backend="random", n_trials=3, space=space, evaluator=ReplayEvaluator(
        table, space, metric="balanced_accuracy"), refit=False, warm_start=None)
    assert replay.ensemble is None and "ReplayEvaluator" in replay.setup["ensemble"]["reason"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"ensemble_size": -1}, "'ensemble_size' parameter"), ({"ensemble_nbest": 0}, "'ensemble_nbest' parameter"),
    ({"ensemble_model": "stack"}, "'ensemble_model' parameter"),
])
def test_tune_refuses_bad_ensemble_settings(credit_task, kwargs, match):
    with pytest.raises(InputError, match=match):
        tune(credit_task, n_trials=1, **kwargs)


@pytest.mark.slow
def test_regression_ends_in_an_ensemble_too(diabetes, tmp_path):
    task = _task(diabetes, "target", time_budget_s=300)
    result = tune(task, backend="random", n_trials=8, families=["linear", "knn", "decision_tree"], isolation="none",
                  out_dir=tmp_path / "run")
    info = result.setup["ensemble"]
    assert info["n_candidates"] == 8
    if result.ensemble is not None:
        assert isinstance(result.model, EnsembleRegressor)
        assert result.ensemble["score"] < result.ensemble["single_best_score"]  # RMSE: lower is better
    pred = load_model(tmp_path / "run" / "model.joblib").predict(diabetes)
    assert list(pred.columns) == ["prediction"]
    assert float(np.sqrt(np.mean((pred["prediction"] - diabetes["target"]) ** 2))) < 60


# ---------------------------------------------------------------------------- estimators and CLI
@pytest.mark.slow
def test_estimators_predict_with_the_ensemble(credit_small, diabetes):
    X, y = credit_small.drop(columns="Status"), credit_small["Status"]
    clf = AutoMetaClassifier(n_trials=6, optimizer="random", isolation="none", families=FAMS).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (600, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert (clf.predict(X) == clf.classes_[np.argmax(proba, axis=1)]).all()
    assert (clf.ensemble_ is None) == (not isinstance(clf.model_, EnsembleClassifier))
    reg = AutoMetaRegressor(n_trials=4, optimizer="random", isolation="none", families=["linear", "knn"],
                            ensemble_size=0).fit(diabetes.drop(columns="target"), diabetes["target"])
    assert reg.ensemble_ is None and reg.predict(diabetes.drop(columns="target")).shape == (len(diabetes),)


@pytest.mark.slow
def test_cli_ensemble_flags_predict_and_info(tmp_path, make_csv, credit_small):
    data = make_csv(credit_small, name="credit.csv")
    out = tmp_path / "run"
    res = runner.invoke(app, ["tune", str(data), "--label", "Status", "--n-trials", "6", "--backend", "random",
                              "--families", ",".join(FAMS), "--time-budget", "120", "--ensemble-size", "10",
                              "--out", str(out), "--no-record"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["setup"]["ensemble"]["size"] == 10
    if summary["ensemble"] is not None:
        assert "final model: ensemble (refit)" in res.stdout and "ensemble of" in res.stderr
    new = make_csv(credit_small.drop(columns="Status").head(20), name="new.csv")
    res = runner.invoke(app, ["predict", str(out / "model.joblib"), str(new)])
    assert res.exit_code == 0 and res.stdout.splitlines()[0] == "prediction,proba_bad,proba_good"
    res = runner.invoke(app, ["info", str(out)])
    assert res.exit_code == 0 and '"final_model"' in res.stdout


def test_cli_no_ensemble_and_a_bad_ensemble_size(tmp_path, make_csv, credit_small):
    data = make_csv(credit_small, name="credit.csv")
    off = tmp_path / "off"
    res = runner.invoke(app, ["tune", str(data), "--label", "Status", "--n-trials", "1", "--backend", "random",
                              "--families", "linear", "--time-budget", "120", "--no-ensemble", "--out", str(off),
                              "--no-record"])
    assert res.exit_code == 0, res.output
    assert json.loads((off / "result.json").read_text())["final_model"] == "single" and not (off / "oof").exists()
    bad = runner.invoke(app, ["tune", str(data), "--label", "Status", "--ensemble-size", "0", "--out",
                              str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--ensemble-size must be at least 1" in bad.stderr and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()
