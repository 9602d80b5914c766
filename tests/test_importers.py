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


# ---------------------------------------------------------------------------- auto-sklearn's tuned optima
from pathlib import Path  # noqa: E402

from autometa.metadb import AUTOSKLEARN_METAFEATURES, import_autosklearn  # noqa: E402

ASKL = Path(__file__).resolve().parent / "data" / "autosklearn"  # an excerpt of auto-sklearn 0.15.0's files
ASKL_FILES = ASKL / "autosklearn" / "metalearning" / "files"
ASKL_METRICS = ("balanced_accuracy", "log_loss", "roc_auc")


@pytest.fixture()
def askl_db(tmp_path):
    store = SQLMetaDB(f"sqlite:///{tmp_path / 'askl.sqlite'}", shipped=False)
    yield store
    store.close()


def _askl_folder(metric: str, task_type: str = "binary") -> dict:
    """The excerpt's runs (name -> (configuration row, loss)) and meta-features of one folder, read independently."""
    import csv

    import arff

    d = ASKL_FILES / f"{metric}_{task_type}.classification_dense"
    configs = {r["idx"]: r for r in csv.DictReader((d / "configurations.csv").open())}
    runs = arff.loads((d / "algorithm_runs.arff").read_text())["data"]
    fv = arff.loads((d / "feature_values.arff").read_text())
    names = [a for a, _ in fv["attributes"]]
    return {"runs": {r[0]: (configs[r[2]], r[3]) for r in runs},
            "mf": {r[0]: dict(zip(names[2:], r[2:], strict=True)) for r in fv["data"]}}


def test_autosklearn_maps_each_classifier_onto_its_family(askl_db):
    from autometa.spaces import config_hash, get_space, in_space

    rep = import_autosklearn(askl_db, ASKL, metrics=["balanced_accuracy"])
    files = _askl_folder("balanced_accuracy")
    by_task = {m.task.removeprefix("autosklearn/"): m for m in rep.mapped}
    expected = {"hill-valley": "knn", "satellite": "svm", "quake": "decision_tree", "water-treatment": "random_forest",
                "autouniv-au7-700": "random_forest", "volcanoes-a4": "extra_trees", "anneal": "hist_gradient_boosting",
                "synthetic_control": "mlp", "breast-w": "linear", "diabetes": "linear", "mv": "linear",
                "balance-scale": "linear"}
    assert {t: m.family for t, m in by_task.items()} == expected
    tasks = askl_db.tasks()
    for name, m in by_task.items():
        problem_type = tasks.loc[m.task, "problem_type"]
        assert problem_type == ("binary" if files["mf"][name]["NumberOfClasses"] == 2 else "multiclass")
        assert in_space(m.config, get_space(problem_type)), m.config
    assert set(askl_db.configurations()) == {config_hash(m.config) for m in rep.mapped}

    def raw(task: str, hp: str) -> str:
        row = files["runs"][task][0]
        return row[f"classifier:{row['classifier:__choice__']}:{hp}"]

    def cfg(task: str) -> dict:
        return by_task[task].config

    # copied as they are
    assert cfg("hill-valley") == {"family": "knn", "knn:n_neighbors": int(raw("hill-valley", "n_neighbors")),
                                  "knn:p": int(raw("hill-valley", "p")), "knn:weights": raw("hill-valley", "weights")}
    assert cfg("synthetic_control")["mlp:n_hidden_layers"] == int(raw("synthetic_control", "hidden_layer_depth"))
    assert cfg("synthetic_control")["mlp:hidden_width"] == int(raw("synthetic_control", "num_nodes_per_layer"))
    assert cfg("balance-scale")["linear:C"] == pytest.approx(float(raw("balance-scale", "C")))
    assert cfg("anneal")["hist_gradient_boosting:learning_rate"] == pytest.approx(float(raw("anneal", "learning_rate")))
    # converted: forests draw int(p ** e) of p columns; auto-sklearn grows 512 trees; weighting = balanced classes
    p = int(files["mf"]["water-treatment"]["NumberOfFeatures"])  # no one-hot encoding in its pipeline
    k = int(p ** float(raw("water-treatment", "max_features")))
    assert cfg("water-treatment")["random_forest:max_features"] == pytest.approx(k / p)
    assert cfg("water-treatment")["random_forest:n_estimators"] == 512
    assert cfg("water-treatment")["random_forest:bootstrap"] is (raw("water-treatment", "bootstrap") == "True")
    weighting = files["runs"]["water-treatment"][0]["balancing:strategy"] == "weighting"
    assert cfg("water-treatment")["random_forest:class_weight"] == ("balanced" if weighting else "none")
    # the SVM's gamma times the encoded columns is autometa's gamma_scale (satellite: numeric only)
    n = int(files["mf"]["satellite"]["NumberOfNumericFeatures"])
    assert cfg("satellite")["svm:gamma_scale"] == pytest.approx(float(raw("satellite", "gamma")) * n)
    # auto-sklearn truncates the depth factor before multiplying by the columns
    assert cfg("quake")["decision_tree:max_depth"] == max(1, int(float(raw("quake", "max_depth_factor"))) * 3)
    # SGD's alpha on n training rows is logistic regression's C = 1 / (alpha n); l1 is elastic net at ratio 1
    n_rows = files["mf"]["mv"]["NumberOfInstances"]
    assert cfg("mv")["linear:C"] == pytest.approx(1 / (float(raw("mv", "alpha")) * n_rows), rel=1e-9)
    assert cfg("mv")["linear:penalty"] == "elasticnet" and cfg("mv")["linear:l1_ratio"] == 1.0
    assert "classifier:sgd:loss" not in by_task["mv"].dropped  # logistic loss: what autometa fits
    # dropped: what autometa's space cannot express, with auto-sklearn's value
    assert by_task["diabetes"].dropped["classifier:sgd:loss"] == "hinge"
    assert by_task["breast-w"].dropped["classifier:passive_aggressive:C"] == raw("breast-w", "C")
    assert cfg("breast-w")["linear:C"] == 1.0  # passive-aggressive's C is a step size: autometa's default
    assert by_task["anneal"].dropped["classifier:gradient_boosting:early_stop"] == raw("anneal", "early_stop")
    assert cfg("anneal")["hist_gradient_boosting:max_iter"] == 512
    for m in rep.mapped:
        pre = files["runs"][m.task.removeprefix("autosklearn/")][0]["feature_preprocessor:__choice__"]
        assert m.dropped.get("feature_preprocessor:__choice__", "no_preprocessing") == pre
    assert rep.dropped["feature_preprocessor:__choice__"] == sum("feature_preprocessor:__choice__" in m.dropped
                                                                 for m in rep.mapped)


