"""The shipped meta-dataset (metadata/): consistent files, and loading it into a store."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from autometa import InputError
from autometa.cli import app
from autometa.metadb import SHIPPED_SOURCE, SQLMetaDB, load_shipped, shipped_dir
from autometa.spaces import FAMILIES, fixed_design

ROOT = Path(__file__).resolve().parents[1]
METADATA = ROOT / "metadata"
pytestmark = pytest.mark.skipif(not (METADATA / "MANIFEST.json").is_file(), reason="no shipped meta-dataset built yet")


def _same_config(a: dict, b: dict) -> bool:
    """Equal configurations, floats up to their last digit (scipy releases round the Sobol
    points' scaling differently: 130.0852429921202 against ...203)."""
    if a.keys() != b.keys():
        return False
    return all(math.isclose(a[k], b[k], rel_tol=1e-12) if isinstance(a[k], float) and isinstance(b[k], float)
               else a[k] == b[k] for k in a)


def test_configurations_file_is_the_fixed_design():
    configs = pd.read_csv(METADATA / "configurations.csv")
    for (kind, fam), group in configs.groupby(["kind", "family"]):
        design = fixed_design("regression" if kind == "regression" else "binary", fam, n=32)
        stored = [json.loads(c) for c in group.sort_values("design_index").config_json]
        assert len(stored) == len(design) and all(_same_config(a, b) for a, b in zip(stored, design, strict=True))
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


@pytest.fixture()
def small_shipped(tmp_path):
    """The shipped meta-dataset cut to its first three tasks (loads in a fraction of a second)."""
    d = tmp_path / "small"
    (d / "evaluations").mkdir(parents=True)
    (d / "metafeatures").mkdir()
    for f in ("MANIFEST.json", "suite.csv", "configurations.csv"):
        shutil.copy(METADATA / f, d / f)
    for f in sorted((METADATA / "evaluations").glob("*.csv"))[:3]:
        shutil.copy(f, d / "evaluations" / f.name)
        shutil.copy(METADATA / "metafeatures" / f"{f.stem}.json", d / "metafeatures" / f"{f.stem}.json")
    return d


def _shipped_tasks(url: str) -> int:
    info = SQLMetaDB(url, shipped=False).info()
    return info["sources"].get(SHIPPED_SOURCE, {}).get("tasks", 0)


def test_ensure_shipped_loads_once_per_build(tmp_path, monkeypatch, small_shipped):
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(small_shipped))
    db = SQLMetaDB(f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert db.ensure_shipped() is True
    n = db.info()["evaluations"]
    assert n > 0 and db.ensure_shipped() is False  # same build: nothing to do
    assert db.info()["evaluations"] == n
    # a newer build (a newer autometa) is loaded on top of the stored one
    manifest = json.loads((small_shipped / "MANIFEST.json").read_text())
    (small_shipped / "MANIFEST.json").write_text(json.dumps({**manifest, "updated_at": "2099-01-01T00:00:00+00:00"}))
    assert db.ensure_shipped() is True and db.ensure_shipped() is False
    assert db.info()["evaluations"] == n
    db.close()


def test_any_store_loads_it_on_its_first_read_and_writes_never_do(tmp_path, monkeypatch, small_shipped):
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(small_shipped))
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    writer = SQLMetaDB(url)  # a process that only records runs
    writer.add_source("own", "own")
    writer.add_task("t", source="own", problem_type="binary")
    assert _shipped_tasks(url) == 0
    assert len(SQLMetaDB(url).tasks()) == 3 + 1  # the first read loads it
    assert SQLMetaDB(url).ensure_shipped() is False  # once per build, not per process
    constructed = f"sqlite:///{tmp_path / 'constructed.sqlite'}"
    assert SQLMetaDB(constructed, shipped=False).tasks().empty  # opted out
    assert _shipped_tasks(constructed) == 0


