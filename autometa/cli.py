"""The command line: ``autometa tune`` and ``autometa predict``.

The only module that prints, draws progress or configures logging. Refused input exits
with status 2 and a one-line message, without a traceback and without writing output.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autometa.exceptions import AutometaError, InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="autometa: tune scikit-learn pipelines on a CSV or Parquet table.",
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


_URL_HELP = "SQLAlchemy URL of the meta-database (default: $AUTOMETA_METADB_URL or ~/.autometa/metadb.sqlite)."


def _open_db(url: str | None) -> Any:
    from autometa.metadb import SQLMetaDB

    return SQLMetaDB(url)


def _fail(exc: BaseException) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _load_task(data: Path, **kwargs: Any) -> Any:
    """Build the Task, showing its repairs (dropped rows or columns) as warning lines."""
    from autometa import Task

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = Task(data, **kwargs)
    for w in caught:
        if issubclass(w.category, UserWarning):
            err.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)
    return task


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _leaderboard_table(result: Any, top: int) -> Table:
    lb = result.leaderboard.head(top)
    metric = result.metric
    others = [c for c in lb.columns if c not in ("trial", "family", "status", "fit_time_s", "error", metric)]
    table = Table(title=f"Leaderboard (top {len(lb)} of {result.n_trials} trials, validation scores)")
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    table.add_column("family")
    table.add_column(metric, justify="right", style="bold")
    for c in others:
        table.add_column(c, justify="right")
    table.add_column("fit s", justify="right")
    table.add_column("status")
    for rank, row in lb.iterrows():
        table.add_row(
            str(rank), str(row["trial"]), row["family"], _fmt(row[metric]),
            *[_fmt(row[c]) for c in others], f"{row['fit_time_s']:.2f}",
            row["status"] if row["status"] == "ok" else f"[red]{row['status']}[/]",
        )
    return table


def _split(csv: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (csv or "").split(",") if x.strip())


def _ids(csv: str | None) -> list[int]:
    """Comma-separated OpenML ids; a clear error (not a mis-reported one) for anything else."""
    try:
        return [int(x) for x in _split(csv)]
    except ValueError:
        raise AutometaError(f"OpenML ids must be integers separated by commas; got {csv!r}.") from None


def _log_to_console() -> None:
    """Show autometa's log records (the library itself never configures logging)."""
    import logging

    from rich.logging import RichHandler

    logger = logging.getLogger("autometa")
    logger.setLevel(logging.INFO)
    logger.addHandler(RichHandler(console=err, show_path=False))


def _process_start() -> float:
    """``perf_counter`` time of this process's start, so the budget covers start-up too.

    Start-up (interpreter and imports) takes seconds; an older process is a host calling
    the command in-process (a test runner, a notebook), whose age is not this run's time.
    """
    import psutil

    age = max(0.0, time.time() - psutil.Process().create_time())
    return time.perf_counter() - (age if age < 30.0 else 0.0)


@contextlib.contextmanager
def _interrupt_guard(where: Path, grace_s: float = 20.0) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual, with a watchdog: if clean-up has not ended
    ``grace_s`` seconds later, or on a second Ctrl-C, the process exits (130) at once.

    Nothing is lost by that: every finished trial was fsync'd to disk when it ended.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    timers: list[threading.Timer] = []

    def force_exit() -> None:
        msg = f"interrupted: clean-up did not end; finished trials are saved in {where}; run the same command again to resume.\n"
        os.write(2, msg.encode())
        os._exit(130)

    def on_sigint(signum: int, frame: Any) -> None:
        if timers:
            force_exit()
        timer = threading.Timer(grace_s, force_exit)
        timer.daemon = True
        timer.start()
        timers.append(timer)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        for timer in timers:
            timer.cancel()


