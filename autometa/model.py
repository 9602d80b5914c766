"""Saving, loading, sharing and applying tuned models.

A model file is a joblib bundle of the fitted pipeline with what is needed to use it
safely: the feature columns and their kinds, the label, the classes and the versions of
the packages it was fitted with. Loading checks those versions: a pipeline pickled by
another scikit-learn may silently predict differently. joblib files run code when
loaded: only load files you trust.

To share a model, :func:`export_model` writes the same bundle as a skops file (the
``share`` extra: ``pip install 'autometa[share]'``). Loading a ``.skops`` file runs no
code from it: :func:`load_model` trusts only the types autometa's pipelines are made of
(:data:`SKOPS_TRUSTED_TYPES`, besides those skops trusts itself) and refuses a file that
holds any other type unless the caller names it in ``trusted``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from autometa.exceptions import InputError, ModelVersionError
from autometa.task import Task

__all__ = ["SKOPS_TRUSTED_TYPES", "SavedModel", "export_model", "load_model", "save_model"]

_FORMAT = 1
_SKOPS_FORMAT = "autometa-skops-1"
_CHECKED = ("scikit-learn", "numpy", "pandas", "autometa")
_EXPORT_FORMATS = ("skops",)

#: The types in autometa's fitted pipelines (autometa.spaces: every family, its
#: preprocessing, TransformedTargetRegressor and CalibratedClassifierCV) that skops does not
#: trust by itself: :func:`load_model` trusts these in a ``.skops`` file and refuses any
#: other untrusted type. Pipelines hold no autometa-defined classes; an ensemble of them is
#: autometa's own EnsembleClassifier or EnsembleRegressor (plain weighted averages).
SKOPS_TRUSTED_TYPES: frozenset[str] = frozenset({
    "autometa.ensemble._model.EnsembleClassifier",
    "autometa.ensemble._model.EnsembleRegressor",
    "numpy.dtype",  # the dtype parameters of the encoders and imputers
    # HistGradientBoosting: its trees, and the check_array partial of its categorical preprocessing
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",  # skops lists the function a partial wraps separately; only check_array is trusted
    "sklearn.utils.validation.check_array",
    # random forest, extra trees, decision tree
    "sklearn.tree._tree.Tree",
    # SVC with Platt scaling (CalibratedClassifierCV)
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # MLP (adam, scikit-learn's default solver)
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    # k nearest neighbours: the search tree and the Minkowski metrics (p = 1 or 2) it may pick
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
})


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
    ensemble: dict[str, Any] | None = None

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


_FIELDS = tuple(SavedModel.__dataclass_fields__)
#: Fields a bundle written before they existed may lack.
_OPTIONAL = ("ensemble",)


def save_model(pipeline: Any, path: str | os.PathLike[str], *, task: Task, best_config: dict[str, Any],
               ensemble: dict[str, Any] | None = None) -> Path:
    """Write the fitted ``pipeline`` of ``task`` to ``path`` (atomically).

    ``pipeline`` may be an :class:`~autometa.ensemble.EnsembleClassifier` or
    :class:`~autometa.ensemble.EnsembleRegressor`; ``ensemble`` then describes it (members,
    weights), as ``TuneResult.ensemble`` does.
    """
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
        "ensemble": ensemble,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    joblib.dump(bundle, tmp)
    os.replace(tmp, path)
    return path


def load_model(
    path: str | os.PathLike[str], *, check_versions: bool = True, trusted: Iterable[str] = ()
) -> SavedModel:
    """Load a model written by :func:`save_model` (or ``autometa tune``) or by
    :func:`export_model`.

    A ``.skops`` file (or any skops file, whatever its name) is loaded with skops, which
    runs no code from the file; any other file with joblib, which does: only load joblib
    files you trust.

    Parameters
    ----------
    path : path
        A ``model.joblib`` or a ``.skops`` file, or the ``--out`` directory of a run (its
        ``model.joblib``).
    check_versions : bool
        Refuse a model saved with another major.minor version of scikit-learn, numpy,
        pandas or autometa.
    trusted : iterable of str
        Types a skops file may hold besides :data:`SKOPS_TRUSTED_TYPES` and those skops
        trusts itself, by the names ``skops.io.get_untrusted_types`` gives. Only name types
        you have inspected.

    Raises
    ------
    InputError
        The file is missing or not an autometa model, or a skops file holds a type that is
        not trusted (the message names it), or skops is not installed.
    ModelVersionError
        ``check_versions`` is on and the file was written with other versions.
    """
    p = Path(path)
    if p.is_dir():  # the --out directory of a run: its model
        if not (p / "model.joblib").is_file():
            raise InputError(f"'{p}' holds no model.joblib; give the --out directory of a finished 'autometa tune' "
                             "run or a model file.")
        p = p / "model.joblib"
    if not p.is_file():
        raise InputError(
            f"Model file '{p}' does not exist; give the model.joblib written by 'autometa tune' "
            "or a .skops file written by 'autometa export'."
        )
    if p.suffix == ".skops" or _is_zip(p):  # never unpickle a file that claims to be skops
        bundle = _load_skops(p, trusted)
    else:
        try:
            bundle = joblib.load(p)
        except Exception as exc:
            raise InputError(f"Model file '{p}' could not be loaded ({type(exc).__name__}); is it a model.joblib from autometa?") from None
        if not isinstance(bundle, dict) or bundle.get("format") != _FORMAT:
            raise InputError(f"Model file '{p}' is not an autometa model; give the model.joblib written by 'autometa tune'.")
    if check_versions:
        _check_versions(p, bundle["package_versions"])
    return SavedModel(**{k: v for k, v in bundle.items() if k in _FIELDS})


def export_model(
    source: str | os.PathLike[str],
    path: str | os.PathLike[str] | None = None,
    *,
    format: str = "skops",
    check_versions: bool = True,
) -> Path:
    """Write a model in a format that is safe to share (atomically).

    Parameters
    ----------
    source : path
        An output directory of ``autometa tune`` (its ``model.joblib``) or a model file;
        it is loaded with :func:`load_model`, so it must be a file you trust.
    path : path, optional
        Where to write; it must end in ``.skops``. Default: ``model.skops`` in the run
        directory, or the model file's name with the suffix ``.skops``.
    format : str
        ``"skops"``: the pipeline and the bundle's metadata (feature columns, label,
        classes, metric, best configuration, package versions) as plain values, which
        :func:`load_model` reads back without running code from the file.
    check_versions : bool
        Refuse a source model saved with other package versions (see :func:`load_model`).

    Returns
    -------
    Path
        The file written.
    """
    if format not in _EXPORT_FORMATS:
        raise InputError(f"The format of export_model must be one of {', '.join(_EXPORT_FORMATS)}; got {format!r}.")
    src = Path(source)
    if src.is_dir():
        model_file, default = src / "model.joblib", src / "model.skops"
        if not model_file.is_file():
            raise InputError(
                f"'{src}' holds no model.joblib; give the --out directory of a finished 'autometa tune' run or a model file."
            )
    elif src.is_file():
        model_file, default = src, src.with_suffix(".skops")
    else:
        raise InputError(f"'{src}' does not exist; give the --out directory of a finished 'autometa tune' run or a model file.")
    dest = default if path is None else Path(path)
    if dest.suffix != ".skops":
        raise InputError(f"The path of a skops model must end in .skops; got '{dest}'.")
    if not dest.parent.is_dir():
        raise InputError(f"The directory of '{dest}' does not exist; create it or give another path.")
    sio = _skops_io()
    saved = load_model(model_file, check_versions=check_versions)
    meta = {k: _plain(getattr(saved, k), k) for k in _FIELDS if k != "pipeline"}
    meta["package_versions"] = {**meta["package_versions"], "skops": _skops_version()}
    bundle = {"format": _SKOPS_FORMAT, "pipeline": saved.pipeline, **meta}
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            sio.dump(bundle, f, compression=zipfile.ZIP_DEFLATED)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest



def _is_zip(p: Path) -> bool:
    try:
        return zipfile.is_zipfile(p)
    except OSError:
        return False


def _skops_io() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise InputError("Reading and writing .skops models needs the skops package: pip install 'autometa[share]'.") from None
    return sio


def _skops_version() -> str:
    from importlib import metadata

    return metadata.version("skops")


def _load_skops(p: Path, trusted: Iterable[str]) -> dict[str, Any]:
    sio = _skops_io()
    data = p.read_bytes()  # read once: the types checked are the types loaded
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise InputError(f"Model file '{p}' could not be read as a skops file ({type(exc).__name__}); is it a .skops file from 'autometa export'?") from None
    allowed = SKOPS_TRUSTED_TYPES | set(trusted)
    unknown = [t for t in untrusted if t not in allowed]
    if unknown:
        raise InputError(
            f"Model file '{p}' holds type(s) autometa does not trust: {', '.join(unknown)}; it was not loaded. "
            f"Inspect them with skops.io.get_untrusted_types(file='{p}') and trust each one you have checked "
            "with --trust TYPE (trusted=[...] in load_model)."
        )
    try:
        bundle = sio.loads(data, trusted=untrusted)
    except Exception as exc:
        raise InputError(f"Model file '{p}' could not be loaded by skops ({type(exc).__name__}: {exc}).") from None
    if (
        not isinstance(bundle, dict) or bundle.get("format") != _SKOPS_FORMAT
        or not set(_FIELDS) - set(_OPTIONAL) <= set(bundle)
        or not isinstance(bundle["package_versions"], dict)
    ):
        raise InputError(f"Model file '{p}' is not an autometa model; give a .skops file written by 'autometa export'.")
    return bundle


def _check_versions(p: Path, saved: dict[str, str]) -> None:
    from autometa.versions import package_versions

    now = package_versions()
    bad = [f"{k} {saved.get(k)} (installed {now.get(k)})" for k in _CHECKED if _minor(saved.get(k)) != _minor(now.get(k))]
    if bad:
        raise ModelVersionError(
            f"Model file '{p}' was saved with {', '.join(bad)}; install those versions or refit the model "
            "(--ignore-versions to load it anyway)."
        )


def _plain(value: Any, name: str) -> Any:
    """``value`` as plain Python values (dict, list, str, numbers, bool, None) skops
    stores and loads without trusting anything."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, name) for k, v in value.items()}
    raise InputError(f"The model's {name} holds a {type(value).__name__} value ({value!r}), which a skops file cannot hold as plain data.")


def _minor(version: str | None) -> str | None:
    return None if version is None else ".".join(version.split(".")[:2])
