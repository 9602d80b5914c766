"""The shipped meta-dataset (metadata/): consistent files, and loading it into a store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from autometa.metadb import SQLMetaDB
from autometa.metadb._shipped import SHIPPED_SOURCE, load_shipped
from autometa.spaces import FAMILIES, fixed_design

METADATA = Path(__file__).resolve().parents[1] / "metadata"
pytestmark = pytest.mark.skipif(not (METADATA / "MANIFEST.json").is_file(), reason="no shipped meta-dataset built yet")


def test_configurations_file_is_the_fixed_design():
    configs = pd.read_csv(METADATA / "configurations.csv")
    for (kind, fam), group in configs.groupby(["kind", "family"]):
        design = fixed_design("regression" if kind == "regression" else "binary", fam, n=32)
        assert [json.loads(c) for c in group.sort_values("design_index").config_json] == design
    assert set(configs.family) == set(FAMILIES)


def test_evaluation_files_refer_to_suite_tasks_and_design():
    suite = pd.read_csv(METADATA / "suite.csv")
    hashes = set(pd.read_csv(METADATA / "configurations.csv").hash)
    files = sorted((METADATA / "evaluations").glob("*.csv"))
    assert files
    for f in files:
        assert f.stem.replace("__", "/") in set(suite.task_id)
        ev = pd.read_csv(f)
        assert set(ev.config_hash) <= hashes
        assert ev.status.isin(["ok", "crash", "timeout", "memory"]).all()
        assert not ev.duplicated(["config_hash"]).any()


@pytest.fixture()
def snapshot(tmp_path):
    """A copy of metadata/ (a build may be adding files while the tests run)."""
    import shutil

    return Path(shutil.copytree(METADATA, tmp_path / "metadata"))


def test_loads_into_a_store_in_seconds(tmp_path, snapshot):
    db = SQLMetaDB(f"sqlite:///{tmp_path / 'm.sqlite'}")
    t0 = time.perf_counter()
    manifest = load_shipped(db, snapshot)
    elapsed = time.perf_counter() - t0
    info = db.info()
    files = sorted((snapshot / "evaluations").glob("*.csv"))
    n_rows = sum(len(pd.read_csv(f)) for f in files)
    assert info["sources"][SHIPPED_SOURCE]["tasks"] == len(files)
    assert info["sources"][SHIPPED_SOURCE]["evaluations"] == n_rows
    assert manifest["counts"]["tasks_in_suite"] == len(pd.read_csv(snapshot / "suite.csv"))
    assert elapsed < 60
    load_shipped(db, snapshot)  # idempotent
    assert db.info()["sources"][SHIPPED_SOURCE]["evaluations"] == n_rows
    db.close()


def test_ensure_shipped_loads_once_per_build(tmp_path, monkeypatch, snapshot):
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(snapshot))
    db = SQLMetaDB(f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert db.ensure_shipped() is True
    n = db.info()["evaluations"]
    assert n > 0 and db.ensure_shipped() is False  # same build: nothing to do
    assert db.info()["evaluations"] == n
    db.close()
