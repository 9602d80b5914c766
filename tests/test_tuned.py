"""Tuned optima: the shipped loader reads metadata/evaluations_tuned/, and the build script
(experiments/build_tuned.py) replays stored rows exactly, evaluates new ones for real and
resumes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from autometa.evaluation import Evaluator
from autometa.metadb import SHIPPED_SOURCE, TUNED_SOURCE, SQLMetaDB, load_shipped
from autometa.spaces import config_hash, config_key, get_space

ROOT = Path(__file__).resolve().parents[1]
METADATA = ROOT / "metadata"
sys.path.insert(0, str(ROOT / "experiments"))
import build_tuned as B  # noqa: E402

TASK = "sklearn/iris/target"
STEM = "sklearn__iris__target"
FAMILIES = ("linear", "decision_tree")

pytestmark = pytest.mark.skipif(not (METADATA / "evaluations" / f"{STEM}.csv").is_file(),
                                reason="no shipped evaluations of iris")


@pytest.fixture()
def meta(tmp_path: Path) -> Path:
    """A shipped directory of one real task (iris) and 4 stored configurations of two
    families, taken from the shipped meta-dataset."""
    d = tmp_path / "metadata"
    (d / "evaluations").mkdir(parents=True)
    (d / "metafeatures").mkdir()
    shutil.copy(METADATA / "MANIFEST.json", d / "MANIFEST.json")
    shutil.copy(METADATA / "configurations.csv", d / "configurations.csv")
    shutil.copy(METADATA / "metafeatures" / f"{STEM}.json", d / "metafeatures" / f"{STEM}.json")
    suite = pd.read_csv(METADATA / "suite.csv", dtype=str, keep_default_na=False)
    suite[suite.task_id == TASK].to_csv(d / "suite.csv", index=False)
    ev = pd.read_csv(METADATA / "evaluations" / f"{STEM}.csv")
    ev[ev.family.isin(FAMILIES) & (ev.design_index < 2)].to_csv(d / "evaluations" / f"{STEM}.csv", index=False)
    return d


def _configs(d: Path) -> dict[str, dict]:
    c = pd.read_csv(d / "configurations.csv")
    return {h: json.loads(j) for h, j in zip(c.hash, c.config_json, strict=True)}


def test_the_evaluator_replays_stored_rows_exactly_and_evaluates_new_ones_for_real(meta: Path) -> None:
    task, splits, n_full = B.build_protocol_task(
        pd.read_csv(meta / "suite.csv", dtype=str, keep_default_na=False).iloc[0].to_dict())
    assert n_full == len(task.y) == 150 and len(splits) == 3
    rows = pd.read_csv(meta / "evaluations" / f"{STEM}.csv")
    stored = B.stored_results(rows, _configs(meta), "balanced_accuracy")
    assert len(stored) == 4
    fresh = dict(get_space("multiclass", families=["knn"]).get_default_configuration())
    with B.StoredFirstEvaluator(stored, Evaluator(task, splits=splits, isolation="none")) as ev:
        for r in rows.to_dict("records"):
            cfg = _configs(meta)[r["config_hash"]]
            res = ev.evaluate(cfg)
            assert res.ok and res.scores["balanced_accuracy"] == r["balanced_accuracy"]
            assert res.fold_scores == [float(s) for s in r["fold_scores"].split(";")]
        assert (ev.n_replayed, ev.n_live) == (4, 0)
        new = ev.evaluate(fresh)
        assert ev.n_live == 1 and new.ok and config_key(new.config) not in stored
    direct = Evaluator(task, splits=splits, isolation="none").evaluate(fresh)
    assert new.scores == direct.scores and len(new.fold_scores) == 3
    # the same configuration on the live protocol's splits scores differently: the splits are used
    assert Evaluator(task, isolation="none").evaluate(fresh).fold_scores != new.fold_scores


def test_a_finished_task_is_skipped_without_any_work(meta: Path, tmp_path: Path) -> None:
    row = {"task_id": TASK}  # nothing to load the data from: a finished task must not try
    (meta / B.TUNED_DIR).mkdir()
    (meta / B.TUNED_DIR / f"{STEM}.csv").write_text("config_hash\n")
    s = B.tune_task(row, meta=meta, work=tmp_path / "w", n_new=3, time_limit=30.0, budget_s=60.0, configs={})
    assert s == {"task_id": TASK, "skipped": True} and not (tmp_path / "w").exists()


@pytest.mark.slow
def test_build_writes_new_trials_in_the_shipped_format_and_resumes(meta: Path, tmp_path: Path) -> None:
    row = pd.read_csv(meta / "suite.csv", dtype=str, keep_default_na=False).iloc[0].to_dict()
    work = tmp_path / "work"
    kw = {"meta": meta, "work": work, "n_new": 3, "time_limit": 30.0, "budget_s": 300.0, "configs": _configs(meta)}
    s = B.tune_task(row, per_family=0, **kw)
    assert not s["skipped"] and s["stored"] == s["initial"] == 4 and s["new"] == 3
    out = pd.read_csv(meta / B.TUNED_DIR / f"{STEM}.csv")
    stored_hashes = set(pd.read_csv(meta / "evaluations" / f"{STEM}.csv").config_hash)
    assert len(out) == 3 and not set(out.config_hash) & stored_hashes
    assert list(out.trial) == [4, 5, 6]  # after the 4 replayed ones
    assert all(config_hash(json.loads(j)) == h for h, j in zip(out.config_hash, out.config_json, strict=True))
    assert out.status.eq("ok").all() and out.balanced_accuracy.between(0.5, 1.0).all()
    trials = (work / STEM / "trials.jsonl").read_text().splitlines()
    assert len(trials) == 7
    assert B.tune_task(row, per_family=0, **kw) == {"task_id": TASK, "skipped": True}
    # an interrupted task (its CSV not written yet) resumes from its run directory: nothing is redone
    (meta / B.TUNED_DIR / f"{STEM}.csv").unlink()
    again = B.tune_task(row, per_family=0, **kw)
    assert again["new"] == 3 and (work / STEM / "trials.jsonl").read_text().splitlines() == trials
    pd.testing.assert_frame_equal(pd.read_csv(meta / B.TUNED_DIR / f"{STEM}.csv"), out)
    manifest = B.write_manifest(meta, 3, 0, 30.0, 300.0, [again])
    assert manifest["tuned"]["counts"] == {"tasks": 1, "tasks_classification": 1, "tasks_regression": 0,
                                           "evaluations": 3,
                                           "new_trials_per_task": {"min": 3, "median": 3.0, "max": 3}}
    assert "3-fold" in manifest["tuned"]["protocol"]["resampling"]


def test_initial_design_takes_the_best_stored_per_family(meta: Path) -> None:
    stored = B.stored_results(pd.read_csv(meta / "evaluations" / f"{STEM}.csv"), _configs(meta), "balanced_accuracy")
    best = B.initial_design(stored, "balanced_accuracy", True, 1)
    assert len(best) == 2 and {c["family"] for c in best} == set(FAMILIES)
    for c in best:
        same = [r.scores["balanced_accuracy"] for r in stored.values() if r.ok and r.config["family"] == c["family"]]
        assert stored[config_key(c)].scores["balanced_accuracy"] == max(same)
    assert len(B.initial_design(stored, "balanced_accuracy", True, 0)) == 4


def _tuned_rows(d: Path) -> pd.DataFrame:
    """Two tuned configurations of iris that are not in the fixed design."""
    space = get_space("multiclass", families=["knn"])
    rows = []
    for i, k in enumerate((7, 13)):
        cfg = {**dict(space.get_default_configuration()), "knn:n_neighbors": k}
        rows.append({"config_hash": config_hash(cfg), "family": "knn", "trial": 256 + i, "status": "ok",
                     "fit_time_s": 0.01, "balanced_accuracy": 0.99 - i / 100, "accuracy": 0.99, "roc_auc": 0.999,
                     "log_loss": 0.05, "fold_scores": "0.99;0.99;0.99", "error": "",
                     "config_json": json.dumps(cfg, sort_keys=True)})
    (d / B.TUNED_DIR).mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(d / B.TUNED_DIR / f"{STEM}.csv", index=False)
    return pd.DataFrame(rows)


def test_every_store_loads_the_tuned_optima_apart_from_the_fixed_design(meta: Path, tmp_path: Path) -> None:
    old = SQLMetaDB(f"sqlite:///{tmp_path / 'old.sqlite'}", shipped=False)
    load_shipped(old, meta)  # a build without tuned optima loads as before
    assert TUNED_SOURCE not in old.info()["sources"] and old.info()["sources"][SHIPPED_SOURCE]["evaluations"] == 4
    tuned = _tuned_rows(meta)
    db = SQLMetaDB(f"sqlite:///{tmp_path / 'new.sqlite'}", shipped=False)
    load_shipped(db, meta)
    info = db.info()
    assert info["sources"][SHIPPED_SOURCE]["evaluations"] == 4 and info["sources"][TUNED_SOURCE]["evaluations"] == 2
    load_shipped(db, meta)  # idempotent
    assert db.info()["sources"][TUNED_SOURCE]["evaluations"] == 2
    # cross-task reads keep the fixed design unless asked; per-task best configurations include them
    dense = db.performance_matrix("balanced_accuracy")
    assert dense.shape == (1, 4) and not set(tuned.config_hash) & set(dense.columns)
    wide = db.performance_matrix("balanced_accuracy", tuned=True)
    assert wide.shape == (1, 6) and wide.loc[TASK, tuned.config_hash[0]] == pytest.approx(0.99)
    assert set(db.performance_matrix("balanced_accuracy", source=TUNED_SOURCE).columns) == set(tuned.config_hash)
    (best, score), *_ = db.best_configs(TASK, metric="balanced_accuracy", k=2)
    assert config_hash(best) == tuned.config_hash[0] and score == pytest.approx(0.99)
    assert config_hash(db.best_configs(TASK, metric="balanced_accuracy", tuned=False)[0][0]) in set(dense.columns)
    assert len(db.scores(TASK)) == 4 and len(db.scores(TASK, tuned=True)) == 6
    # a store that held the older build gets the tuned rows on top when it loads the newer one
    load_shipped(old, meta)
    assert old.info()["sources"][TUNED_SOURCE]["evaluations"] == 2


def test_load_shipped_command_reports_the_tuned_optima(meta: Path, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from autometa.cli import app

    _tuned_rows(meta)
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(meta))
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    res = CliRunner().invoke(app, ["metadb", "load-shipped", "--url", url])
    assert res.exit_code == 0, res.output
    assert f"tuned optima ({TUNED_SOURCE}): 2 evaluations (2 new)" in res.stdout
    res = CliRunner().invoke(app, ["metadb", "load-shipped", "--url", url])
    assert "2 evaluations (0 new)" in res.stdout


@pytest.mark.slow
def test_build_runs_its_trials_on_a_dask_client(meta: Path, tmp_path: Path) -> None:
    """Issue 16, point 4: the tuned build's trials run on the Dask client it is given
    (the shipped ``tune(dask_client=...)`` path); stored rows are still replayed there."""
    distributed = pytest.importorskip("distributed")
    row = pd.read_csv(meta / "suite.csv", dtype=str, keep_default_na=False).iloc[0].to_dict()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        s = B.tune_task(row, meta=meta, work=tmp_path / "work", n_new=4, time_limit=30.0, budget_s=300.0,
                        configs=_configs(meta), per_family=0, client=client)
    assert s["stored"] == s["initial"] == 4 and s["new"] == 4 and s["new_ok"] == 4
    out = pd.read_csv(meta / B.TUNED_DIR / f"{STEM}.csv")
    assert len(out) == 4 and not set(out.config_hash) & set(pd.read_csv(meta / "evaluations" / f"{STEM}.csv").config_hash)
    workers = json.loads((tmp_path / "work" / STEM / "result.json").read_text())["setup"]["workers"]
    assert workers["name"] == "DaskExecutor" and workers["capacity"] == 2
    assert sum(workers["trials_per_worker"].values()) == 8  # 4 replayed + 4 new, all on the cluster's workers
