"""Import OpenML knowledge with openml-python: dataset qualities, tasks and their splits,
runs (with setups' parameter settings) and their evaluations.

Offline it reads an openml-python cache directory; online it downloads (and caches)
what is missing. openml-python keeps its settings in module globals: they are set for
the import and restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autometa.exceptions import InputError
from autometa.metadb._schema import MEAN_SPLIT
from autometa.metadb._store import EvalRecord, SQLMetaDB, _int

__all__ = ["import_openml", "OpenMLImport", "OPENML_TO_METRIC"]

#: OpenML evaluation measures stored under autometa's metric names as well, by task kind
#: (OpenML's RMSE of a classifier is on class probabilities: not autometa's regression RMSE).
OPENML_TO_METRIC = {
    "classification": {"predictive_accuracy": "accuracy", "area_under_roc_curve": "roc_auc"},
    "regression": {"root_mean_squared_error": "rmse", "mean_absolute_error": "mae"},
}
_SOURCE = "openml"
_TASK_TYPES = {"Supervised Classification": "classification", "Supervised Regression": "regression"}


@dataclass
class OpenMLImport:
    """What an import added."""

    datasets: list[int] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    setups: list[int] = field(default_factory=list)
    evaluations: int = 0
    qualities: int = 0


@contextlib.contextmanager
def _openml_config(cache_dir: str | os.PathLike[str] | None, server: str | None, offline: bool) -> Iterator[Any]:
    import openml

    cfg = openml.config
    saved = (cfg._root_cache_directory, cfg.server, cfg.retry_policy, cfg.connection_n_retries)
    try:
        if cache_dir is not None:
            cfg.set_root_cache_directory(str(cache_dir))
        if server is not None:
            cfg.server = server
        if offline:
            cfg.set_retry_policy("human", 1)  # fail at once instead of waiting 10 s per call
        yield openml
    finally:
        cfg.set_root_cache_directory(saved[0])
        cfg.server = saved[1]
        cfg.set_retry_policy(saved[2], saved[3])


def _problem_type(task_type: str, n_classes: int | None) -> str:
    kind = _TASK_TYPES.get(task_type)
    if kind is None:
        raise InputError(f"OpenML task type {task_type!r} is not supported; import supervised classification or regression.")
    if kind == "regression":
        return "regression"
    if n_classes is None:
        return "classification"  # class count unknown until the dataset is imported
    return "binary" if n_classes == 2 else "multiclass"


def _offline_hint(what: str, exc: Exception, offline: bool) -> InputError:
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    hint = "it is not in the OpenML cache directory; import it online first or point --cache-dir at a cache that has it" if offline else "check the id and your connection"
    return InputError(f"Could not load {what} from OpenML ({first}): {hint}.")


def import_openml(
    db: SQLMetaDB,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    server: str | None = None,
    datasets: Iterable[int] = (),
    tasks: Iterable[int] = (),
    runs: Iterable[int] = (),
    setups: Iterable[int] = (),
    offline: bool = True,
) -> OpenMLImport:
    """Import OpenML datasets (qualities), tasks (with split summaries), runs (with their
    setup's parameters and evaluations, per fold and aggregated) and setups.

    Parameters
    ----------
    db : SQLMetaDB
    cache_dir : path-like, optional
        openml-python's root cache directory (the one holding ``org/openml/...``).
    server : str, optional
        OpenML API URL, e.g. ``"https://www.openml.org/api/v1/xml"`` (default of
        openml-python) or the test server.
    offline : bool
        Fail at once on anything not cached (no retries).
    """
    report = OpenMLImport()
    with _openml_config(cache_dir, server, offline) as openml:
        db.add_source(_SOURCE, "openml", description="OpenML runs, tasks and dataset qualities",
                      versions={"openml-python": openml.__version__, "server": openml.config.server})
        for did in datasets:
            report.qualities += _import_dataset(db, openml, int(did), offline)
            report.datasets.append(int(did))
        for tid in tasks:
            _import_task(db, openml, int(tid), offline)
            report.tasks.append(int(tid))
        for rid in runs:
            report.evaluations += _import_run(db, openml, int(rid), offline)
            report.runs.append(int(rid))
        for sid in setups:
            _import_setup(db, openml, int(sid), offline)
            report.setups.append(int(sid))
    return report


def _dataset_task_name(did: int) -> str:
    return f"openml/dataset/{did}"


def _import_dataset(db: SQLMetaDB, openml: Any, did: int, offline: bool) -> int:
    try:
        ds = openml.datasets.get_dataset(did, download_data=False, download_qualities=True,
                                         download_features_meta_data=True)
    except Exception as exc:
        raise _offline_hint(f"dataset {did}", exc, offline) from None
    q = dict(ds.qualities or {})
    n_classes = q.get("NumberOfClasses")
    n_classes_i = int(n_classes) if n_classes and n_classes == n_classes else None
    problem_type = "regression" if not n_classes_i else ("binary" if n_classes_i == 2 else "multiclass")
    name = _dataset_task_name(did)
    db.add_task(
        name, source=_SOURCE, problem_type=problem_type, target=ds.default_target_attribute or "",
        n_rows=_int(q.get("NumberOfInstances")), n_features=_int(q.get("NumberOfFeatures")), n_classes=n_classes_i,
        openml_dataset_id=did, protocol={"openml_name": ds.name, "openml_version": ds.version},
    )
    return db.add_metafeatures(name, q, extractor="openml", version="openml")


def _load_task(openml: Any, tid: int, offline: bool) -> Any:
    cached = Path(openml.config.get_cache_directory()) / "tasks" / str(tid) / "task.xml"
    if offline and cached.is_file():
        # openml-python's get_task also fetches the dataset's description, and deletes the
        # task's cache folder when that fails: parse the cached task and splits directly.
        from openml.tasks.functions import _create_task_from_xml

        task = _create_task_from_xml(cached.read_text(encoding="utf8"))
        if (cached.parent / "datasplits.arff").is_file():
            task.split = task.download_split()  # reads the cached split file
        return task
    try:
        return openml.tasks.get_task(tid, download_splits=True, download_data=False, download_qualities=False,
                                     download_features_meta_data=False)
    except Exception as exc:
        raise _offline_hint(f"task {tid}", exc, offline) from None


def _import_task(db: SQLMetaDB, openml: Any, tid: int, offline: bool) -> str:
    task = _load_task(openml, tid, offline)
    n_classes = len(task.class_labels) if getattr(task, "class_labels", None) else None
    if n_classes is None and _TASK_TYPES.get(task.task_type) == "classification":
        with contextlib.suppress(InputError):  # the dataset's qualities know the class count
            _import_dataset(db, openml, int(task.dataset_id), offline)
            n_classes = db.tasks().loc[_dataset_task_name(int(task.dataset_id)), "n_classes"]
            n_classes = None if n_classes != n_classes else int(n_classes)
    protocol: dict[str, Any] = {"estimation_procedure": dict(task.estimation_procedure or {})}
    protocol["estimation_procedure"].pop("data_splits_url", None)
    split = getattr(task, "split", None)
    if split is not None:
        repeats, folds, samples = split.repeats, split.folds, split.samples
        sizes = []
        for r in range(repeats):
            for f in range(folds):
                tr, te = split.get(repeat=r, fold=f)
                sizes.append([len(tr), len(te)])
        protocol["splits"] = {"repeats": repeats, "folds": folds, "samples": samples, "train_test_sizes": sizes}
    name = f"openml/task/{tid}"
    db.add_task(
        name, source=_SOURCE, problem_type=_problem_type(task.task_type, n_classes),
        target=getattr(task, "target_name", "") or "", n_classes=n_classes, openml_task_id=tid,
        openml_dataset_id=task.dataset_id, protocol=protocol,
    )
    return name


def _import_run(db: SQLMetaDB, openml: Any, rid: int, offline: bool) -> int:
    try:
        run = openml.runs.get_run(rid)
    except Exception as exc:
        raise _offline_hint(f"run {rid}", exc, offline) from None
    name = f"openml/task/{run.task_id}"
    if name not in db.tasks().index:
        try:
            _import_task(db, openml, run.task_id, offline)
        except InputError:  # the task itself is not cached: keep what the run says of it
            db.add_task(name, source=_SOURCE, problem_type=_problem_type(run.task_type, None), openml_task_id=run.task_id,
                        openml_dataset_id=run.dataset_id)
    config: dict[str, Any] = {"family": f"openml:{run.flow_name}"}
    for p in run.parameter_settings or []:
        config[str(p.get("oml:name"))] = p.get("oml:value")
    key = f"openml-run-{run.run_id}"
    mapping = OPENML_TO_METRIC.get(_TASK_TYPES.get(run.task_type, ""), {})
    scores = {m: v for m, v in (run.evaluations or {}).items() if isinstance(v, (int, float))}  # not os_information
    scores.update({mapping[m]: v for m, v in list(scores.items()) if m in mapping})
    records = [EvalRecord(config, scores, MEAN_SPLIT, "ok", None, key)]
    per_split: dict[int, dict[str, float]] = {}
    n_folds = 1 + max((f for m in (run.fold_evaluations or {}).values() for r in m.values() for f in r), default=0)
    for measure, by_repeat in (run.fold_evaluations or {}).items():
        for repeat, by_fold in by_repeat.items():
            for fold, value in by_fold.items():
                s = per_split.setdefault(int(repeat) * n_folds + int(fold), {})
                s[measure] = value
                if measure in mapping:
                    s[mapping[measure]] = value
    records += [EvalRecord(config, s, i, "ok", None, key) for i, s in sorted(per_split.items())]
    return db.add_evaluations(name, records, source=_SOURCE)


def _import_setup(db: SQLMetaDB, openml: Any, sid: int, offline: bool) -> None:
    try:
        setup = openml.setups.get_setup(sid)
    except Exception as exc:
        raise _offline_hint(f"setup {sid}", exc, offline) from None
    flows = {p.flow_name for p in (setup.parameters or {}).values()}
    config: dict[str, Any] = {"family": f"openml:{sorted(flows)[0] if flows else setup.flow_id}"}
    for p in (setup.parameters or {}).values():
        config[p.full_name] = p.value
    db.add_configurations([config])
