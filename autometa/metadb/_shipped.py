"""The meta-dataset shipped in ``metadata/`` (built by experiments/build_metadb.py), loaded
into a store: tasks, their meta-features, the fixed design and its evaluations."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from autometa.metadb._schema import MEAN_SPLIT
from autometa.metadb._store import EvalRecord, SQLMetaDB

__all__ = ["load_shipped", "shipped_dir", "SHIPPED_SOURCE"]

SHIPPED_SOURCE = "autometa-suite"
_METRIC_COLUMNS = ("balanced_accuracy", "accuracy", "roc_auc", "log_loss", "rmse", "mae", "r2")


def shipped_dir() -> Path | None:
    """``$AUTOMETA_METADATA_DIR``, else the ``metadata/`` folder beside the package (a
    checkout or editable install); None when neither has a MANIFEST.json."""
    env = os.environ.get("AUTOMETA_METADATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "metadata")
    return next((c for c in candidates if (c / "MANIFEST.json").is_file()), None)


def load_shipped(db: SQLMetaDB, directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Load the shipped meta-dataset into ``db`` (idempotent); returns the manifest."""
    d = Path(directory) if directory is not None else shipped_dir()
    if d is None:
        return {}
    manifest = json.loads((d / "MANIFEST.json").read_text())
    suite = pd.read_csv(d / "suite.csv").set_index("task_id")
    configs = pd.read_csv(d / "configurations.csv").set_index("hash")
    config_of = {h: json.loads(c) for h, c in configs["config_json"].items()}
    db.add_source(SHIPPED_SOURCE, "own", description=manifest.get("description", ""),
                  versions={"protocol": manifest.get("protocol"), "versions": manifest.get("versions")})
    db.add_configurations(config_of.values())
    for f in sorted((d / "evaluations").glob("*.csv")):
        task_id = f.stem.replace("__", "/")
        if task_id not in suite.index:
            continue
        row = suite.loc[task_id]
        mf_path = d / "metafeatures" / f"{f.stem}.json"
        mf = json.loads(mf_path.read_text()) if mf_path.is_file() else {}
        db.add_task(
            task_id, source=SHIPPED_SOURCE, problem_type=str(row["problem_type"]), target=str(row["target"]),
            n_rows=int(row["n_rows"]), n_features=int(row["n_features"]),
            n_classes=None if pd.isna(row.get("n_classes")) else int(row["n_classes"]),
            protocol=manifest.get("protocol", {}),
        )
        if mf:
            db.add_metafeatures(task_id, mf["values"], extractor="autometa", version=str(mf["extractor_version"]))
        ev = pd.read_csv(f)
        records = [
            EvalRecord(
                config_of[r["config_hash"]],
                {m: r[m] for m in _METRIC_COLUMNS if m in ev.columns and pd.notna(r[m])},
                MEAN_SPLIT, str(r["status"]), r["fit_time_s"], "",
            )
            for r in ev.to_dict("records") if r["config_hash"] in config_of
        ]
        db.add_evaluations(task_id, records, source=SHIPPED_SOURCE)
    return manifest
