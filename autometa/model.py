"""Saving, loading and applying tuned models.

A model file is a joblib bundle of the fitted pipeline with what is needed to use it
safely: the feature columns and their kinds, the label, the classes and the versions of
the packages it was fitted with. Loading checks those versions: a pipeline pickled by
another scikit-learn may silently predict differently. joblib files run code when
loaded: only load files you trust.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from autometa.exceptions import InputError, ModelVersionError
from autometa.task import Task

__all__ = ["SavedModel", "save_model", "load_model"]

_FORMAT = 1
_CHECKED = ("scikit-learn", "numpy", "pandas", "autometa")


@dataclass(frozen=True)
class SavedModel:
    """A loaded model bundle."""

    pipeline: Any
    feature_columns: list[str]
    categorical_columns: list[str]
    label: str
    problem_type: str
    classes: list[Any] | None
    metric: str
    best_config: dict[str, Any]
    package_versions: dict[str, str]

    def prepare(self, data: pd.DataFrame) -> pd.DataFrame:
        """Select and type the feature columns of raw data the way training saw them."""
        missing = [c for c in self.feature_columns if c not in data.columns]
        if missing:
            raise InputError(
                f"The data lacks feature column(s) {missing[:10]} the model was trained on; "
                "give a table with the training columns."
            )
        out = {}
        for col in self.feature_columns:
            s = data[col]
            if col in self.categorical_columns:
                out[col] = s.astype(str).where(s.notna(), None).astype("category")
            else:
                out[col] = pd.to_numeric(s, errors="coerce").astype(float)
        return pd.DataFrame(out, index=data.index)

    def predict(self, data: pd.DataFrame) -> pd.DataFrame:
        """Predictions for each row: a ``prediction`` column, plus ``proba_<class>``
        columns for classifiers."""
        X = self.prepare(data)
        out = pd.DataFrame({"prediction": self.pipeline.predict(X)}, index=data.index)
        if self.problem_type != "regression" and hasattr(self.pipeline, "predict_proba"):
            try:
                proba = self.pipeline.predict_proba(X)
            except AttributeError:  # an SVC without probability estimates
                return out
            for i, cls in enumerate(self.pipeline.classes_):
                out[f"proba_{cls}"] = proba[:, i]
        return out


def save_model(pipeline: Any, path: str | os.PathLike[str], *, task: Task, best_config: dict[str, Any]) -> Path:
    """Write the fitted ``pipeline`` of ``task`` to ``path`` (atomically)."""
    from autometa.versions import package_versions

    path = Path(path)
    bundle = {
        "format": _FORMAT,
        "pipeline": pipeline,
        "feature_columns": list(task.X.columns),
        "categorical_columns": task.categorical_features,
        "label": task.label,
        "problem_type": task.problem_type,
        "classes": None if task.classes is None else [c.item() if isinstance(c, np.generic) else c for c in task.classes],
        "metric": task.metric,
        "best_config": best_config,
        "package_versions": package_versions(),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    joblib.dump(bundle, tmp)
    os.replace(tmp, path)
    return path


def load_model(path: str | os.PathLike[str], *, check_versions: bool = True) -> SavedModel:
    """Load a model written by :func:`save_model` (or ``autometa tune``).

    Raises
    ------
    InputError
        The file is missing or not an autometa model.
    ModelVersionError
        ``check_versions`` is on and the file was written with another major.minor
        version of scikit-learn, numpy, pandas or autometa.
    """
    from autometa.versions import package_versions

    p = Path(path)
    if not p.is_file():
        raise InputError(f"Model file '{p}' does not exist; give the model.joblib written by 'autometa tune'.")
    try:
        bundle = joblib.load(p)
    except Exception as exc:
        raise InputError(f"Model file '{p}' could not be loaded ({type(exc).__name__}); is it a model.joblib from autometa?") from None
    if not isinstance(bundle, dict) or bundle.get("format") != _FORMAT:
        raise InputError(f"Model file '{p}' is not an autometa model; give the model.joblib written by 'autometa tune'.")
    if check_versions:
        now = package_versions()
        saved = bundle["package_versions"]
        bad = [
            f"{k} {saved.get(k)} (installed {now.get(k)})"
            for k in _CHECKED
            if _minor(saved.get(k)) != _minor(now.get(k))
        ]
        if bad:
            raise ModelVersionError(
                f"Model file '{p}' was saved with {', '.join(bad)}; install those versions or refit the model "
                "(--ignore-versions to load it anyway)."
            )
    return SavedModel(**{k: v for k, v in bundle.items() if k != "format"})


def _minor(version: str | None) -> str | None:
    return None if version is None else ".".join(version.split(".")[:2])