def test_autosklearn_unmapped_skipped_and_clipped(askl_db):
    rep = import_autosklearn(askl_db, ASKL, metrics=ASKL_METRICS)
    # balanced accuracy: adaboost (stock), gaussian_nb (twonorm), a polynomial SVM (meta); log loss: two AdaBoosts
    assert rep.unmapped == {"adaboost": 2, "gaussian_nb": 1, "libsvm_svc (kernel=poly)": 1}
    stored = {t.removeprefix("autosklearn/") for t in rep.tasks}
    assert not stored & {"stock", "twonorm", "meta", "steel-plates-fault"}
    # steel-plates-fault names two OpenML tasks (2 runs, one row of meta-features) in each of the 2 balanced-accuracy folders
    assert rep.skipped["ambiguous name"] == 4
    assert rep.skipped["not_applicable"] == 1  # ROC AUC of anneal, a multiclass task
    # each task comes from the folder of its own type: the other folder's copy of each run is skipped
    n_runs = sum(len(_askl_folder(m)["runs"]) for m in ASKL_METRICS) - 1  # runs by name, steel-plates-fault left out
    assert rep.skipped["other task type"] == n_runs
    assert sum(rep.skipped.values()) + sum(rep.unmapped.values()) + len(rep.mapped) == 2 * (n_runs + 2)
    # anneal's log-loss optimum has 720 leaves: autometa's boosting allows 512
    clipped = {(m.task, k): v for m in rep.mapped for k, v in m.clipped.items()}
    assert clipped == {("autosklearn/anneal", "hist_gradient_boosting:max_leaf_nodes"): (720.0, 512.0)}
    assert rep.clipped == {"hist_gradient_boosting:max_leaf_nodes": 1}


