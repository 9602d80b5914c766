"""The meta-database store on SQLite and PostgreSQL (a real server: .ci/postgres.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from autometa import InputError, Task, tune
from autometa.metadb import EvalRecord, SQLMetaDB
from autometa.spaces import config_hash, family_defaults, get_space

PG_URL = os.environ.get("AUTOMETA_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.sqlite'}"
    if not PG_URL:
        pytest.skip("AUTOMETA_TEST_POSTGRES_URL is not set (.ci/run starts a server and sets it)")
    from sqlalchemy import create_engine

    from autometa.metadb._schema import Base

    engine = create_engine(PG_URL)
    Base.metadata.drop_all(engine)  # a fresh schema per test
    engine.dispose()
    return PG_URL


def _configs(n: int, seed: int = 0) -> list[dict]:
    cs = get_space("binary", seed=seed)
    return [dict(c) for c in family_defaults(cs)] + [dict(c) for c in cs.sample_configuration(n)]


def test_round_trip_matrix_and_queries(url):
    db = SQLMetaDB(url)
    db.add_source("own", "own", versions={"scikit-learn": "1.9"})
    configs = _configs(12)
    rng = np.random.default_rng(0)
    truth = {}
    for t in ("a", "b", "c"):
        db.add_task(t, source="own", problem_type="binary", target="y", n_rows=100, n_features=4, n_classes=2)
        recs = []
        for c in configs:
            s = float(rng.uniform(0.5, 1.0))
            truth[(t, config_hash(c))] = s
            recs.append(EvalRecord(c, {"balanced_accuracy": s, "roc_auc": s + 0.01}, fit_time_s=0.1))
            recs += [EvalRecord(c, {"balanced_accuracy": s}, split=i) for i in range(3)]
        assert db.add_evaluations(t, recs, source="own") == len(recs)
        assert db.add_evaluations(t, recs, source="own") == 0  # idempotent
        db.add_metafeatures(t, {"NumberOfInstances": 100, "ClassEntropy": 1.0 if t != "c" else float("nan")})
    m = db.performance_matrix("balanced_accuracy")
    assert m.shape == (3, len(configs))
    for (t, h), s in truth.items():
        assert m.loc[t, h] == pytest.approx(s)
    assert db.performance_matrix("balanced_accuracy", family="knn").shape[1] == sum(
        c["family"] == "knn" for c in configs)
    best = db.best_configs("a", metric="balanced_accuracy", k=3)
    assert [s for _, s in best] == sorted([s for (t, _), s in truth.items() if t == "a"], reverse=True)[:3]
    mf = db.metafeatures()
    assert mf.loc["b", "NumberOfInstances"] == 100 and np.isnan(mf.loc["c", "ClassEntropy"])
    info = db.info()
    assert info["tasks"] == 3 and info["evaluations"] == 3 * len(configs)
    assert info["split_evaluations"] == 9 * len(configs)
    assert sum(info["configurations_per_family"].values()) == len(configs)
    assert info["sources"]["own"]["evaluations"] == 3 * len(configs)
    # fit times: one source's (its protocol's) apart from another's
    db.add_source("elsewhere", "openml")
    db.add_evaluations("a", [EvalRecord(configs[0], {"balanced_accuracy": 0.5}, fit_time_s=9.0)], source="elsewhere")
    times = db.fit_time_matrix(source="own")
    assert times.shape == (3, len(configs)) and np.allclose(times.to_numpy(), 0.1)
    assert db.fit_time_matrix().loc["a", config_hash(configs[0])] == pytest.approx(4.55)  # mean over sources
    assert db.fit_time_matrix(source="elsewhere").shape == (1, 1)
    db.close()


def test_unknown_references_are_refused(url):
    db = SQLMetaDB(url)
    with pytest.raises(InputError, match="Unknown source 'lcdb'"):
        db.add_task("t", source="lcdb", problem_type="binary")
    db.add_source("own", "own")
    with pytest.raises(InputError, match="Unknown task 'nope'"):
        db.add_evaluations("nope", [EvalRecord({"family": "knn"})], source="own")
    with pytest.raises(InputError, match="Source kind"):
        db.add_source("x", "kaggle")
    db.close()


_WRITER = textwrap.dedent("""
    import sys
    from autometa.metadb import EvalRecord, SQLMetaDB
    from autometa.spaces import get_space, family_defaults
    url, worker = sys.argv[1], int(sys.argv[2])
    db = SQLMetaDB(url)
    db.add_source("own", "own")
    db.add_task("shared", source="own", problem_type="binary")
    cs = get_space("binary", seed=worker)
    shared = [dict(c) for c in family_defaults(cs)]          # every writer races on these configurations
    own = [dict(c) for c in cs.sample_configuration(20)]
    for i, c in enumerate(shared + own):
        db.add_evaluations("shared", [EvalRecord(c, {"accuracy": 0.5}, run_key=f"w{worker}")], source="own")
