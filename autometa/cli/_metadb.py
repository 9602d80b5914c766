"""``autometa metadb``: counts, imports, own runs."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autometa.cli._common import (
    _URL_HELP,
    _fail,
    _ids,
    _open_db,
    app,
    out,
)
from autometa.exceptions import AutometaError, InputError

metadb_app = typer.Typer(no_args_is_help=True, help="The meta-database: counts, imports, own runs.")
app.add_typer(metadb_app, name="metadb")
@metadb_app.command("info")
def metadb_info(
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts: tasks, sources, families, configurations per family, evaluations, extractors."""
    try:
        info = _open_db(url).info()  # a store's first read loads the shipped meta-dataset into it
    except AutometaError as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(json.dumps(info))
        return
    out.print(f"[bold]{info['url']}[/]  schema {info['schema_version']}, search space {info['space_version']}", highlight=False)
    out.print(f"tasks: {info['tasks']} {info['tasks_by_problem_type']}", highlight=False)
    out.print(f"evaluations: {info['evaluations']} (+ {info['split_evaluations']} per split)", highlight=False)
    table = Table(title="sources")
    for col in ("source", "kind", "tasks it added", "evaluations"):  # a source may score tasks another added
        table.add_column(col)
    for name, s in sorted(info["sources"].items()):
        table.add_row(name, s["kind"], str(s["tasks"]), str(s["evaluations"]))
    out.print(table)
    table = Table(title=f"configurations per family ({info['families']} families)")
    table.add_column("family")
    table.add_column("configurations", justify="right")
    for fam, n in info["configurations_per_family"].items():
        table.add_row(fam, str(n))
    out.print(table)
    for ext, e in info["metafeature_extractors"].items():
        out.print(f"meta-features: {ext} (version {e['version']}): {e['features']} features", highlight=False)


@metadb_app.command("load-shipped")
def metadb_load_shipped(
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
) -> None:
    """Load the meta-dataset shipped with autometa into a store now (any store also loads it on its first read)."""
    from autometa.metadb import SHIPPED_SOURCE, TUNED_SOURCE, SQLMetaDB, load_shipped, shipped_dir

    try:
        directory = shipped_dir()
        if directory is None:
            raise InputError("No shipped meta-dataset: $AUTOMETA_METADATA_DIR is 'none', or this installation of "
                             "autometa lacks its package data autometa/_metadata (reinstall autometa).")
        db = SQLMetaDB(url, shipped=False)
        sources_before = db.info()["sources"]
        before = sources_before.get(SHIPPED_SOURCE, {}).get("evaluations", 0)
        tuned_before = sources_before.get(TUNED_SOURCE, {}).get("evaluations", 0)
        t0 = time.perf_counter()
        manifest = load_shipped(db, directory)
        elapsed = time.perf_counter() - t0
        info = db.info()
    except AutometaError as exc:
        raise _fail(exc) from None
    shipped = info["sources"][SHIPPED_SOURCE]
    out.print(f"loaded {SHIPPED_SOURCE} (built {manifest.get('updated_at', '?')}) from {directory} into {info['url']} "
              f"in {elapsed:.1f} s: {shipped['tasks']} tasks, {shipped['evaluations']} evaluations "
              f"({shipped['evaluations'] - before} new)", highlight=False, soft_wrap=True)
    tuned = info["sources"].get(TUNED_SOURCE)
    if tuned:
        out.print(f"  and its tuned optima ({TUNED_SOURCE}): {tuned['evaluations']} evaluations "
                  f"({tuned['evaluations'] - tuned_before} new)", highlight=False, soft_wrap=True)


@metadb_app.command("prepare")
def metadb_prepare(
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
) -> None:
    """Fit and cache now what the meta-learned parts fit on first use (the performance predictor, the stored tasks' surrogates, the hyperparameter importances) for the default metric of classification and regression, so that no run's budget pays for it. Later runs reuse them until the store has grown by about 5%."""
    from autometa.defaults import mean_importance
    from autometa.spaces import FAMILIES
    from autometa.transfer import fit_surrogate_store
    from autometa.warmstart import PerformancePredictor

    try:
        db = _open_db(url)
        t0 = time.perf_counter()
        db.info()  # a store's first read loads the shipped meta-dataset into it
        out.print(f"meta-database ready in {time.perf_counter() - t0:.1f} s", highlight=False)
        for kind, metric in (("binary", "balanced_accuracy"), ("regression", "rmse")):
            label = f"{'classification' if kind == 'binary' else kind} ({metric})"
            parts: list[tuple[str, Any, dict[str, Any]]] = [
                ("performance predictor", PerformancePredictor.for_metadb, {}),
                ("surrogates (rgpe, tstr)", fit_surrogate_store, {}),
                ("importances (--prune importance)", mean_importance, {"families": list(FAMILIES)}),
            ]
            for name, fit, extra in parts:
                t0 = time.perf_counter()
                try:
                    fit(db, metric=metric, problem_type=kind, **extra)
                except InputError as exc:  # e.g. no stored task of this kind
                    out.print(f"{label}, {name}: skipped ({exc})", highlight=False, soft_wrap=True)
                    continue
                out.print(f"{label}, {name}: {time.perf_counter() - t0:.1f} s", highlight=False)
    except AutometaError as exc:
        raise _fail(exc) from None


