"""Symbolic defaults on a constructed meta-database whose best learning rate follows a
known formula of the number of features."""

from __future__ import annotations

import math

import pytest

from autometa.defaults import symbolic_defaults, symbolic_table
from autometa.exceptions import InputError
from autometa.metadb import EvalRecord, SQLMetaDB
from autometa.spaces import fixed_design
from autometa.transfer import fit_surrogate_store

FAMILY = "hist_gradient_boosting"
LR = f"{FAMILY}:learning_rate"


def _best_lr(p: float) -> float:
    return 0.5 * p ** -0.5


@pytest.fixture(scope="module")
def constructed(tmp_path_factory):
    """Eight tasks from 1 to 2,048 features; balanced accuracy peaks where the learning rate
    is 0.5 / sqrt(n_features) and barely depends on anything else."""
    db = SQLMetaDB(f"sqlite:///{tmp_path_factory.mktemp('sym') / 'm.sqlite'}")
    db.add_source("constructed", "own")
    design = fixed_design("binary", FAMILY, n=32, seed=0)
    leaves = f"{FAMILY}:max_leaf_nodes"
    for i, p in enumerate([1, 3, 8, 20, 60, 150, 500, 2048]):
        name = f"task{i}"
        db.add_task(name, source="constructed", problem_type="binary", n_rows=500, n_features=p)
        db.add_metafeatures(name, {"NumberOfFeatures": p, "NumberOfInstances": 500.0, "ClassEntropy": 1.0})
        recs = []
        for c in design:
            score = 0.9 - 0.05 * math.log(c[LR] / _best_lr(p)) ** 2 - 0.002 * math.log(c[leaves])
            recs.append(EvalRecord(config=c, scores={"balanced_accuracy": score}))
        db.add_evaluations(name, recs, source="constructed")
    store = fit_surrogate_store(db, metric="balanced_accuracy", problem_type="binary",
                                cache=tmp_path_factory.mktemp("cache"))
    yield db, store
    db.close()


def test_the_formula_of_the_best_learning_rate_is_recovered(constructed):
    db, store = constructed
    rows = {r.hyperparameter: r for r in symbolic_defaults(db, metric="balanced_accuracy", problem_type="binary",
                                                           store=store)}
    lr = rows["learning_rate"]
    assert lr.feature == "NumberOfFeatures" and lr.exponent == pytest.approx(-0.5, abs=0.25)
    assert lr.beats_constant and lr.loss_symbolic < 0.5 * min(lr.loss_constant, lr.loss_package)
    for p in (3, 150):
        assert lr.value({"NumberOfFeatures": p}) == pytest.approx(_best_lr(p), rel=0.6)
    # a hyperparameter the surface ignores gets no formula that beats its constant by much
    assert rows["max_iter"].loss_symbolic >= rows["max_iter"].loss_constant - 0.05
    table = symbolic_table(list(rows.values()))
    assert {"formula", "loss formula", "formula beats constant"} <= set(table.columns)
    with pytest.raises(InputError, match="NumberOfFeatures"):
        lr.value({})


def test_leaving_tasks_out_removes_them(constructed):
    db, store = constructed
    rows = symbolic_defaults(db, metric="balanced_accuracy", problem_type="binary", store=store,
                             exclude=["task0", "task1"], families=[FAMILY])
    assert {r.n_tasks for r in rows} == {6}
    with pytest.raises(InputError, match="at least 3"):
        symbolic_defaults(db, metric="balanced_accuracy", problem_type="binary", store=store,
                          exclude=[f"task{i}" for i in range(6)])


def test_cli_defaults_prints_the_symbolic_defaults(constructed, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from autometa.cli import app

    db, _ = constructed
    monkeypatch.setenv("AUTOMETA_CACHE_DIR", str(tmp_path))
    url = str(db.engine.url)
    res = CliRunner().invoke(app, ["defaults", "--metadb", url, "--symbolic", "--json", "--family", FAMILY])
    assert res.exit_code == 0, res.output
    found = {r["hyperparameter"]: r for r in json.loads(res.stdout)["symbolic"]}
    assert "NumberOfFeatures" in found["learning_rate"]["formula"] and found["learning_rate"]["recommended"] == "formula"
    res = CliRunner().invoke(app, ["defaults", "--metadb", url, "--symbolic", "--family", FAMILY])
    assert res.exit_code == 0 and "Symbolic defaults" in res.stdout
    res = CliRunner().invoke(app, ["defaults", "--metadb", url, "--family", "no_such_family"])
    assert res.exit_code == 2 and "Traceback" not in res.output
