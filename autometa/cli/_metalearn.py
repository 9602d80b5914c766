"""``autometa metalearn``: few-shot meta-learning of an initialization."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
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