def test_autosklearn_scores_are_its_losses_turned_back_into_scores(askl_db):
    rep = import_autosklearn(askl_db, ASKL, metrics=ASKL_METRICS)
    assert rep.evaluations == len(rep.mapped) == 16
    for metric in ASKL_METRICS:
        runs = _askl_folder(metric)["runs"]
        matrix = askl_db.performance_matrix(metric, source=rep.source)
        mine = [m for m in rep.mapped if m.metric == metric]
        assert int(matrix.notna().to_numpy().sum()) == len(mine) > 0
        for m in mine:
            loss = runs[m.task.removeprefix("autosklearn/")][1]
            assert m.score == pytest.approx(loss if metric == "log_loss" else 1 - loss)
            assert matrix.loc[m.task].dropna().iloc[0] == pytest.approx(m.score)
    with askl_db.engine.connect() as conn:
        rows = conn.execute(select(Evaluation.run_key, Evaluation.split, Evaluation.status)).all()
    assert {(s, st) for _, s, st in rows} == {(-1, "ok")}
    assert {k for k, _, _ in rows} == {m.run_key for m in rep.mapped}
    assert "balanced_accuracy_binary.classification_dense/algorithm_runs.arff:9" in {k for k, _, _ in rows}


def test_autosklearn_metafeatures_under_both_extractors(askl_db):
    from autometa.metafeatures import FEATURE_NAMES

    rep = import_autosklearn(askl_db, ASKL, metrics=["balanced_accuracy"])
    mf = _askl_folder("balanced_accuracy")["mf"]
    raw = askl_db.metafeatures(extractor="autosklearn")
    equivalents = askl_db.metafeatures(extractor="autometa")
    assert set(raw.index) == set(equivalents.index) == set(rep.tasks)
    assert set(equivalents.columns) == set(AUTOSKLEARN_METAFEATURES) and set(equivalents.columns) <= set(FEATURE_NAMES)
    a = mf["anneal"]
    assert raw.loc["autosklearn/anneal"].to_dict() == pytest.approx(a)  # all 37, as they are
    e = equivalents.loc["autosklearn/anneal"]
    assert e["NumberOfFeatures"] == a["NumberOfFeatures"] + 1  # OpenML counts the target
    assert e["NumberOfSymbolicFeatures"] == a["NumberOfCategoricalFeatures"] + 1
    assert e["MajorityClassPercentage"] == pytest.approx(100 * a["ClassProbabilityMax"])
    assert e["ClassEntropy"] == pytest.approx(a["ClassEntropy"])
    assert e["PercentageOfMissingValues"] == pytest.approx(
        100 * a["PercentageOfMissingValues"] * a["NumberOfFeatures"] / (a["NumberOfFeatures"] + 1))
    info = askl_db.info()["metafeature_extractors"]
    assert info["autometa"] == {"version": "askl-0.15.0", "features": 11}
    assert info["autosklearn"] == {"version": "0.15.0", "features": 37}
    task = askl_db.tasks().loc["autosklearn/anneal"]
    assert (task.n_rows, task.n_features, task.n_classes) == (a["NumberOfInstances"], a["NumberOfFeatures"], 5)


def test_autosklearn_provenance_task_ids_and_own_metafeatures(askl_db):
    import json

    from autometa.metadb._schema import Source, TaskRow

    askl_db.add_source("own", "own")
    askl_db.add_task("openml/task/3481", source="own", problem_type="binary")
    askl_db.add_metafeatures("openml/task/3481", {"NumberOfInstances": 1212.0}, version="1")  # computed by autometa
    rep = import_autosklearn(askl_db, ASKL, metrics=["balanced_accuracy"], task_ids={"Hill-Valley": 3481})
    assert "openml/task/3481" in rep.tasks and "autosklearn/hill-valley" not in rep.tasks
    assert askl_db.metafeatures(extractor="autometa").loc["openml/task/3481"].dropna().to_dict() == {
        "NumberOfInstances": 1212.0}  # autometa's own meta-features stay
    assert "openml/task/3481" in askl_db.metafeatures(extractor="autosklearn").index
    with askl_db.engine.connect() as conn:
        kind, versions = conn.execute(select(Source.kind, Source.versions).where(Source.name == rep.source)).one()
        protocol = json.loads(conn.execute(select(TaskRow.protocol).where(TaskRow.name == "autosklearn/anneal")).scalar_one())
    versions = json.loads(versions)
    assert rep.source == "autosklearn-0.15.0" and kind == "openml"
    assert versions["auto-sklearn"] == "0.15.0" and "test split" in versions["protocol"]
    assert versions["run_key"] == "<folder>/algorithm_runs.arff:<configuration idx>"
    assert protocol["openml_dataset_name"] == "anneal"
    assert rep.folders == ("balanced_accuracy_binary.classification_dense", "balanced_accuracy_multiclass.classification_dense")
    with pytest.raises(InputError, match="integer OpenML task ids"):
        import_autosklearn(askl_db, ASKL, metrics=["balanced_accuracy"], task_ids={"anneal": "2"})