def test_where_the_shipped_data_are_found(monkeypatch, tmp_path, small_shipped):
    from importlib.resources import files

    monkeypatch.delenv("AUTOMETA_METADATA_DIR")
    # package data of autometa (pyproject.toml maps metadata/ onto autometa._metadata); in this
    # checkout's editable install that is metadata/ itself (reinstall with `pip install -e .`)
    assert Path(str(files("autometa._metadata"))).resolve() == METADATA.resolve()
    assert shipped_dir().resolve() == METADATA.resolve()
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(small_shipped))
    assert shipped_dir() == small_shipped
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", "none")
    assert shipped_dir() is None
    assert SQLMetaDB(f"sqlite:///{tmp_path / 'm.sqlite'}").ensure_shipped() is False
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(tmp_path))
    with pytest.raises(InputError, match=r"AUTOMETA_METADATA_DIR must be a directory with a MANIFEST.json"):
        shipped_dir()


def test_the_package_list_names_every_subpackage():
    # pyproject.toml lists the packages (mapping metadata/ into autometa needs it): a new
    # subpackage missing there would be missing from the wheel
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "autometa").rglob("__init__.py")}
    assert on_disk - packages == set()
    data = {"autometa._metadata", "autometa._metadata.evaluations", "autometa._metadata.evaluations_tuned",
            "autometa._metadata.metafeatures"}
    assert packages - on_disk == data


def test_load_shipped_command(tmp_path, monkeypatch, small_shipped):
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", str(small_shipped))
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    res = CliRunner().invoke(app, ["metadb", "load-shipped", "--url", url])
    assert res.exit_code == 0, res.output
    assert f"loaded {SHIPPED_SOURCE}" in res.stdout and "3 tasks" in res.stdout and "new)" in res.stdout
    assert _shipped_tasks(url) == 3
    res = CliRunner().invoke(app, ["metadb", "load-shipped", "--url", url])
    assert res.exit_code == 0 and "(0 new)" in res.stdout
    # metadb info on a new store at another URL shows it too (its first read loads it)
    res = CliRunner().invoke(app, ["metadb", "info", "--json", "--url", f"sqlite:///{tmp_path / 'y.sqlite'}"])
    assert res.exit_code == 0 and json.loads(res.stdout)["sources"][SHIPPED_SOURCE]["tasks"] == 3
    for bad, says in [("postgresql+psycopg://u:secret@127.0.0.1:1/x", "Cannot connect"),
                      (f"sqlite:///{small_shipped / 'MANIFEST.json' / 'x.sqlite'}", "Cannot create the directory"),
                      ("metadb.sqlite", "must be a SQLAlchemy URL")]:
        res = CliRunner().invoke(app, ["metadb", "load-shipped", "--url", bad])
        assert res.exit_code == 2 and says in res.stderr and "secret" not in res.stderr, res.output
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
    monkeypatch.setenv("AUTOMETA_METADATA_DIR", "none")
    res = CliRunner().invoke(app, ["metadb", "load-shipped", "--url", url])
    assert res.exit_code == 2 and "No shipped meta-dataset" in res.stderr


@pytest.mark.slow
def test_an_installed_wheel_ships_the_meta_dataset(tmp_path):
    """A user's install: a wheel built from the project, installed into a fresh environment
    and run outside the checkout, finds the meta-dataset in its own package data."""
    src = tmp_path / "src"  # a copy: building in place leaves build/, whose stale files reach later wheels
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("autometa", "metadata"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("autometa-*.whl")
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    # the dependencies come from this interpreter's site-packages, added after the new
    # environment's own (a plain path entry: its .pth files, such as this checkout's
    # editable finder, are not run, so the new environment never sees the checkout)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "_autometa_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMETA_", "PYTHON"))}
    env["HOME"] = str(tmp_path / "home")
    away = tmp_path / "elsewhere"
    away.mkdir()
    code = ("import json, autometa; from autometa.metadb import shipped_dir; "
            "print(json.dumps([autometa.__file__, str(shipped_dir())]))")
    res = subprocess.run([python, "-c", code], cwd=away, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    module, data = (Path(p) for p in json.loads(res.stdout))
    assert module.is_relative_to(site) and data == Path(site) / "autometa" / "_metadata"
    res = subprocess.run([env_dir / "bin" / "autometa", "metadb", "info", "--json", "--url",
                          f"sqlite:///{tmp_path / 'x.sqlite'}"], cwd=away, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((METADATA / "MANIFEST.json").read_text())
    assert json.loads(res.stdout)["tasks"] == manifest["counts"]["tasks_with_evaluations"] > 0
