"""AutoMetaClassifier / AutoMetaRegressor obey the scikit-learn estimator contract."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from autometa import AutoMetaClassifier, AutoMetaRegressor

# Small, deterministic searches so that ~50 checks each stay fast: a trial budget (not a
# time budget) makes fit reproducible, in-process evaluation avoids a worker per fit.
FAST = dict(n_trials=3, optimizer="random", isolation="none", families=["linear", "decision_tree"], time_budget_s=120)


@parametrize_with_checks([AutoMetaClassifier(**FAST), AutoMetaRegressor(**FAST)])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_classifier_on_real_data_with_mixed_types(credit):
    df = credit.drop(columns="rownames")
    X, y = df.drop(columns="Status"), df["Status"]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    clf = AutoMetaClassifier(n_trials=4, optimizer="smac", families=["linear", "hist_gradient_boosting"],
                             isolation="none", time_budget_s=120).fit(Xtr, ytr)
    assert list(clf.classes_) == ["bad", "good"]
    proba = clf.predict_proba(Xte)
    assert proba.shape == (len(Xte), 2) and np.allclose(proba.sum(axis=1), 1)
    assert clf.score(Xte, yte) > 0.7
    assert clf.best_config_["family"] in ("linear", "hist_gradient_boosting")
    assert len(clf.result_.history) == 4


def test_regressor_on_real_data(diabetes):
    X, y = diabetes.drop(columns="target"), diabetes["target"]
    reg = AutoMetaRegressor(n_trials=4, families=["linear", "knn"], isolation="none").fit(X, y)
    assert reg.score(X, y) > 0.4
    assert reg.predict(X.head(3)).shape == (3,)


def test_bad_y_and_bad_task_are_named_as_the_user_passed_them():
    from autometa import InputError, suggest_config

    with pytest.raises(InputError, match=r"^y has a single class"):
        AutoMetaClassifier(time_budget_s=5).fit(np.zeros((10, 2)), np.zeros(10))
    with pytest.raises(InputError, match="suggest_config needs an autometa.Task.*got str"):
        suggest_config("binary")


def test_the_estimator_takes_the_clis_run_options(tmp_path):
    # the CLI's --out (resume), --record and --memory-limit-mb, through the estimator
    from sklearn.datasets import load_iris

    from autometa import read_run
    from autometa.metadb import SQLMetaDB

    X, y = load_iris(return_X_y=True)
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    out = tmp_path / "run"
    clf = AutoMetaClassifier(n_trials=2, families=["linear"], out_dir=out, record=True, metadb=url,
                             memory_limit_mb=4000, time_budget_s=120).fit(X, y)
    assert len(read_run(out)[1]) == 2 and clf.score(X, y) > 0.8
    assert SQLMetaDB(url).info()["sources"]["own"]["evaluations"] == 2
    again = AutoMetaClassifier(n_trials=3, families=["linear"], out_dir=out, metadb=url, time_budget_s=120).fit(X, y)
    assert again.result_.n_resumed == 2 and again.result_.n_trials == 3
