"""OpenML importer on real recorded server responses; LCDB importer on the lcdb package's data."""

from __future__ import annotations

import re
import shutil
import warnings

import pytest
from conftest import recorded_openml_dir
from sqlalchemy import func, select

from autometa import InputError
from autometa.metadb import SQLMetaDB, import_lcdb, import_openml
from autometa.metadb._schema import Evaluation, Score

RECORDED = recorded_openml_dir()
TEST_SERVER = "https://test.openml.org/api/v1/xml"


@pytest.fixture()
def openml_cache(tmp_path):
    """A writable copy of the recorded responses laid out as openml-python's cache
    (openml-python deletes cache folders it cannot complete, so never point it at the originals)."""
    if not RECORDED.is_dir():
        pytest.skip(f"recorded OpenML responses not found at {RECORDED}")
    root = tmp_path / "openml"
    shutil.copytree(RECORDED, root)
    base = root / "org" / "openml" / "test"
    # setup 1 was recorded as the raw API response: put it where openml-python caches setups
    (base / "setups" / "1").mkdir(parents=True)
    shutil.copy(base / "api" / "v1" / "xml" / "setup" / "1" / "body.xml", base / "setups" / "1" / "description.xml")
    for p in root.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    return root


@pytest.fixture()
def db(tmp_path):
    store = SQLMetaDB(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    yield store
    store.close()


def _n_scores(db, run_key):
    with db.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(Score).join(Evaluation, Evaluation.id == Score.evaluation_id)
            .where(Evaluation.run_key == run_key)
        ).scalar_one()


def test_openml_dataset_tasks_run_and_setup_offline(openml_cache, db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = import_openml(db, cache_dir=openml_cache, server=TEST_SERVER, datasets=[2], tasks=[1, 3, 1882],
                               runs=[1], setups=[1])
    assert report.datasets == [2] and report.tasks == [1, 3, 1882] and report.runs == [1]
    tasks = db.tasks()
    anneal = tasks.loc["openml/dataset/2"]
    assert anneal.n_rows == 898 and anneal.target == "class" and anneal.n_classes == 6
    q = db.metafeatures(extractor="openml").loc["openml/dataset/2"]
    assert q["NumberOfInstances"] == 898 and q["NumberOfFeatures"] == 39
    assert q.notna().sum() == report.qualities == 106  # every quality of the recorded XML

    t1882 = tasks.loc["openml/task/1882"]  # a task on anneal: problem type from the dataset's classes
    assert t1882.openml_dataset_id == 2 and t1882.problem_type == "multiclass"
    import json

    from autometa.metadb._schema import TaskRow

    with db.engine.connect() as conn:
        protocol = json.loads(conn.execute(select(TaskRow.protocol).where(TaskRow.name == "openml/task/1")).scalar_one())
    assert protocol["estimation_procedure"]["type"] == "crossvalidation"
    splits = protocol["splits"]
    assert splits["folds"] == 10 and splits["repeats"] == 1
    assert all(tr + te == 898 for tr, te in splits["train_test_sizes"])  # 10-fold CV over anneal's 898 rows

    # run 1 (the recorded run is OpenML run 100 on task 28): 19 aggregated measures + 10 folds x 18 = 199;
    # os_information is text (not a score); accuracy and roc_auc are added under autometa's names (x 11)
    assert _n_scores(db, "openml-run-100") == 199 - 1 + 2 * 11
    m = db.performance_matrix("accuracy", source="openml")
    recorded = (RECORDED / "org/openml/test/runs/1/description.xml").read_text()
    acc = float(re.search(r"<oml:name>predictive_accuracy</oml:name>\s*<oml:value>([0-9.]+)<", recorded).group(1))
    assert m.loc["openml/task/28"].iloc[0] == pytest.approx(acc)
    configs = db.configurations()
    run_cfg = next(c for c in configs.values() if c["family"] == "openml:weka.BayesNet_K2(1)")
    assert run_cfg["Q"] == "weka.classifiers.bayes.net.search.local.K2"
    setup_cfg = next(c for c in configs.values() if c["family"] == "openml:weka.J48")
    assert setup_cfg["weka.J48(1)_C"] == "0.9"
    assert db.info()["sources"]["openml"]["tasks"] == len(tasks)


def test_openml_offline_missing_item_is_a_clear_error(openml_cache, db):
    with pytest.raises(InputError, match="Could not load dataset 99 .*not in the OpenML cache"):
        import_openml(db, cache_dir=openml_cache, server=TEST_SERVER, datasets=[99])


def test_lcdb_largest_anchor_and_qualities(db):
    report = import_lcdb(db, dataset_ids=[3, 6])
    assert report.datasets == [3, 6] and len(report.learners) == 20
    acc = db.performance_matrix("accuracy", source="lcdb")
    assert acc.shape == (2, 20)
    assert acc.stack().dropna().between(0, 1).all()
    rf = next(h for h, c in db.configurations().items() if c["family"] == "lcdb:sklearn.ensemble.RandomForestClassifier")
    assert acc.loc["lcdb/openml-dataset/3", rf] > 0.95  # random forest on kr-vs-kp
    q = db.metafeatures(extractor="openml")
    assert q.loc["lcdb/openml-dataset/3", "NumberOfInstances"] == 3196
    assert set(db.performance_matrix("log_loss", source="lcdb").index) == {"lcdb/openml-dataset/3", "lcdb/openml-dataset/6"}
    with pytest.raises(InputError, match="Unknown LCDB metric"):
        import_lcdb(db, metrics=["brier"])