@metadb_app.command("import-openml")
def metadb_import_openml(
    datasets: Annotated[str | None, typer.Option(help="Comma-separated OpenML dataset ids (qualities).")] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated OpenML task ids.")] = None,
    runs: Annotated[str | None, typer.Option(help="Comma-separated OpenML run ids.")] = None,
    setups: Annotated[str | None, typer.Option(help="Comma-separated OpenML setup ids.")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="openml-python cache root.")] = None,
    server: Annotated[str | None, typer.Option(help="OpenML API URL (default: openml-python's, www.openml.org).")] = None,
    online: Annotated[bool, typer.Option("--online", help="Download what is not cached (needs internet).")] = False,
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
) -> None:
    """Import OpenML dataset qualities, tasks, runs and setups (offline from a cache by default)."""
    from autometa.metadb import import_openml

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = import_openml(_open_db(url), cache_dir=cache_dir, server=server, datasets=_ids(datasets),
                                tasks=_ids(tasks), runs=_ids(runs), setups=_ids(setups), offline=not online)
    except AutometaError as exc:
        raise _fail(exc) from None
    out.print(f"imported {len(rep.datasets)} datasets ({rep.qualities} qualities), {len(rep.tasks)} tasks, "
              f"{len(rep.runs)} runs ({rep.evaluations} evaluations), {len(rep.setups)} setups", highlight=False)


@metadb_app.command("import-lcdb")
def metadb_import_lcdb(
    datasets: Annotated[str | None, typer.Option(help="Comma-separated OpenML dataset ids (default: all 248).")] = None,
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
) -> None:
    """Import the Learning Curve Database shipped by the lcdb package (largest anchors, qualities)."""
    from autometa.metadb import import_lcdb

    try:
        rep = import_lcdb(_open_db(url), dataset_ids=_ids(datasets) or None)
    except AutometaError as exc:
        raise _fail(exc) from None
    out.print(f"imported {len(rep.datasets)} datasets, {len(rep.learners)} learners, {rep.evaluations} evaluations, "
              f"{rep.qualities} qualities", highlight=False)


@metadb_app.command("import-autosklearn")
def metadb_import_autosklearn(
    source: Annotated[Path | None, typer.Option(
        "--source", help="An unpacked auto-sklearn sdist, its .tar.gz, or its autosklearn/metalearning/files directory "
                         "(default: the installed auto-sklearn).")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="balanced_accuracy, accuracy, roc_auc or log_loss; repeat or separate by commas (default: all).")] = None,
    sparse: Annotated[bool, typer.Option("--sparse", help="Also import the optima for sparse data.")] = False,
    task_ids: Annotated[Path | None, typer.Option(
        "--task-ids", help="JSON file mapping auto-sklearn's dataset names to OpenML task ids (tasks then share "
                           "the OpenML importer's names).")] = None,
    knn: Annotated[bool, typer.Option(
        "--knn-metafeatures/--no-knn-metafeatures",
        help="Store the OpenML equivalents of auto-sklearn's meta-features where the kNN warm starter looks.")] = True,
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
) -> None:
    """Import the best configurations auto-sklearn found per OpenML task and metric, mapped onto autometa's families."""
    from autometa.metadb import AUTOSKLEARN_METRICS, import_autosklearn

    try:
        metrics = [m.strip() for value in metric or [] for m in value.split(",") if m.strip()] or list(AUTOSKLEARN_METRICS)
        ids = None
        if task_ids is not None:
            try:
                ids = json.loads(task_ids.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"--task-ids must be a readable JSON file of name -> task id; {task_ids} gives: {exc}.") from None
            if not isinstance(ids, dict):
                raise InputError(f"--task-ids must hold a JSON object of name -> task id; got a {type(ids).__name__}.")
        rep = import_autosklearn(_open_db(url), source, metrics=metrics, dense_only=not sparse, task_ids=ids,
                                 knn_metafeatures=knn)
    except AutometaError as exc:
        raise _fail(exc) from None
    families = ", ".join(f"{k} {v}" for k, v in rep.by_family.items())
    out.print(f"imported auto-sklearn {rep.version} from {rep.origin} as source {rep.source}: {len(rep.tasks)} tasks, "
              f"{len(rep.mapped)} configurations mapped ({families}), {rep.evaluations} new evaluations, "
              f"{rep.metafeatures} meta-feature values", highlight=False, soft_wrap=True)
    dropped = {k.replace("data_preprocessor:feature_type:", ""): v for k, v in rep.dropped.items()}
    for title, counts in (("not mapped (no autometa family)", rep.unmapped), ("runs skipped", rep.skipped),
                          ("dropped, per mapped configuration (auto-sklearn settings autometa cannot express)", dropped),
                          ("clipped to autometa's ranges", rep.clipped)):
        if counts:
            out.print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), highlight=False, soft_wrap=True)


@metadb_app.command("append")
def metadb_append(
    run_dir: Annotated[Path, typer.Argument(help="An output directory of 'autometa tune'.")],
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
) -> None:
    """Add the trials of a finished tune run to the meta-database (own runs)."""
    from dataclasses import asdict

    from autometa import package_versions, read_run

    try:
        task, trials = read_run(run_dir)
        n = _open_db(url).add_run(task, [asdict(t) for t in trials], run_key=str(run_dir.resolve()),
                                  versions=package_versions())
    except AutometaError as exc:
        raise _fail(exc) from None
    out.print(f"added {n} evaluations from {run_dir}", highlight=False)


