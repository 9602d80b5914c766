"""The meta-dataset shipped with autometa, loaded into a store: tasks, their meta-features,
the fixed design and its evaluations, and the tuned optima (a SMAC search per task started
from its fixed design, ``evaluations_tuned/``, loaded under :data:`TUNED_SOURCE`).

It is built by experiments/build_metadb.py into the repository's ``metadata/`` directory and
installed as the package data ``autometa._metadata`` (pyproject.toml maps that directory),
so a wheel and an editable install find it alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select, update

from autometa.exceptions import InputError
from autometa.metadb._schema import MEAN_SPLIT, TUNED_SOURCE, Source
from autometa.metadb._store import EvalRecord, SQLMetaDB

__all__ = ["build_of", "load_shipped", "loaded_build", "shipped_dir", "SHIPPED_SOURCE", "TUNED_SOURCE"]

SHIPPED_SOURCE = "autometa-suite"
_PACKAGE = "autometa._metadata"
#: The directory of the tuned optima inside a shipped meta-dataset (absent in older builds).
_TUNED_DIR = "evaluations_tuned"
_METRIC_COLUMNS = ("balanced_accuracy", "accuracy", "roc_auc", "log_loss", "rmse", "mae", "r2")


def shipped_dir() -> Path | None:
    """The directory of the shipped meta-dataset, or None when there is none.

    ``$AUTOMETA_METADATA_DIR`` when set (a directory with a MANIFEST.json, or ``none`` for no
    shipped meta-dataset at all), else the package data ``autometa._metadata`` of the
    installed package, else ``metadata/`` beside the package (a checkout used without
    installing it).

    Raises
    ------
    InputError
        When ``$AUTOMETA_METADATA_DIR`` names a directory without a MANIFEST.json.
    """
    env = os.environ.get("AUTOMETA_METADATA_DIR", "").strip()
    if env.lower() == "none":
        return None
    if env:
        d = Path(env).expanduser()
        if not (d / "MANIFEST.json").is_file():
            raise InputError(
                "$AUTOMETA_METADATA_DIR must be a directory with a MANIFEST.json (a copy of the shipped "
                f"meta-dataset) or 'none'; got {env!r}."
            )
        return d
    candidates = [_package_dir(), Path(__file__).resolve().parents[2] / "metadata"]
    return next((c for c in candidates if c is not None and (c / "MANIFEST.json").is_file()), None)


def _package_dir() -> Path | None:
    try:
        root = resources.files(_PACKAGE)
    except ModuleNotFoundError:  # an install from before the data were package data
        return None
    return root if isinstance(root, Path) else None  # a zipped install: use the checkout fallback


def build_of(directory: str | os.PathLike[str]) -> str:
    """The build stamp of a shipped meta-dataset directory (its MANIFEST's ``updated_at``)."""
    return str(json.loads((Path(directory) / "MANIFEST.json").read_text()).get("updated_at", ""))


def loaded_build(db: SQLMetaDB) -> str | None:
    """The build stamp of the shipped meta-dataset last loaded into ``db`` completely; None
    when it never was (or a load was interrupted before its end)."""
    with db.engine.connect() as conn:
        versions = conn.execute(select(Source.versions).where(Source.name == SHIPPED_SOURCE)).scalar_one_or_none()
    stamp = json.loads(versions).get("updated_at") if versions else None
    return str(stamp) if stamp else None


def load_shipped(db: SQLMetaDB, directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Load a shipped meta-dataset (by default :func:`shipped_dir`) into ``db``; returns its
    manifest (empty when there is none).

    Idempotent: rows already stored are left as they are, so loading a newer build adds
    what it has new. The build stamp is recorded last, so an interrupted load counts as
    not loaded (:func:`loaded_build`) and is completed by the next one.
    """
    d = Path(directory) if directory is not None else shipped_dir()
    if d is None:
        return {}
    manifest = json.loads((d / "MANIFEST.json").read_text())
    suite = pd.read_csv(d / "suite.csv").set_index("task_id")
    configs = pd.read_csv(d / "configurations.csv").set_index("hash")
    config_of = {h: json.loads(c) for h, c in configs["config_json"].items()}
    versions = {"protocol": manifest.get("protocol"), "versions": manifest.get("versions")}
    db.add_source(SHIPPED_SOURCE, "own", description=manifest.get("description", ""), versions=versions)
    db.add_configurations(config_of.values())
    added: set[str] = set()

    def add_task(task_id: str, stem: str) -> None:
        if task_id in added:
            return
        added.add(task_id)
        row = suite.loc[task_id]
        mf_path = d / "metafeatures" / f"{stem}.json"
        mf = json.loads(mf_path.read_text()) if mf_path.is_file() else {}
        db.add_task(
            task_id, source=SHIPPED_SOURCE, problem_type=str(row["problem_type"]), target=str(row["target"]),
            n_rows=int(row["n_rows"]), n_features=int(row["n_features"]),
            n_classes=None if pd.isna(row.get("n_classes")) else int(row["n_classes"]),
            protocol=manifest.get("protocol", {}),
        )
        if mf:
            db.add_metafeatures(task_id, mf["values"], extractor="autometa", version=str(mf["extractor_version"]))

    for f in sorted((d / "evaluations").glob("*.csv")):
        task_id = f.stem.replace("__", "/")
        if task_id not in suite.index:
            continue
        add_task(task_id, f.stem)
        ev = pd.read_csv(f)
        records = _eval_records(ev, lambda r: config_of.get(r["config_hash"]))
        db.add_evaluations(task_id, records, source=SHIPPED_SOURCE)
    _load_tuned(db, d, manifest, suite, add_task)
    with db.engine.begin() as conn:
        conn.execute(update(Source).where(Source.name == SHIPPED_SOURCE).values(
            versions=json.dumps({**versions, "updated_at": build_of(d)}, sort_keys=True, default=str)
        ))
    return manifest


def _eval_records(ev: pd.DataFrame, config: Callable[[dict[str, Any]], dict[str, Any] | None]) -> list[EvalRecord]:
    """One stored CSV's rows as evaluation records (mean over splits); rows whose
    configuration is unknown (``config`` returns None) are skipped."""
    records = []
    for r in ev.to_dict("records"):
        cfg = config(r)
        if cfg is not None:
            scores = {m: r[m] for m in _METRIC_COLUMNS if m in ev.columns and pd.notna(r[m])}
            records.append(EvalRecord(cfg, scores, MEAN_SPLIT, str(r["status"]), r["fit_time_s"], ""))
    return records


def _load_tuned(db: SQLMetaDB, d: Path, manifest: dict[str, Any], suite: pd.DataFrame,
                add_task: Callable[[str, str], None]) -> None:
    """The tuned optima of a shipped directory (none in builds before them): one CSV per
    task in the fixed design's columns plus each configuration's JSON, under TUNED_SOURCE."""
    files = sorted((d / _TUNED_DIR).glob("*.csv"))
    if not files:
        return
    tuned = manifest.get("tuned") or {}
    db.add_source(TUNED_SOURCE, "own", description=str(tuned.get("description", "")),
                  versions={"protocol": tuned.get("protocol"), "versions": tuned.get("versions")})
    for f in files:
        task_id = f.stem.replace("__", "/")
        if task_id not in suite.index:
            continue
        add_task(task_id, f.stem)
        ev = pd.read_csv(f)
        records = _eval_records(ev, lambda r: json.loads(r["config_json"]))
        db.add_evaluations(task_id, records, source=TUNED_SOURCE)
