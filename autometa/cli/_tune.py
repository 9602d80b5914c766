"""``autometa tune``, ``predict`` and ``info``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autometa.cli._common import (
    _URL_HELP,
    _fail,
    _fmt,
    _interrupt_guard,
    _leaderboard_table,
    _load_task,
    _log_to_console,
    _open_db,
    _process_start,
    _split,
    app,
    err,
    out,
)
from autometa.exceptions import AutometaError, InputError


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


@app.command()
def info(run_dir: Annotated[Path, typer.Argument(help="An output directory of 'autometa tune'.")]) -> None:
    """Print the result.json of a finished run."""
    path = run_dir / "result.json"
    if not path.is_file():
        raise _fail(AutometaError(f"'{path}' does not exist; give the --out directory of a finished 'autometa tune' run."))
    out.print_json(json.dumps(json.loads(path.read_text())))


