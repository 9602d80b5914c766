"""``autometa tune``, ``predict`` and ``info``."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from autometa._tune import PRUNERS
from autometa.cli._common import (
    _URL_HELP,
    _choice,
    _fail,
    _interrupt_guard,
    _leaderboard_table,
    _load_task,
    _log_to_console,
    _process_start,
    _split,
    app,
    err,
    out,
)
from autometa.cli._progress import TuneProgress
from autometa.evaluation import PROTOCOLS
from autometa.exceptions import AutometaError, AutometaWarning
from autometa.metadb import open_metadb
from autometa.optimizers import BACKENDS
from autometa.spaces import get_space
from autometa.transfer import TRANSFER_METHODS
from autometa.warmstart import DEFAULT_WARM_START, WARM_STARTERS


def _setup_lines(result: Any) -> list[str]:
    """What the meta-learning parts did, one line each."""
    lines = []
    if "protocol" in result.setup:
        lines.append(f"protocol: {result.setup['protocol']['reason']}")
    ws = result.setup.get("warm_start", {})
    if ws.get("fallback_from"):
        lines.append(f"warm start ({ws['fallback_from']}): {ws['reason']} Started from each family's default instead.")
    elif ws.get("name") not in (None, "none", "initial_configs"):
        lines.append(f"warm start ({ws['name']}): {ws.get('n', 0)} configurations ({ws.get('seconds', 0):.1f} s, counted in the budget)")
    if "prune" in result.setup:
        lines.append(f"pruned space: {result.setup['prune']['what']}")
    if "transfer" in result.setup:
        tr = result.setup["transfer"]
        lines.append(f"transfer: {tr['name']} over {tr['stored_tasks']} stored tasks")
    if result.n_resumed:
        lines.append(f"resumed: {result.n_resumed} finished trials read back, not redone")
    if "workers" in result.setup:
        w = result.setup["workers"]
        lost = f", {w['lost_trials']} trial(s) lost with their worker" if w.get("lost_trials") else ""
        lines.append(f"parallel: up to {w['capacity']} trials at once on {len(w.get('trials_per_worker', {}))} Dask worker(s){lost}")
    if "storage" in result.setup:
        st = result.setup["storage"]
        before = (f"; it held {st['trials_before']} finished trials, which are not proposed again"
                  if st.get("trials_before") else "")
        lines.append(f"optuna study: {st['study_name']} (shared through --storage){before}")
    ens = result.setup.get("ensemble", {})
    if ens.get("used"):
        lines.append(f"ensemble of {ens['n_members']} trials ({ens['model']}): {ens['reason']}")
    elif ens:
        lines.append(f"no ensemble: {ens.get('reason', 'not used')}")
    if "refit" in result.setup:
        rf = result.setup["refit"]
        if "passed_over" in rf:
            lines.append(f"final model: trial {rf['trial']} refit instead of trial {rf['passed_over']} ({rf['reason']})")
        else:  # the best trial, refit on a sample of the rows
            lines.append(f"final model: {rf['reason']}")
    return lines


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
    per_trial_limit: Annotated[float | None, typer.Option("--per-trial-limit", help="Seconds one trial may take (default: a quarter of the budget, at least 5 s).")] = None,
    memory_limit_mb: Annotated[int | None, typer.Option("--memory-limit-mb", help="Memory limit of the evaluation process.")] = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Threads per model fit.")] = 1,
    top: Annotated[int, typer.Option(help="Rows of the leaderboard to print.")] = 10,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every trial.")] = False,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Add the trials to the meta-database (own runs).")] = True,
    warm_start: Annotated[str, typer.Option("--warm-start", help="defaults: each family's default (for regression also a slow histogram boosting); knn: the best configurations of the nearest stored tasks (package default second, learned default third), then the defaults start; portfolio: the greedy portfolio of the stored tasks; predictor: the configurations the learned performance predictor expects to gain most per second on this table, then the defaults start; none: the backend's own design. knn, portfolio and predictor fall back to defaults when the meta-database has no task of this kind.")] = DEFAULT_WARM_START,
    metadb_url: Annotated[str | None, typer.Option("--metadb", help=_URL_HELP)] = None,
    transfer: Annotated[str, typer.Option("--transfer", help="Surrogate transfer from the meta-database inside the optimizer: rgpe (ranking-weighted ensemble of past tasks' GPs), tstr (similarity-weighted), pmf (matrix factorization of past tasks x configurations), guarded (pmf, dropped once the task's own trials contradict it) or none.")] = "none",
    ensemble_size: Annotated[int, typer.Option("--ensemble-size", help="Rounds of greedy ensemble selection (Caruana) over the best trials' out-of-fold predictions after the search; the ensemble is the final model when it beats the best single trial out of fold and the budget allows its refit.")] = 25,
    protocol: Annotated[str, typer.Option("--protocol", help="How trials are validated: auto (repeated CV on small tables, 5-fold CV while the family defaults take at most half the budget under it, one 25% holdout on larger tables or shorter budgets, successive halving over row samples on tables above 50,000 rows whose full-size fits would eat the budget), cv, holdout or successive-halving.")] = "auto",
    no_ensemble: Annotated[bool, typer.Option("--no-ensemble", help="Keep the best single pipeline (no ensemble selection).")] = False,
    prune: Annotated[str, typer.Option("--prune", help="Prune the search space from the meta-database: box (bounding box of the nearest tasks' best configurations), importance (fix hyperparameters of low importance to learned defaults) or none.")] = "none",
    n_workers: Annotated[int | None, typer.Option("--n-workers", help="Trials at once, each in its own Dask worker process (default 1; with --dask-scheduler, every worker thread of that cluster). Needs autometa\\[distributed].")] = None,
    dask_scheduler: Annotated[str | None, typer.Option("--dask-scheduler", help="Run the trials on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (started with 'dask scheduler' and 'dask worker').")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="With --backend optuna: an Optuna RDB storage URL (postgresql://..., sqlite:///study.db) holding the study, so that several autometa tune processes, on one machine or many, share it (optuna-dashboard reads it too).")] = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help="The shared Optuna study's name (default: derived from the data, label, metric and families).")] = None,
) -> None:
    """Tune a pipeline for DATA and save the final model: an ensemble of the best trials (when it beats the best single one out of fold) or the best pipeline, refit on all rows."""
    start = _process_start()
    if verbose:
        _log_to_console()
    from autometa import tune as run_tune

    where = out_dir if out_dir is not None else Path("autometa-out") / Path(data).stem
    bar = TuneProgress(err, time_budget_s=time_budget, n_trials=n_trials, start=start)
    with _interrupt_guard(where), bar:
        try:
            # the flags first, the data after: bad input is the one line printed
            _choice("--backend", backend, BACKENDS)
            _choice("--warm-start", warm_start, [*WARM_STARTERS, "none"])
            _choice("--transfer", transfer, TRANSFER_METHODS)
            _choice("--prune", prune, PRUNERS)
            _choice("--protocol", protocol, PROTOCOLS)
            if n_workers is not None and n_workers < 1:
                raise AutometaError(f"--n-workers must be at least 1; got {n_workers}.")
            if storage is not None and backend != "optuna":
                raise AutometaError(f"--storage holds an Optuna study: use it with --backend optuna (got --backend {backend}).")
            if ensemble_size < 1:
                raise AutometaError(
                    f"--ensemble-size must be at least 1 (use --no-ensemble to turn ensembles off); got {ensemble_size}."
                )
            if n_trials is not None and n_trials < 1:
                raise AutometaError(f"--n-trials must be at least 1; got {n_trials}.")
            bar.phase(f"loading {Path(data).name}")
            task = _load_task(
                data, label=label, problem_type=problem_type, metric=metric, seed=seed,
                time_budget_s=time_budget, sep=sep, categorical_columns=_split(categorical),
            )
            bar.phase("setting up")
            out_path = out_dir if out_dir is not None else Path("autometa-out") / str(task.name)
            # checked before the run's summary line, so that bad input is the one line printed
            get_space(str(task.problem_type), families=list(_split(families)) or None)
            if metadb_url is not None:
                open_metadb(metadb_url).close()
            d = task.describe()
            err.print(
                f"[bold]{d['name']}[/]: {d['n_rows']} rows, {d['n_features']} features "
                f"({d['n_numeric']} numeric, {d['n_categorical']} categorical), {d['problem_type']}, "
                f"metric {d['metric']}, backend {backend}, warm start {warm_start}, budget {time_budget:g} s"
                + (f", {n_workers} workers" if n_workers and n_workers > 1 else "")
                + (f", cluster {dask_scheduler}" if dask_scheduler else ""),
                highlight=False,
            )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AutometaWarning)
                result = run_tune(
                    task, optimizer=backend, warm_start=warm_start, transfer=transfer, prune=prune,
                    metadb=metadb_url, record=record, n_trials=n_trials, out_dir=out_path,
                    families=list(_split(families)) or None, per_trial_time_limit_s=per_trial_limit,
                    memory_limit_mb=memory_limit_mb, n_jobs=n_jobs, callbacks=[bar.on_trial], start_time=start,
                    n_workers=n_workers, dask_client=dask_scheduler, storage=storage, study_name=study_name,
                    ensemble_size=0 if no_ensemble else ensemble_size, protocol=protocol,
                )
        except AutometaError as exc:
            raise _fail(exc) from None
        except KeyboardInterrupt:
            err.print(
                f"interrupted: finished trials are saved in {where}; run the same command again to resume.",
                soft_wrap=True, highlight=False,
            )
            raise typer.Exit(code=130) from None

    for line in _setup_lines(result):
        err.print(line, highlight=False, soft_wrap=True)
    for w in caught:
        if issubclass(w.category, AutometaWarning) and "warm start (" not in str(w.message):
            err.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)
    out.print(_leaderboard_table(result, top))
    failed = sum(not r.ok for r in result.history)
    out.print(
        f"best {result.metric} = {result.best_score:.4f} ({result.best_config['family']}), "
        f"{result.n_trials} trials ({failed} failed), {time.perf_counter() - start:.1f} s",
        highlight=False,
    )
    if result.ensemble is not None:
        members = ", ".join(f"{m['weight']:.2f} x trial {m['trial']} ({m['family']})" for m in result.ensemble["members"])
        out.print(f"final model: ensemble ({result.ensemble['model']}) {members}", highlight=False, soft_wrap=True)
    if result.model is not None:
        out.print(f"model: {out_path / 'model.joblib'}  results: {out_path / 'result.json'}", highlight=False)
    else:
        err.print(f"[yellow]warning:[/] the best configuration could not be refit ({result.refit_error}).", soft_wrap=True)
    if "recorded_evaluations" in result.setup:
        err.print(f"recorded {result.setup['recorded_evaluations']} evaluations in the meta-database", highlight=False)


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model.joblib written by 'autometa tune', or the --out directory holding it (runs code when loaded: only your own or trusted files) or a .skops file written by 'autometa export' (loaded without running code from it; unknown types are refused).")],
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file with the training feature columns.")],
    output: Annotated[Path | None, typer.Option("--out", help="Where to write the predictions CSV (default: standard output).")] = None,
    sep: Annotated[str | None, typer.Option(help="CSV delimiter of DATA (detected by default).")] = None,
    ignore_versions: Annotated[bool, typer.Option("--ignore-versions", help="Load a model saved with other package versions.")] = False,
    trust: Annotated[list[str] | None, typer.Option("--trust", help="A type a .skops file may hold beyond the types of autometa's pipelines, as skops.io.get_untrusted_types names it (repeatable). Only name types you have inspected.")] = None,
) -> None:
    """Predict with a saved model: one row per input row (prediction and class probabilities)."""
    from autometa import load_model, read_table

    try:
        saved = load_model(model, check_versions=not ignore_versions, trusted=trust or ())
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
def export(
    run: Annotated[Path, typer.Argument(help="An output directory of 'autometa tune' (its model.joblib), or a model file.")],
    fmt: Annotated[str, typer.Option("--format", help="skops: a file others can load without running code from it ('autometa predict' reads it).")] = "skops",
    output: Annotated[Path | None, typer.Option("--out", help="Where to write (a .skops path; default: model.skops in RUN).")] = None,
    ignore_versions: Annotated[bool, typer.Option("--ignore-versions", help="Export a model saved with other package versions.")] = False,
) -> None:
    """Write the model of a run in a format that is safe to share."""
    from autometa.model import export_model

    try:
        _choice("--format", fmt, ["skops"])
        path = export_model(run, output, format=fmt, check_versions=not ignore_versions)
    except AutometaError as exc:
        raise _fail(exc) from None
    out.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command()
def info(run_dir: Annotated[Path, typer.Argument(help="An output directory of 'autometa tune'.")]) -> None:
    """Print the result.json of a finished run (the final model: single pipeline or ensemble with its members' weights)."""
    path = run_dir / "result.json"
    if not path.is_file():
        raise _fail(AutometaError(f"'{path}' does not exist; give the --out directory of a finished 'autometa tune' run."))
    out.print_json(json.dumps(json.loads(path.read_text())))