def test_autosklearn_import_is_idempotent_and_reads_every_kind_of_source(askl_db, tmp_path, monkeypatch):
    import tarfile

    from autometa.metadb._schema import Configuration, MetaFeature, TaskRow

    def counts():
        with askl_db.engine.connect() as conn:
            return [conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (TaskRow, Configuration, Evaluation, Score, MetaFeature)]

    first = import_autosklearn(askl_db, ASKL, metrics=ASKL_METRICS)
    before = counts()
    again = import_autosklearn(askl_db, ASKL_FILES, metrics=ASKL_METRICS)
    assert again.evaluations == 0 and counts() == before
    assert [m.config for m in again.mapped] == [m.config for m in first.mapped]
    sdist = tmp_path / "auto-sklearn-0.15.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(ASKL, arcname="auto-sklearn-0.15.0")
    from_tar = import_autosklearn(askl_db, sdist, metrics=ASKL_METRICS)
    assert from_tar.origin == str(sdist) and from_tar.version == "0.15.0" and from_tar.evaluations == 0
    assert [m.config for m in from_tar.mapped] == [m.config for m in first.mapped] and counts() == before
    monkeypatch.syspath_prepend(str(ASKL))  # an "installed" autosklearn package, found without importing it
    installed = import_autosklearn(askl_db, metrics=["balanced_accuracy"])
    assert installed.origin == str(ASKL_FILES) and installed.evaluations == 0
    knn_off = import_autosklearn(SQLMetaDB(f"sqlite:///{tmp_path / 'b.sqlite'}", shipped=False), ASKL,
                                 metrics=["log_loss"], knn_metafeatures=False)
    assert knn_off.tasks and knn_off.metafeatures == 37 * len(knn_off.tasks)


def test_autosklearn_bad_sources_and_options_are_one_line_errors(askl_db, tmp_path):
    from importlib import util

    if util.find_spec("autosklearn") is None:
        with pytest.raises(InputError, match="No installed auto-sklearn .*pip download --no-deps"):
            import_autosklearn(askl_db)
    with pytest.raises(InputError, match="does not exist; pip download"):
        import_autosklearn(askl_db, tmp_path / "nowhere")
    with pytest.raises(InputError, match="No auto-sklearn meta-data"):
        import_autosklearn(askl_db, tmp_path)
    (tmp_path / "notes.txt").write_text("not a tarball")
    with pytest.raises(InputError, match="directory or an sdist"):
        import_autosklearn(askl_db, tmp_path / "notes.txt")
    with pytest.raises(InputError, match=r"no folder 'accuracy_binary.classification_dense'.*\['balanced_accuracy'"):
        import_autosklearn(askl_db, ASKL)
    with pytest.raises(InputError, match="metrics to import from auto-sklearn must be among"):
        import_autosklearn(askl_db, ASKL, metrics=["f1"])
    with pytest.raises(InputError, match="task types"):
        import_autosklearn(askl_db, ASKL, metrics=["log_loss"], task_types=["regression"])


def test_autosklearn_cli_command(tmp_path):
    from typer.testing import CliRunner

    from autometa.cli import app

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()
    res = runner.invoke(app, ["metadb", "import-autosklearn", "--source", str(ASKL), "--metric", "balanced_accuracy",
                              "--metric", "log_loss,roc_auc", "--url", url])
    assert res.exit_code == 0, res.output
    assert "imported auto-sklearn 0.15.0" in res.stdout and "12 tasks, 16 configurations mapped" in res.stdout
    assert "not mapped (no autometa family): adaboost 2" in res.stdout and "16 new evaluations" in res.stdout
    ids = tmp_path / "ids.json"
    ids.write_text('{"anneal": 2}')
    res = runner.invoke(app, ["metadb", "import-autosklearn", "--source", str(ASKL), "--metric", "balanced_accuracy",
                              "--task-ids", str(ids), "--url", url])
    assert res.exit_code == 0 and "1 new evaluations" in res.stdout  # anneal again, now as openml/task/2
    for args, message in ((["--metric", "f1"], "must be among"), (["--source", str(tmp_path / "x")], "pip download"),
                          (["--task-ids", str(tmp_path / "none.json")], "--task-ids must be")):
        res = runner.invoke(app, ["metadb", "import-autosklearn", "--source", str(ASKL), *args, "--url", url])
        assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