@app.command()
def tune(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file with a header row.")],
    label: Annotated[str, typer.Option("--label", "-l", help="Name of the target column.")],
    metric: Annotated[str | None, typer.Option(help="balanced_accuracy (default for classification), accuracy, roc_auc, log_loss, rmse (default for regression), mae, r2.")] = None,
    time_budget: Annotated[float, typer.Option("--time-budget", help="Seconds for the whole run, loading and refit included.")] = 60.0,
    n_trials: Annotated[int | None, typer.Option("--n-trials", help="Stop after this many trials.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    backend: Annotated[str, typer.Option(help="smac, optuna or random.")] = "smac",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output directory; re-running with the same one resumes. Default: autometa-out/<data name>.")] = None,
    problem_type: Annotated[str | None, typer.Option("--problem-type", help="binary, multiclass or regression (inferred by default).")] = None,
    sep: Annotated[str | None, typer.Option(help="CSV delimiter (detected by default).")] = None,
    families: Annotated[str | None, typer.Option(help="Comma-separated model families to search (default: all).")] = None,
    categorical: Annotated[str | None, typer.Option(help="Comma-separated numeric columns to treat as categorical (e.g. integer codes).")] = None,
    per_trial_limit: Annotated[float | None, typer.Option("--per-trial-limit", help="Seconds one trial may take (default: a quarter of the budget).")] = None,
    memory_limit_mb: Annotated[int | None, typer.Option("--memory-limit-mb", help="Memory limit of the evaluation process.")] = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Threads per model fit.")] = 1,
    top: Annotated[int, typer.Option(help="Rows of the leaderboard to print.")] = 10,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every trial.")] = False,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Add the trials to the meta-database (own runs).")] = True,
    warm_start: Annotated[str, typer.Option("--warm-start", help="knn: the best configurations of the nearest stored tasks (package default second, learned default third), then each family's default; portfolio: the greedy portfolio of the stored tasks; defaults: each family's default; none: the backend's own design. knn and portfolio fall back to defaults when the meta-database has no task of this kind.")] = "knn",
    metadb_url: Annotated[str | None, typer.Option("--metadb", help=_URL_HELP)] = None,
    transfer: Annotated[str, typer.Option("--transfer", help="Surrogate transfer from the meta-database inside the optimizer: rgpe (ranking-weighted ensemble of past tasks' GPs), tstr (similarity-weighted) or none.")] = "none",
    prune: Annotated[str, typer.Option("--prune", help="Prune the search space from the meta-database: box (bounding box of the nearest tasks' best configurations), importance (fix hyperparameters of low importance to learned defaults) or none.")] = "none",
) -> None:
    """Tune a pipeline for DATA and save the best model, refit on all rows."""
    start = _process_start()
    if verbose:
        _log_to_console()
    from autometa import tune as run_tune

    where = out_dir if out_dir is not None else Path("autometa-out") / Path(data).stem
    with _interrupt_guard(where):
        try:
            task = _load_task(
                data, label=label, problem_type=problem_type, metric=metric, seed=seed,
                time_budget_s=time_budget, sep=sep, categorical_columns=_split(categorical),
            )
            if n_trials is not None and n_trials < 1:
                raise AutometaError(f"--n-trials must be at least 1; got {n_trials}.")
            out_path = out_dir if out_dir is not None else Path("autometa-out") / str(task.name)
            fams = list(_split(families)) or None
            if warm_start not in ("knn", "portfolio", "defaults", "none"):
                raise AutometaError(f"--warm-start must be knn, portfolio, defaults or none; got {warm_start!r}.")
            initial = None
            if warm_start in ("knn", "portfolio"):
                from autometa.warmstart import portfolio_configs, warm_start_configs

                t_ws = time.perf_counter()
                source = warm_start_configs if warm_start == "knn" else portfolio_configs
                try:
                    initial = source(task, n=25, metadb=_open_db(metadb_url) if metadb_url else None)
                except InputError as exc:  # an empty or foreign meta-database: start from the defaults
                    err.print(f"warm start: {exc} Starting from each family's default instead.", highlight=False, soft_wrap=True)
                else:
                    if fams:
                        initial = [c for c in initial if c["family"] in fams]
                    err.print(f"warm start ({warm_start}): {len(initial)} configurations from the meta-database "
                              f"({time.perf_counter() - t_ws:.1f} s, counted in the budget)", highlight=False, soft_wrap=True)
            elif warm_start == "none":
                initial = []
            if prune not in ("none", "box", "importance"):
                raise AutometaError(f"--prune must be box, importance or none; got {prune!r}.")
            if transfer not in ("rgpe", "tstr", "none"):
                raise AutometaError(f"--transfer must be rgpe, tstr or none; got {transfer!r}.")
            if transfer != "none" and backend == "random":
                raise AutometaError("--transfer needs a model-based backend: use --backend smac or optuna.")
            search_space, ensemble = None, None
            if prune != "none" or transfer != "none":
                from autometa.metafeatures import extract
                from autometa.spaces import get_space
                from autometa.transfer import pruned_space_for_task, transfer_for_task

                t_tr = time.perf_counter()
                db = _open_db(metadb_url) if metadb_url else None
                mf = extract(task)
                search_space = get_space(str(task.problem_type), families=fams, seed=seed)
                if prune != "none":
                    search_space, what = pruned_space_for_task(task, prune, metadb=db, space=search_space, metafeatures=mf)
                    err.print(f"pruned space: {what}", highlight=False, soft_wrap=True)
                if transfer != "none":
                    ensemble = transfer_for_task(task, transfer, metadb=db, space=search_space, metafeatures=mf)
                    err.print(f"transfer: {transfer} over {len(ensemble.store.tasks)} stored tasks", highlight=False)
                err.print(f"meta-learning setup {time.perf_counter() - t_tr:.1f} s (counted in the budget)", highlight=False)
            d = task.describe()
            err.print(
                f"[bold]{d['name']}[/]: {d['n_rows']} rows, {d['n_features']} features "
                f"({d['n_numeric']} numeric, {d['n_categorical']} categorical), {d['problem_type']}, "
                f"metric {d['metric']}, backend {backend}, budget {time_budget:g} s",
                highlight=False,
            )
            progress = Progress(
                TextColumn("[bold]tuning"), BarColumn(), TextColumn("{task.fields[trials]} trials"),
                TextColumn("best {task.fields[best]}"), TextColumn("{task.fields[left]}"), TimeElapsedColumn(),
                console=err, transient=False,
            )
            total = float(n_trials) if n_trials else time_budget
            bar = progress.add_task("tune", total=total, trials=0, best="-", left="")

            def on_trial(p: Any) -> None:
                done = p.n_trials if n_trials else min(p.elapsed_s, time_budget)
                left = max(0.0, p.time_budget_s - p.elapsed_s)
                progress.update(bar, completed=done, trials=p.n_trials, best=_fmt(p.best_score), left=f"{left:.0f} s left")

            with progress:
                result = run_tune(
                    task, backend=backend, n_trials=n_trials, out_dir=out_path, families=fams, initial_configs=initial,
                    per_trial_time_limit_s=per_trial_limit, memory_limit_mb=memory_limit_mb, n_jobs=n_jobs,
                    callbacks=[on_trial], start_time=start, transfer=ensemble, space=search_space,
                )
                progress.update(bar, completed=total)
        except AutometaError as exc:
            raise _fail(exc) from None
        except KeyboardInterrupt:
            err.print(
                f"interrupted: finished trials are saved in {where}; run the same command again to resume.",
                soft_wrap=True, highlight=False,
            )
            raise typer.Exit(code=130) from None

    out.print(_leaderboard_table(result, top))
    failed = sum(not r.ok for r in result.history)
    out.print(
        f"best {result.metric} = {result.best_score:.4f} ({result.best_config['family']}), "
        f"{result.n_trials} trials ({failed} failed), {time.perf_counter() - start:.1f} s",
        highlight=False,
    )
    if result.model is not None:
        out.print(f"model: {out_path / 'model.joblib'}  results: {out_path / 'result.json'}", highlight=False)
    else:
        err.print(f"[yellow]warning:[/] the best configuration could not be refit ({result.refit_error}).", soft_wrap=True)
    if record:
        try:  # the user's meta-database grows with use; failing to record never fails the run
            n = _open_db(metadb_url).append_run(out_path)
            err.print(f"recorded {n} evaluations in the meta-database", highlight=False)
        except Exception as exc:
            err.print(f"[yellow]warning:[/] trials not recorded in the meta-database ({exc}).", soft_wrap=True)


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model.joblib written by 'autometa tune'.")],
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file with the training feature columns.")],
    output: Annotated[Path | None, typer.Option("--out", help="Where to write the predictions CSV (default: standard output).")] = None,
    sep: Annotated[str | None, typer.Option(help="CSV delimiter of DATA (detected by default).")] = None,
    ignore_versions: Annotated[bool, typer.Option("--ignore-versions", help="Load a model saved with other package versions.")] = False,
) -> None:
    """Predict with a saved model: one row per input row (prediction and class probabilities)."""
    from autometa import load_model, read_table

    try:
        saved = load_model(model, check_versions=not ignore_versions)
        table = read_table(data, sep=sep)
        preds = saved.predict(table)
    except AutometaError as exc:
        raise _fail(exc) from None
    if output is None:
        preds.to_csv(sys.stdout, index=False)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    preds.to_csv(tmp, index=False)
    os.replace(tmp, output)
    err.print(f"wrote {len(preds)} predictions to {output}", highlight=False)


