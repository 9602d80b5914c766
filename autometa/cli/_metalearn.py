"""``autometa metalearn``: few-shot meta-learning of an initialization.

The run itself (checkpoint and resume, metrics.csv, validation, test scores, init.pt,
results.json) is :func:`autometa.metalearn.fit_meta`; this command parses the flags,
draws its progress and prints the test table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autometa.cli._common import (
    _fail,
    app,
    err,
    out,
)
from autometa.exceptions import AutometaError


@app.command()
def metalearn(
    algo: Annotated[str, typer.Option(help="maml, fomaml, reptile, anil, metasgd, imaml (gradient-based); protonet, matching, relation (metric, images only); snail (black box); alpaca (Bayesian, regression only).")] = "maml",
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
    full_context: Annotated[bool, typer.Option("--full-context/--no-full-context", help="Full-context embeddings (--algo matching).")] = False,
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
    images = tasks in ("glyphs", "omniglot")
    try:
        if algo not in ml.ALGORITHMS:
            raise AutometaError(f"--algo must be one of {', '.join(ml.ALGORITHMS)}; got {algo!r}.")
        if tasks not in ml.TASK_FAMILIES:
            raise AutometaError(f"--tasks must be one of {', '.join(ml.TASK_FAMILIES)}; got {tasks!r}.")
        if algo in ("protonet", "matching", "relation") and not images:
            raise AutometaError(f"--algo {algo} classifies: use --tasks glyphs or omniglot.")
        if algo == "alpaca" and images:
            raise AutometaError("--algo alpaca regresses: use --tasks sinusoid, harmonic or line.")
        if full_context and algo != "matching":
            raise AutometaError("--full-context applies to --algo matching only.")
        if device not in ("cpu", "cuda"):
            raise AutometaError(f"--device must be cpu or cuda; got {device!r}.")
        if device == "cuda" and not torch.cuda.is_available():
            raise AutometaError("--device cuda, but torch sees no CUDA GPU (torch.cuda.is_available() is False).")
        if tasks == "omniglot" and data_dir is None:
            raise AutometaError("--tasks omniglot needs --data-dir, the folder holding images_background/ and images_evaluation/.")
        if min(v for v in (iterations, shots, queries, meta_batch, test_tasks, width) if v is not None) < 1:
            raise AutometaError("--iterations, --shots, --queries, --meta-batch, --test-tasks and --width must be at least 1.")
        progress = Progress(TextColumn("[bold]meta-training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TextColumn("query loss {task.fields[loss]}  val {task.fields[val]}"), TimeElapsedColumn(),
                            console=err)
        bar = progress.add_task("meta", total=iterations, loss="-", val="-")

        def show(step: ml.MetaLearnProgress) -> None:
            if step.train_query_loss is None:  # before training: the count resumed from the checkpoint
                if step.iteration:
                    err.print(f"resuming at meta-iteration {step.iteration}", highlight=False)
                progress.update(bar, completed=min(step.iteration, iterations))
                progress.start()
            else:
                progress.update(bar, completed=step.iteration, loss=f"{step.train_query_loss:.3f}",
                                val=f"{step.val_score:.3f}")
            if step.iteration >= iterations:  # the test scoring follows: no bar over it
                progress.stop()

        try:
            result = ml.fit_meta(
                algo, tasks, iterations=iterations, ways=ways, shots=shots, queries=queries, meta_batch=meta_batch,
                inner_steps=inner_steps, inner_lr=inner_lr, outer_lr=outer_lr, width=width, full_context=full_context, data_dir=data_dir,
                test_tasks=test_tasks, device=device, amp=amp, seed=seed, out_dir=out_dir, callbacks=[show],
            )
        finally:
            progress.stop()
    except AutometaError as exc:
        raise _fail(exc) from None
    shots = result.settings["shots"]
    what = f"{ways}-way {shots}-shot" if images else f"K={shots}"
    table = Table(title=f"{algo} on {tasks}, {what}, {result.iterations} meta-iterations: test {result.metric} "
                        f"over {result.test_tasks} tasks")
    table.add_column("adaptation steps", justify="right")
    table.add_column(f"{result.metric} (95% CI)", justify="right")
    for name, stat in result.test.items():
        table.add_row(name.split("_")[1], f"{stat['mean']:.3f} +- {stat['ci95']:.3f}")
    out.print(table)
    if result.calibration is not None:
        nll, cover = result.calibration["nll"], result.calibration["coverage90"]
        out.print(f"predictive calibration: test NLL {nll['mean']:.3f} +- {nll['ci95']:.3f}, "
                  f"90% interval coverage {cover['mean']:.3f} +- {cover['ci95']:.3f}", highlight=False)
    out.print(f"initialization: {out_dir / 'init.pt'}  results: {out_dir / 'results.json'}  log: {out_dir / 'metrics.csv'}",
              highlight=False)