""")


def test_eight_concurrent_writers_lose_no_row(url):
    SQLMetaDB(url).close()  # create the schema once
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, url, str(w)], stderr=subprocess.PIPE, text=True)
             for w in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    db = SQLMetaDB(url)
    info = db.info()
    assert info["evaluations"] == 8 * (8 + 20)  # each writer's rows, none lost
    assert info["configurations_per_family"]  # shared configurations stored once:
    n_distinct = len(db.configurations())
    assert 8 <= n_distinct <= 8 + 8 * 20
    db.close()


def test_tune_records_its_trials_as_own_runs(url, credit_small, tmp_path):
    from dataclasses import asdict

    from autometa import read_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(credit_small, label="Status", time_budget_s=300)
    out = tmp_path / "run"
    result = tune(task, backend="random", n_trials=4, out_dir=out, isolation="none", families=["linear", "knn"],
                  metadb=url, record=True)
    assert result.setup["recorded_evaluations"] == 4 * (1 + 10)  # a mean row and 10 split rows (2 x 5-fold) per trial
    db = SQLMetaDB(url)
    m = db.performance_matrix("balanced_accuracy", source="own")
    assert m.shape == (1, 4)
    assert m.max(axis=1).iloc[0] == pytest.approx(result.best_score)
    described, trials = read_run(out)  # the run directory, read back and handed to the store again
    assert described["fingerprint"] == task.fingerprint() and len(trials) == 4
    assert db.add_run(described, [asdict(t) for t in trials], run_key=str(out.resolve())) == 0  # twice adds nothing
    with pytest.raises(InputError, match="not a finished autometa tune directory"):
        read_run(tmp_path)
    db.close()


def test_info_is_json_serializable(url):
    db = SQLMetaDB(url)
    json.dumps(db.info())
    db.close()


def test_bad_urls_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="needs the driver 'MySQLdb'"):
        SQLMetaDB("mysql+mysqldb://u@localhost/x")
    with pytest.raises(InputError, match="Cannot connect .* is the server running"):
        SQLMetaDB("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    with pytest.raises(InputError, match=r"'postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x'"):  # no password shown
        SQLMetaDB("postgresql+psycopg://u:secret@127.0.0.1:1/x")
    with pytest.raises(InputError, match="must be a SQLAlchemy URL such as 'sqlite:///"):
        SQLMetaDB("metadb.sqlite")
    with pytest.raises(InputError, match="Cannot open the meta-database URL 'nodb://x'"):
        SQLMetaDB("nodb://x")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InputError, match="Cannot create the directory .* choose a writable location"):
        SQLMetaDB(f"sqlite:///{blocker / 'sub' / 'm.sqlite'}")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(InputError, match="check that the file and its directory are writable"):
            SQLMetaDB(f"sqlite:///{locked / 'm.sqlite'}")


def test_a_server_that_does_not_answer_fails_within_the_connect_timeout(monkeypatch):
    import socket

    from autometa.metadb import _store

    pytest.importorskip("psycopg")
    monkeypatch.setattr(_store, "_CONNECT_TIMEOUT_S", 2)  # libpq's least
    with socket.socket() as silent:  # the kernel completes the handshake; nothing ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        t0 = time.perf_counter()
        with pytest.raises(InputError, match="Cannot connect .*timeout"):
            SQLMetaDB(f"postgresql+psycopg://u@127.0.0.1:{silent.getsockname()[1]}/x")
    assert time.perf_counter() - t0 < 10


def test_a_new_store_at_any_url_gets_the_shipped_data_on_first_read(url, tmp_path, monkeypatch):
    from autometa.metadb import SHIPPED_SOURCE

    metadata = Path(__file__).resolve().parents[1] / "metadata"
    if not (metadata / "MANIFEST.json").is_file():
        pytest.skip("no shipped meta-dataset")
    small = tmp_path / "small"
    (small / "evaluations").mkdir(parents=True)
    for f in ("MANIFEST.json", "suite.csv", "configurations.csv"):
        shutil.copy(metadata / f, small / f)
    for f in sorted((metadata / "evaluations").glob("*.csv"))[:2]:
        shutil.copy(f, small / "evaluations" / f.name)
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(small))
    assert SQLMetaDB(url, shipped=False).info()["tasks"] == 0
    db = SQLMetaDB(url)
    tasks = db.tasks()
    assert len(tasks) == 2 and set(tasks.source) == {SHIPPED_SOURCE}
    assert db.ensure_shipped() is False and SQLMetaDB(url).ensure_shipped() is False
    db.close()
