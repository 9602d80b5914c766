"""Probabilistic matrix factorization and the negative-transfer guard, on real stored
evaluations of the shipped meta-dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from autometa import tune
from autometa.exceptions import InputError
from autometa.metadb import SQLMetaDB
from autometa.metadb._shipped import load_shipped
from autometa.spaces import FAMILY_KEY, encode_configs, get_space
from autometa.transfer import (
    META,
    PMF,
    TRANSFERS,
    GuardedEnsemble,
    GuardedTransfer,
    PMFTransfer,
    fit_pmf_matrix,
    fit_pmf_store,
    normal_scores,
    transfer_for_task,
)

METADATA = Path(__file__).resolve().parents[1] / "metadata"
METRIC = "balanced_accuracy"
N_TASKS = 30


@pytest.fixture(scope="module")
def pmf_db(tmp_path_factory):
    """The first 30 classification tasks of the shipped meta-dataset (256 configurations each)."""
    if not (METADATA / "MANIFEST.json").is_file():
        pytest.skip("no shipped meta-dataset")
    d = tmp_path_factory.mktemp("meta")
    for f in ("MANIFEST.json", "suite.csv", "configurations.csv"):
        shutil.copy(METADATA / f, d / f)
    (d / "evaluations").mkdir()
    (d / "metafeatures").mkdir()
    suite = pd.read_csv(METADATA / "suite.csv")
    clf = set(suite[suite.problem_type != "regression"].task_id.str.replace("/", "__"))
    for f in [f for f in sorted((METADATA / "evaluations").glob("*.csv")) if f.stem in clf][:N_TASKS]:
        shutil.copy(f, d / "evaluations" / f.name)
        mf = METADATA / "metafeatures" / f"{f.stem}.json"
        if mf.is_file():
            shutil.copy(mf, d / "metafeatures" / mf.name)
    db = SQLMetaDB("sqlite://", shipped=False)
    load_shipped(db, d)
    yield db
    db.close()


@pytest.fixture(scope="module")
def losses(pmf_db) -> pd.DataFrame:
    """Tasks x configurations, losses (1 - balanced accuracy), complete tasks only."""
    m = pmf_db.performance_matrix(METRIC)
    m = m.loc[m.notna().mean(axis=1) >= 0.9]
    return 1.0 - m


def _stored(pmf_db, losses, task):
    confs = pmf_db.configurations()
    row = losses.loc[task].dropna()
    row = row[[h in confs for h in row.index]]
    space = get_space("binary")
    return space, encode_configs(space, [confs[h] for h in row.index]), row.to_numpy(dtype=float)


def test_normal_scores_keep_the_order_and_the_gaps():
    z = normal_scores(np.array([0.3, np.nan, 0.1, 0.2, 0.2]))
    assert np.isnan(z[1]) and z[2] < z[3] == z[4] < z[0]
    assert abs(np.nanmean(z)) < 1e-9


def test_pmf_recovers_a_planted_low_rank_structure(losses, pmf_db):
    """A rank-3 matrix planted from the real stored scores (their best rank-3
    approximation plus noise), 30% of its entries hidden: the factorization predicts the
    hidden entries' order within each task far better than the configurations' mean."""
    rng = np.random.default_rng(0)
    Z = np.vstack([normal_scores(r) for r in losses.to_numpy(dtype=float)])
    Z = np.nan_to_num(Z, nan=0.0)
    mu = Z.mean(axis=0)
    u, s, vt = np.linalg.svd(Z - mu, full_matrices=False)
    planted = mu + (u[:, :3] * s[:3]) @ vt[:3] + 0.05 * rng.standard_normal(Z.shape)
    hidden = rng.random(planted.shape) < 0.3
    seen = pd.DataFrame(np.where(hidden, np.nan, planted), index=losses.index, columns=losses.columns)
    store = fit_pmf_matrix(seen, pmf_db.configurations(), rank=3, reg=0.1, n_iter=50)
    assert store.rank == 3 and len(store.tasks) == len(losses) and len(store.configs) == losses.shape[1]
    recon = store.factors[:, 0][None, :] + store.task_factors @ store.factors[:, 1:].T
    rho_pmf, rho_mean = [], []
    for i in range(len(losses)):
        h = hidden[i]
        truth = planted[i][h]
        rho_pmf.append(spearmanr(recon[i][h], truth).statistic)
        rho_mean.append(spearmanr(store.factors[:, 0][h], truth).statistic)
    assert np.mean(rho_pmf) > 0.9
    assert np.mean(rho_pmf) > np.mean(rho_mean) + 0.05


def test_pmf_predictions_improve_as_trials_are_told(pmf_db, losses):
    """Leave-one-task-out on real stored scores: the held-out task's ranking of its
    untold configurations, as predicted after 0, 5 and 25 told trials."""
    rho: dict[int, list[float]] = {0: [], 10: [], 40: []}
    sd_told = []
    confs = pmf_db.configurations()
    for task in losses.index[:4]:
        store = fit_pmf_matrix(losses.drop(index=task), confs)
        assert task not in store.tasks
        space, X, y = _stored(pmf_db, losses, task)
        perm = np.random.default_rng(0).permutation(len(y))
        test = perm[40:]
        for n in rho:
            pmf = PMF(store, space, seed=0).fit(X[perm[:n]], y[perm[:n]])
            mean, var = pmf.predict(X[test])
            assert np.all(var > 0)
            rho[n].append(spearmanr(mean, y[test]).statistic)
        told = X[perm[:40]]
        sd_told.append(np.sqrt(pmf.predict(told)[1]).mean() / np.sqrt(PMF(store, space).predict(told)[1]).mean())
    mean_rho = {n: float(np.mean(v)) for n, v in rho.items()}
    assert mean_rho[0] > 0.3  # the average stored task already ranks a new task's configurations
    assert mean_rho[0] < mean_rho[10] < mean_rho[40], mean_rho
    assert np.mean(sd_told) < 0.9  # told trials shrink the uncertainty where they were told


def test_guard_shifts_to_the_target_model_when_the_sources_are_contradicted(pmf_db, losses):
    """Real data, a task whose ranking is inverted (its stored losses negated): as soon as
    the guard judges, the meta-model loses all its weight, while on the task as stored it
    keeps most of it. The meta-model is judged as conditioned on the trials, so once PMF
    has learnt the inversion from them (a negative weight on the shared configuration
    quality) it earns weight back, and keeps less of it than on the task as stored."""
    confs = pmf_db.configurations()
    for task in losses.index[:2]:
        store = fit_pmf_matrix(losses.drop(index=task), confs)
        space, X, y = _stored(pmf_db, losses, task)
        told = np.random.default_rng(1).permutation(len(y))[:20]
        weights = {}
        for name, yy in (("as stored", y), ("inverted", -y)):
            guard = GuardedEnsemble(PMF(store, space, seed=0), seed=0)
            for n in range(1, len(told) + 1):
                guard.fit(X[told[:n]], yy[told[:n]])
            weights[name] = dict(guard.history)
        stored, inverted = weights["as stored"], weights["inverted"]
        assert stored[3] == inverted[3] == 1.0  # too few trials to judge
        assert all(inverted[n] == 0.0 for n in (4, 5, 6)), inverted
        assert all(stored[n] > 0.5 for n in (4, 5, 6)), stored
        assert np.mean([stored[n] for n in range(4, 21)]) > np.mean([inverted[n] for n in range(4, 21)]) + 0.1
    # without the meta-model the ensemble predicts with the task's own model alone
    guard = GuardedEnsemble(PMF(store, space, seed=0), seed=0).fit(X[told[:5]], -y[told[:5]])
    assert guard.weights[META] == 0.0
    mean, _ = guard.predict(X)
    own, _ = guard._target_predict(X)
    np.testing.assert_allclose(mean, own)
    assert guard.candidates(space) == []  # nor its stored configurations


def test_transfers_are_registered_by_name(pmf_db, small_task):
    assert {"rgpe", "tstr", "pmf", "guarded"} <= set(TRANSFERS)
    space = get_space("binary", families=["knn", "linear"], seed=0)
    mf = pmf_db.metafeatures().iloc[0].dropna().to_dict()
    ens = transfer_for_task(small_task, "pmf", metadb=pmf_db, space=space, metafeatures=mf)
    assert isinstance(ens, PMF) and len(ens.store.tasks) >= N_TASKS - 5
    # the PMF candidates are the stored configurations of the space's families only
    assert {c[FAMILY_KEY] for c in ens.candidates(space)} == {"knn", "linear"}
    guarded = GuardedTransfer(pmf_db).build(small_task, space, metafeatures=mf)
    assert isinstance(guarded, GuardedEnsemble)
    with pytest.raises(InputError, match="'method' parameter of transfer_for_task"):
        transfer_for_task(small_task, "magic", metadb=pmf_db)
    with pytest.raises(InputError, match="'rank' parameter of PMFTransfer must be at least 1; got 0"):
        PMFTransfer(pmf_db, rank=0)
    with pytest.raises(InputError, match="'transfer' parameter of tune must be one of rgpe, tstr, pmf, guarded"):
        tune(small_task, transfer="magic", n_trials=1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["smac", "optuna"])
def test_tune_with_pmf_on_a_real_task(backend, small_task, pmf_db):
    space = get_space("binary", families=["knn", "decision_tree"], seed=0)
    res = tune(small_task, optimizer=backend, transfer="pmf", metadb=pmf_db, n_trials=6, time_budget_s=120,
               isolation="none", space=space, warm_start="none", refit=False,
               metafeatures=pmf_db.metafeatures().iloc[0].dropna().to_dict())
    assert len(res.history) == 6 and sum(r.ok for r in res.history) >= 5
    assert res.setup["transfer"]["name"] == "pmf" and res.setup["transfer"]["stored_tasks"] >= N_TASKS - 5
    assert {r.config[FAMILY_KEY] for r in res.history} <= {"knn", "decision_tree"}


def test_bad_pmf_inputs_are_refused(pmf_db):
    one = pd.DataFrame({"a": [0.1], "b": [0.2]}, index=["t"])
    with pytest.raises(InputError, match="at least 2 stored tasks and 3 configurations"):
        fit_pmf_matrix(one, {})
    with pytest.raises(InputError, match="'rank' parameter of fit_pmf_matrix must be at least 1; got 0"):
        fit_pmf_matrix(one, {}, rank=0)
    store = fit_pmf_store(pmf_db, metric=METRIC, problem_type="binary", rank=2)
    with pytest.raises(InputError, match="'scale_sd' parameter of PMF must be positive; got -1"):
        PMF(store, get_space("binary"), scale_sd=-1)
    with pytest.raises(InputError, match="'min_observations' parameter of GuardedEnsemble must be at least 3"):
        GuardedEnsemble(PMF(store, get_space("binary")), min_observations=2)


def test_cli_offers_every_transfer_and_refuses_others(make_csv, credit_small, tmp_path):
    from typer.testing import CliRunner

    from autometa.cli import app

    data = make_csv(credit_small)
    res = CliRunner().invoke(app, ["tune", str(data), "--label", "Status", "--transfer", "magic",
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "--transfer must be one of rgpe, tstr, pmf, guarded, none; got 'magic'" in res.stderr
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()
