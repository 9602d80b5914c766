"""``autometa suggest``, ``defaults`` and ``metafeatures``: the meta-knowledge, shown."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autometa.cli._common import (
    _URL_HELP,
    _choice,
    _fail,
    _fmt,
    _load_task,
    _open_db,
    app,
    out,
)
from autometa.exceptions import AutometaError


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
    method: Annotated[str, typer.Option("--method", help="predictor (the learned performance predictor; its first fit takes about 10 s, later calls load it) or knn (the best configurations of the nearest stored tasks).")] = "predictor",
) -> None:
    """Zero-shot: explained configurations for DATA from the meta-database, without fitting."""
    from autometa.warmstart import suggest_config

    try:
        task = _load_task(data, label=label, problem_type=problem_type, metric=metric, sep=sep)
        _choice("--method", method, ("predictor", "knn"))
        found = suggest_config(task, n=n, metadb=_open_db(metadb_url) if metadb_url else None, method=method)
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
    for col in ("family", "tasks", "configurations", "vs package default", "vs learned default", "learned default"):
        table.add_column(col, justify="left" if col in ("family", "learned default") else "right")
    for r in rows:
        row = r.as_row()
        learned = ", ".join(f"{k.split(':', 1)[1]}={v:.4g}" if isinstance(v, float) else f"{k.split(':', 1)[1]}={v}"
                            for k, v in r.learned_default.items() if ":" in k)
        table.add_row(r.family, str(r.n_tasks), str(r.n_configs),
                      _fmt(row["tunability_vs_package_default"]), _fmt(row["tunability_vs_learned_default"]), learned)
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