metadb_app = typer.Typer(no_args_is_help=True, help="The meta-database: counts, imports, own runs.")
app.add_typer(metadb_app, name="metadb")
@metadb_app.command("info")
def metadb_info(
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts: tasks, sources, families, configurations per family, evaluations, extractors."""
    try:
        db = _open_db(url)
        if url is None and not os.environ.get("AUTOMETA_METADB_URL"):
            db.ensure_shipped()  # the default store starts with the shipped meta-dataset
        info = db.info()
    except AutometaError as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(json.dumps(info))
        return
    out.print(f"[bold]{info['url']}[/]  schema {info['schema_version']}, search space {info['space_version']}", highlight=False)
    out.print(f"tasks: {info['tasks']} {info['tasks_by_problem_type']}", highlight=False)
    out.print(f"evaluations: {info['evaluations']} (+ {info['split_evaluations']} per split)", highlight=False)
    table = Table(title="sources")
    for col in ("source", "kind", "tasks", "evaluations"):
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


@metadb_app.command("append")
def metadb_append(
    run_dir: Annotated[Path, typer.Argument(help="An output directory of 'autometa tune'.")],
    url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
) -> None:
    """Add the trials of a finished tune run to the meta-database (own runs)."""
    try:
        n = _open_db(url).append_run(run_dir)
    except AutometaError as exc:
        raise _fail(exc) from None
    out.print(f"added {n} evaluations from {run_dir}", highlight=False)


@app.command()
def suggest(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file with a header row.")],
    label: Annotated[str, typer.Option("--label", "-l", help="Name of the target column.")],
    n: Annotated[int, typer.Option("-n", help="How many configurations.")] = 5,
    metric: Annotated[str | None, typer.Option(help="Metric the stored scores are ranked by.")] = None,
    problem_type: Annotated[str | None, typer.Option("--problem-type", help="binary, multiclass or regression.")] = None,
    sep: Annotated[str | None, typer.Option(help="CSV delimiter (detected by default).")] = None,
    metadb_url: Annotated[str | None, typer.Option("--metadb", help=_URL_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Zero-shot: configurations for DATA from the nearest stored tasks, explained, without fitting."""
    from autometa.warmstart import suggest_config

    try:
        task = _load_task(data, label=label, problem_type=problem_type, metric=metric, sep=sep)
        found = suggest_config(task, n=n, metadb=_open_db(metadb_url) if metadb_url else None)
    except AutometaError as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(json.dumps([
            {"rank": i + 1, "config": s.config, "source": s.source, "predicted_score": s.predicted_score,
             "neighbor": None if s.neighbor is None else {"task": s.neighbor.task, "distance": s.neighbor.distance,
                                                          "closest_features": s.neighbor.closest_features},
             "explanation": s.explanation}
            for i, s in enumerate(found)
        ]))
        return
    for i, s in enumerate(found, start=1):
        out.print(f"[bold]{i}. {s.config['family']}[/] ({s.source}) {s.explanation}", highlight=False, soft_wrap=True)
        params = {k.split(":", 1)[1]: v for k, v in s.config.items() if ":" in k}
        out.print(f"   {params}", highlight=False, soft_wrap=True)


@app.command()
def defaults(
    family: Annotated[str | None, typer.Option(help="Only this family (all by default).")] = None,
    metric: Annotated[str, typer.Option(help="Metric (balanced_accuracy for classification; r2 compares regression tasks on one scale).")] = "balanced_accuracy",
    problem_type: Annotated[str, typer.Option("--problem-type", help="binary/multiclass (classification) or regression.")] = "binary",
    metadb_url: Annotated[str | None, typer.Option("--metadb", help=_URL_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON with the learned defaults.")] = False,
    symbolic: Annotated[bool, typer.Option("--symbolic", help="Also fit symbolic defaults (formulas of the number of features or rows) on the stored tasks' surrogates; the first call fits the surrogates (a minute or two), later calls load them.")] = False,
) -> None:
    """Tunability per family (vs the package default and vs a learned default) and the learned defaults."""
    from autometa.defaults import symbolic_defaults, tunability

    try:
        db = _open_db(metadb_url)
        if metadb_url is None and not os.environ.get("AUTOMETA_METADB_URL"):
            db.ensure_shipped()
        fams = [family] if family else None
        rows = tunability(db, metric=metric, problem_type=problem_type, families=fams)
        sym = symbolic_defaults(db, metric=metric, problem_type=problem_type, families=fams) if symbolic else []
    except AutometaError as exc:
        raise _fail(exc) from None
    if as_json:
        tun = [{**r.as_row(), "learned_default": r.learned_default} for r in rows]
        out.print_json(json.dumps(tun if not symbolic else {
            "tunability": tun,
            "symbolic": [{**r.as_row(), "recommended": "formula" if r.beats_constant else "constant"} for r in sym],
        }, default=float))
        return
    table = Table(title=f"Tunability ({metric}): mean gain of the best stored configuration over a default")
    for col in ("family", "tasks", "configurations", "vs package default", "vs learned default"):
        table.add_column(col, justify="left" if col == "family" else "right")
    for r in rows:
        row = r.as_row()
        table.add_row(r.family, str(r.n_tasks), str(r.n_configs),
                      _fmt(row["tunability_vs_package_default"]), _fmt(row["tunability_vs_learned_default"]))
    out.print(table)
    if sym:
        st = Table(title="Symbolic defaults: rescaled predicted loss (0 = a task's best stored configuration), leave-one-task-out")
        for col in ("family", "hyperparameter", "package default", "best constant", "formula", "loss package",
                    "loss constant", "loss formula"):
            st.add_column(col, justify="left" if col in ("family", "hyperparameter", "formula") else "right")
        for s in sym:
            st.add_row(s.family, s.hyperparameter, f"{s.package_default:.4g}", f"{s.constant:.4g}",
                       s.formula + (" *" if s.beats_constant else ""), _fmt(s.loss_package), _fmt(s.loss_constant),
                       _fmt(s.loss_symbolic))
        out.print(st)
        out.print("* the formula beats the best constant", highlight=False)


@app.command()
def metafeatures(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file with a header row.")],
    label: Annotated[str, typer.Option("--label", "-l", help="Name of the target column.")],
    problem_type: Annotated[str | None, typer.Option("--problem-type", help="binary, multiclass or regression (inferred by default).")] = None,
    sep: Annotated[str | None, typer.Option(help="CSV delimiter (detected by default).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the landmarkers' subsample and folds.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (name -> value).")] = False,
) -> None:
    """Print the meta-features of a table (OpenML quality names)."""
    from autometa.metafeatures import EXTRACTOR_VERSION, FEATURES, extract

    try:
        task = _load_task(data, label=label, problem_type=problem_type, sep=sep, seed=seed)
        t0 = time.perf_counter()
        values = extract(task)
    except AutometaError as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}))
        return
    table = Table(title=f"{len(values)} meta-features of {task.name} (extractor {EXTRACTOR_VERSION}, {time.perf_counter() - t0:.2f} s)")
    for col in ("group", "name", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for name, v in values.items():
        table.add_row(FEATURES[name].group if name in FEATURES else "", name, _fmt(v))
    out.print(table)


@app.command()
def metalearn(
    algo: Annotated[str, typer.Option(help="maml, fomaml, reptile, anil, metasgd or protonet.")] = "maml",
    tasks: Annotated[str, typer.Option(help="sinusoid, harmonic, line (regression) or glyphs, omniglot (N-way K-shot images).")] = "sinusoid",
    ways: Annotated[int, typer.Option(help="Classes per episode (glyphs, omniglot).")] = 5,
    shots: Annotated[int | None, typer.Option(help="Support points per task (regression; default 10) or images per class (default 1).")] = None,
    queries: Annotated[int | None, typer.Option(help="Query points per task (regression; default --shots) or images per class (default 15).")] = None,
    iterations: Annotated[int, typer.Option(help="Meta-iterations (outer updates).")] = 2000,
    meta_batch: Annotated[int | None, typer.Option("--meta-batch", help="Tasks per meta-batch (default 25 for regression, 8 for images).")] = None,
    inner_steps: Annotated[int | None, typer.Option("--inner-steps", help="Inner SGD steps per task (default 1; 5 for reptile and anil).")] = None,
    inner_lr: Annotated[float | None, typer.Option("--inner-lr", help="Inner SGD step size (default 0.01 for regression, 0.4 for images).")] = None,
    outer_lr: Annotated[float, typer.Option("--outer-lr")] = 1e-3,
    width: Annotated[int, typer.Option(help="Channels of each of the 4 conv blocks (images).")] = 32,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Omniglot root with images_background/ and images_evaluation/.")] = None,
    test_tasks: Annotated[int | None, typer.Option("--test-tasks", help="Held-out tasks scored at the end (default 1000 for regression, 600 for images).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bfloat16 autocast on CUDA (ignored on CPU).")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the learned initialization, a checkpoint, metrics.csv and results.json go; re-running resumes.")] = Path("autometa-out/metalearn"),
) -> None:
    """Meta-learn an initialization (resumable) and report held-out test MSE or accuracy with 95% CIs."""
    try:
        import torch

        from autometa import metalearn as ml
    except (ImportError, AutometaError) as exc:
        raise _fail(AutometaError(f"{exc}".splitlines()[0])) from None
    algos: dict[str, Any] = {"maml": ml.MAML, "fomaml": ml.FOMAML, "reptile": ml.Reptile, "anil": ml.ANIL,
                             "metasgd": ml.MetaSGD, "protonet": ml.ProtoNet}
    regression: dict[str, Any] = {"sinusoid": ml.SinusoidTasks, "harmonic": ml.HarmonicTasks, "line": ml.LineTasks}
    images = tasks in ("glyphs", "omniglot")
    try:
        if algo not in algos:
            raise AutometaError(f"--algo must be one of {', '.join(algos)}; got {algo!r}.")
        if tasks not in (*regression, "glyphs", "omniglot"):
            raise AutometaError(f"--tasks must be one of {', '.join(regression)}, glyphs, omniglot; got {tasks!r}.")
        if algo == "protonet" and not images:
            raise AutometaError("--algo protonet classifies: use --tasks glyphs or omniglot.")
        if device not in ("cpu", "cuda"):
            raise AutometaError(f"--device must be cpu or cuda; got {device!r}.")
        if device == "cuda" and not torch.cuda.is_available():
            raise AutometaError("--device cuda, but torch sees no CUDA GPU (torch.cuda.is_available() is False).")
        if tasks == "omniglot" and data_dir is None:
            raise AutometaError("--tasks omniglot needs --data-dir, the folder holding images_background/ and images_evaluation/.")
        shots = shots if shots is not None else (1 if images else 10)
        queries = queries if queries is not None else (15 if images else shots)
        meta_batch = meta_batch if meta_batch is not None else (8 if images else 25)
        inner_steps = inner_steps if inner_steps is not None else (5 if algo in ("reptile", "anil") else 1)
        inner_lr = inner_lr if inner_lr is not None else (0.4 if images else 0.01)
        test_tasks = test_tasks if test_tasks is not None else (600 if images else 1000)
        if min(iterations, shots, queries, meta_batch, test_tasks, width) < 1:
            raise AutometaError("--iterations, --shots, --queries, --meta-batch, --test-tasks and --width must be at least 1.")
        torch.manual_seed(seed)
        if images:
            def episodes(split: str, n_queries: int) -> Any:
                if tasks == "glyphs":
                    return ml.GlyphTasks(ways=ways, shots=shots, queries=n_queries, split=split)
                return ml.OmniglotTasks(root=str(data_dir), ways=ways, shots=shots, queries=n_queries, split=split)

            train_dist, val_dist, test_dist = episodes("train", queries), episodes("val", queries), episodes("test", 15)
            model = ml.make_convnet(None if algo == "protonet" else ways, channels=(width,) * 4, seed=seed)
            loss_fn: Any = ml.cross_entropy_loss
            metric, metric_name = ml.accuracy, "accuracy"
        else:
            train_dist = val_dist = regression[tasks](k_support=shots, k_query=queries)
            test_dist = regression[tasks](k_support=shots, k_query=100)
            model = ml.make_mlp(seed=seed)
            loss_fn, metric, metric_name = ml.mse_loss, None, "mse"
        model = model.to(device)
        if algo == "protonet":
            learner = ml.ProtoNet(model, amp=amp)
        else:
            learner = algos[algo](model, inner_steps=inner_steps, inner_lr=inner_lr, loss_fn=loss_fn, amp=amp)
    except AutometaError as exc:
        raise _fail(exc) from None
    optimizer = torch.optim.Adam(learner.meta_parameters().values(), lr=outer_lr)
    ckpt_path = out_dir / "checkpoint.pt"
    done = 0
    settings: dict[str, Any] = {"algo": algo, "tasks": tasks, "shots": shots, "meta_batch": meta_batch,
                                "inner_steps": inner_steps, "inner_lr": inner_lr, "outer_lr": outer_lr, "seed": seed}
    if images:
        settings |= {"ways": ways, "queries": queries, "width": width}
    elif queries != shots:
        settings["queries"] = queries
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, weights_only=False, map_location=device)
        if ckpt["settings"] != settings:
            raise _fail(AutometaError(f"'{out_dir}' holds a run with other settings; choose another --out."))
        learner.load_state_dict(ckpt["learner"] if "learner" in ckpt else ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        done = int(ckpt["iterations"])
        err.print(f"resuming at meta-iteration {done}", highlight=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.csv"
    if not metrics_path.is_file() or done == 0:
        metrics_path.write_text(f"iteration,seconds,train_query_loss,val_{metric_name}\n")
    steps = None if algo == "protonet" else inner_steps
    chunk = max(1, min(500, iterations // 20 or 1))
    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]meta-training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("query loss {task.fields[loss]}  val {task.fields[val]}"), TimeElapsedColumn(),
                  console=err) as progress:
        bar = progress.add_task("meta", total=iterations, completed=min(done, iterations), loss="-", val="-")
        while done < iterations:
            n = min(chunk, iterations - done)
            hist = learner.meta_train(train_dist, iterations=n, meta_batch_size=meta_batch, seed=seed * 1_000_003 + done,
                                      optimizer=optimizer)
            done += n
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"settings": settings, "learner": learner.state_dict(),
                        "optimizer": optimizer.state_dict(), "iterations": done}, tmp)
            os.replace(tmp, ckpt_path)
            val_batch = val_dist.sample(25, torch.Generator().manual_seed(seed + 77))
            val_scores = learner.evaluate(val_batch, steps=None if steps is None else (steps,), metric=metric)
            val = float(next(iter(val_scores.values())).mean())
            with metrics_path.open("a") as log:
                log.write(f"{done},{time.perf_counter() - t0:.2f},{np.mean(hist.query_losses):.5f},{val:.5f}\n")
            progress.update(bar, completed=done, loss=f"{np.mean(hist.query_losses):.3f}", val=f"{val:.3f}")
    test = test_dist.sample(test_tasks, torch.Generator().manual_seed(2017))
    report_steps = None if steps is None else ((0, steps, 10) if not images else (steps,))
    scores = learner.evaluate(test, steps=report_steps, metric=metric)
    summary: dict[str, dict[str, float]] = {}
    for k, v in sorted(scores.items()):
        half = float(1.96 * v.std(unbiased=True) / (len(v) ** 0.5))
        summary[f"after_{k}_steps"] = {"mean": round(float(v.mean()), 4), "ci95": round(half, 4)}
    results = {"settings": settings, "iterations": done, "train_seconds_this_call": round(time.perf_counter() - t0, 2),
               "device": device, "test_tasks": test_tasks, f"test_{metric_name}": summary}
    if images:
        results["test_split_classes"] = test_dist.n_classes
    torch.save(learner.state_dict(), out_dir / "init.pt")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    what = f"{ways}-way {shots}-shot" if images else f"K={shots}"
    table = Table(title=f"{algo} on {tasks}, {what}, {done} meta-iterations: test {metric_name} over {test_tasks} tasks")
    table.add_column("adaptation steps", justify="right")
    table.add_column(f"{metric_name} (95% CI)", justify="right")
    for name, stat in summary.items():
        table.add_row(name.split("_")[1], f"{stat['mean']:.3f} +- {stat['ci95']:.3f}")
    out.print(table)
    out.print(f"initialization: {out_dir / 'init.pt'}  results: {out_dir / 'results.json'}  log: {metrics_path}",
              highlight=False)


@app.command("nas", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def nas(ctx: typer.Context) -> None:
    """Neural architecture search: DARTS, warm-started DARTS, MetaNAS (needs torch; 'autometa nas --help')."""
    try:
        from autometa.nas._cli import nas_app
    except (ImportError, AutometaError) as exc:
        raise _fail(AutometaError(f"{exc}".splitlines()[0])) from None
    nas_app(args=ctx.args, prog_name="autometa nas")


@app.command()
def info(run_dir: Annotated[Path, typer.Argument(help="An output directory of 'autometa tune'.")]) -> None:
    """Print the result.json of a finished run."""
    path = run_dir / "result.json"
    if not path.is_file():
        raise _fail(AutometaError(f"'{path}' does not exist; give the --out directory of a finished 'autometa tune' run."))
    out.print_json(json.dumps(json.loads(path.read_text())))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
