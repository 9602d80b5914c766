"""``autometa nas search | train | metanas``: the command line of :mod:`autometa.nas`.

A typer sub-application (``nas_app``) mounted on ``autometa``. Like the rest of the
cli package it is a place that prints, draws progress and configures logging; refused
input exits with status 2 and a one-line message, without a traceback. Loading the data,
the 50/25/25 split, checkpoints and scores are :mod:`autometa.nas`'s.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autometa.cli._common import app, console
from autometa.exceptions import AutometaError

nas_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Neural architecture search: DARTS (optionally warm-started), MetaNAS, training a genotype.",
)
out = console()
err = console(stderr=True)

_DATA_HELP = (
    "'digits' (scikit-learn's 8x8 digits, offline), 'glyphs:<alphabet>' (an alphabet of the offline glyph "
    "benchmark at 16x16, 60 images per class, e.g. glyphs:Cyrillic), an .npz file with arrays "
    "x (n, [channels,] height, width) and y (n,) of integer class labels, or a CSV/Parquet table with "
    "--label (classification; searched with fully connected operations)."
)
_LABEL_HELP = "Target column when --data is a table."
_DEVICE_HELP = "cpu or cuda (default: cuda when present)."


def _fail(exc: BaseException) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _nas() -> Any:
    try:
        import autometa.nas as nas
    except (ImportError, AutometaError) as exc:
        raise _fail(AutometaError(f"{exc}".splitlines()[0])) from None
    return nas


def _log_to_console(verbose: bool) -> None:
    if not verbose:
        return
    from rich.logging import RichHandler

    logger = logging.getLogger("autometa")
    logger.setLevel(logging.INFO)
    logger.addHandler(RichHandler(console=err, show_path=False))


def _load(data: str, classes: str | None, label: str | None, seed: int) -> tuple[Any, Any]:
    """:func:`autometa.nas.load_data` of the flags, showing a table's repairs (dropped rows
    or columns) as warning lines."""
    nas = _nas()
    chosen = None
    if classes:
        try:
            chosen = [int(c) for c in classes.split(",") if c.strip()]
        except ValueError:
            raise AutometaError(f"--classes must be integers separated by commas; got {classes!r}.") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = nas.load_data(data, label=label, classes=chosen, seed=seed)
    for w in caught:
        if issubclass(w.category, UserWarning):
            err.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)
    return loaded


def _ops(name: str) -> tuple[str, ...]:
    nas = _nas()
    sets = {"darts": nas.DARTS_OPS, "fewshot": nas.FEWSHOT_OPS, "tabular": nas.TABULAR_OPS}
    if name not in sets:
        raise AutometaError(f"--ops must be darts, fewshot or tabular; got {name!r}.")
    return tuple(sets[name])


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise AutometaError(f"--{name.replace('_', '-')} must be positive; got {value!r}.")


def _progress(label: str) -> Progress:
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err)


@nas_app.command()
def search(
    data: Annotated[str, typer.Option(help=_DATA_HELP)] = "digits",
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes to keep (a class-subset task): digits, e.g. 0,1,2,3,4, or positions in a glyph alphabet.")] = None,
    steps: Annotated[int, typer.Option(help="Search steps (one architecture and one weight update each).")] = 200,
    channels: Annotated[int, typer.Option(help="Channels of the first cells.")] = 8,
    cells: Annotated[int, typer.Option(help="Cells in the search network.")] = 3,
    nodes: Annotated[int, typer.Option(help="Intermediate nodes per cell.")] = 3,
    label: Annotated[str | None, typer.Option(help=_LABEL_HELP)] = None,
    ops: Annotated[str | None, typer.Option(help="Operation set: darts (8 operations, the default for images), fewshot (7) or tabular (7 fully connected ones, the default for tables).")] = None,
    order: Annotated[str, typer.Option(help="Architecture gradient: first or second (finite-difference Hessian-vector product).")] = "first",
    arch_lr: Annotated[float, typer.Option("--arch-lr", help="Adam step size of the architecture parameters.")] = 3e-3,
    weight_lr: Annotated[float, typer.Option("--weight-lr", help="SGD step size of the weights (cosine-annealed).")] = 0.025,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    guard: Annotated[str, typer.Option(help="Skip-collapse guard: none, auxiliary-skip (DARTS-) or hessian (early stop on the dominant eigenvalue).")] = "none",
    temperature: Annotated[tuple[float, float], typer.Option(help="Softmax temperature at the first and the last step.")] = (1.0, 1.0),
    store: Annotated[Path | None, typer.Option(help="Architecture store directory: warm-start from the most similar stored task, and add this search to it.")] = None,
    name: Annotated[str | None, typer.Option(help="Name of this task in --store (default: the --out directory name).")] = None,
    warm_weights: Annotated[bool, typer.Option("--warm-weights/--no-warm-weights", help="Also start from the nearest task's search-network weights.")] = False,
    device: Annotated[str | None, typer.Option(help=_DEVICE_HELP)] = None,
    seed: Annotated[int, typer.Option()] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory (checkpoint.pt, genotype.json, result.json); re-running resumes.")] = Path("autometa-out/nas-search"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every evaluation.")] = False,
) -> None:
    """DARTS search on an image or table classification task; writes the discretized genotype as JSON.

    The data is split (seeded) into train 50% / valid 25% / test 25%; the search uses train
    and valid, so 'autometa nas train' with the same --seed tests on rows it never saw.
    """
    nas = _nas()
    _log_to_console(verbose)
    guards = {"none": None, "auxiliary-skip": nas.AuxiliarySkip(), "hessian": nas.HessianEarlyStop()}
    try:
        if guard not in guards:
            raise AutometaError(f"--guard must be one of {', '.join(guards)}; got {guard!r}.")
        if steps < 1:
            raise AutometaError(f"--steps must be at least 1; got {steps!r}.")
        _positive(arch_lr=arch_lr, weight_lr=weight_lr)
        images, table = _load(data, classes, label, seed)
        train, valid, _ = nas.split_data(images, seed)
        op_set = _ops(ops or ("tabular" if table is not None else "darts"))
        searcher = nas.DARTSSearch(
            ops=op_set, channels=channels, n_cells=cells, n_nodes=nodes, order=order, arch_lr=arch_lr,
            weight_lr=weight_lr, batch_size=batch_size, guard=guards[guard], temperature=tuple(temperature),
            eval_every=max(1, steps // 20), device=device, seed=seed,
        )
        arch_store = nas.ArchitectureStore(store) if store is not None else None
        descriptor, warm = None, None
        if arch_store is not None:
            descriptor = nas.table_descriptor(table) if table is not None else nas.image_task_embedding(images)
            shape = (nas.edge_count(nodes), len(op_set))
            warm = arch_store.warm_start(descriptor, ops=op_set, shape=shape, with_weights=warm_weights,
                                         exclude=[name or out_dir.name])
            if warm is not None:
                err.print(f"warm start from '{warm.sources[0][0]}' (distance {warm.sources[0][1]:.3f})", highlight=False)
            else:
                err.print("no stored architecture of this search space: cold start", highlight=False)
        out_dir.mkdir(parents=True, exist_ok=True)
        with _progress("searching") as progress:
            bar = progress.add_task("search", total=steps, info="")

            def show(record: Any) -> None:
                progress.update(bar, completed=record.step,
                                info=f"valid acc {record.valid_accuracy:.3f}  skip share {record.skip_share:.2f}")

            result = searcher.search(
                train, valid, steps=steps, checkpoint=out_dir / "checkpoint.pt", callback=show,
                init_alphas=warm.alphas if warm is not None else None,
                init_weights=warm.weights if warm is not None else None,
            )
        result.genotype.save(out_dir / "genotype.json")
        (out_dir / "result.json").write_text(json.dumps(
            {**result.to_dict(), "warm_start": list(warm.sources[0]) if warm is not None else None}, indent=1))
        if arch_store is not None:
            arch_store.add(name or out_dir.name, descriptor, result, weights=searcher.network_.state_dict(), replace=True)
    except AutometaError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err.print(f"interrupted; re-run with --out {out_dir} to resume", highlight=False)
        raise typer.Exit(code=130) from None
    table = Table(title=f"DARTS search: {result.steps} steps" + (" (stopped early)" if result.stopped_early else ""))
    table.add_column("cell")
    table.add_column("node", justify="right")
    table.add_column("inputs (operation <- state)")
    for cell in ("normal", "reduce"):
        for i, edges in enumerate(result.genotype.node_edges(cell)):
            table.add_row(cell, str(i), ", ".join(f"{op} <- {j}" for op, j in edges))
    out.print(table)
    out.print(f"valid accuracy (search network) {result.final_valid_accuracy:.4f}; skip share "
              f"{result.history[-1].skip_share:.2f}; genotype: {out_dir / 'genotype.json'}", highlight=False)


@nas_app.command()
def train(
    genotype: Annotated[Path, typer.Argument(help="genotype.json written by 'autometa nas search'.")],
    data: Annotated[str, typer.Option(help=_DATA_HELP)] = "digits",
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes to keep (digits, or positions in a glyph alphabet).")] = None,
    label: Annotated[str | None, typer.Option(help=_LABEL_HELP)] = None,
    steps: Annotated[int, typer.Option(help="SGD steps.")] = 500,
    channels: Annotated[int, typer.Option()] = 16,
    cells: Annotated[int, typer.Option()] = 3,
    lr: Annotated[float, typer.Option(help="SGD step size (cosine-annealed).")] = 0.05,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    drop_path: Annotated[float, typer.Option("--drop-path")] = 0.0,
    device: Annotated[str | None, typer.Option(help=_DEVICE_HELP)] = None,
    seed: Annotated[int, typer.Option()] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory (model.pt, result.json).")] = Path("autometa-out/nas-train"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train the network of a genotype from scratch; report validation and test accuracy."""
    nas = _nas()
    import torch

    _log_to_console(verbose)
    try:
        if steps < 1:
            raise AutometaError(f"--steps must be at least 1; got {steps!r}.")
        _positive(lr=lr)
        cell = nas.Genotype.load(genotype)
        images, _ = _load(data, classes, label, seed)
        train_data, valid, test = nas.split_data(images, seed)
        with _progress("training") as progress:
            bar = progress.add_task("train", total=steps, info="")
            net, result = nas.train_genotype(
                cell, train_data, valid, steps=steps, test=test, channels=channels, n_cells=cells, drop_path=drop_path,
                device=device, seed=seed, lr=lr, batch_size=batch_size, eval_every=max(1, steps // 20),
                callback=lambda step, acc: progress.update(bar, completed=step, info=f"valid acc {acc:.3f}"),
            )
    except AutometaError as exc:
        raise _fail(exc) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"genotype": cell.to_dict(), "channels": channels, "n_cells": cells, "in_channels": train_data.in_channels,
                "n_classes": max(train_data.n_classes, valid.n_classes), "stem_kernel": train_data.stem_kernel,
                "state_dict": net.state_dict()}, out_dir / "model.pt")
    (out_dir / "result.json").write_text(json.dumps({
        "genotype": cell.to_dict(), "steps": steps, "channels": channels, "cells": cells,
        "n_parameters": result.n_parameters, "valid_accuracy": result.valid_accuracy,
        "test_accuracy": result.test_accuracy, "seconds": round(result.seconds, 2),
    }, indent=1))
    out.print(f"{result.n_parameters:,} parameters; valid accuracy {result.valid_accuracy:.4f}; test accuracy "
              f"{result.test_accuracy:.4f}; {out_dir / 'result.json'}", highlight=False)


@nas_app.command()
def metanas(
    benchmark: Annotated[str, typer.Option(help="glyphs (offline) or omniglot (needs --omniglot-root).")] = "glyphs",
    omniglot_root: Annotated[Path | None, typer.Option("--omniglot-root", help="Directory with images_background/ and images_evaluation/.")] = None,
    ways: Annotated[int, typer.Option()] = 5,
    shots: Annotated[int, typer.Option()] = 1,
    image_size: Annotated[int, typer.Option("--image-size")] = 16,
    iterations: Annotated[int, typer.Option(help="Meta-iterations.")] = 100,
    meta_batch: Annotated[int, typer.Option("--meta-batch", help="Tasks per meta-iteration.")] = 5,
    task_steps: Annotated[int, typer.Option("--task-steps", help="DARTS steps per task.")] = 5,
    outer: Annotated[str, typer.Option(help="Outer loop: fomaml (first-order MAML, Adam 1e-3 / 1e-2 on weights / architecture; the better one measured) or reptile (the MetaNAS paper's).")] = "fomaml",
    hard_fraction: Annotated[float, typer.Option("--hard-fraction", help="Share of the last meta-iterations (and the meta-test adaptation) run on the discretized architecture, so pruning changes nothing; 0 = temperature annealing alone.")] = 0.5,
    channels: Annotated[int, typer.Option()] = 8,
    cells: Annotated[int, typer.Option()] = 3,
    nodes: Annotated[int, typer.Option()] = 2,
    test_tasks: Annotated[int, typer.Option("--test-tasks", help="Meta-test episodes scored at the end.")] = 100,
    device: Annotated[str | None, typer.Option(help=_DEVICE_HELP)] = None,
    seed: Annotated[int, typer.Option()] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory (checkpoint.pt, meta_genotype.json, results.json); re-running resumes.")] = Path("autometa-out/metanas"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """MetaNAS: meta-learn weights and architecture (first-order MAML or Reptile over DARTS task steps), then adapt, prune and score on meta-test tasks."""
    nas = _nas()
    import torch

    from autometa.metalearn import GlyphTasks, OmniglotTasks

    _log_to_console(verbose)
    try:
        if benchmark not in ("glyphs", "omniglot"):
            raise AutometaError(f"--benchmark must be glyphs or omniglot; got {benchmark!r}.")
        if benchmark == "omniglot" and omniglot_root is None:
            raise AutometaError("--benchmark omniglot needs --omniglot-root (a local copy; nothing is downloaded).")
        if iterations < 1 or meta_batch < 1 or test_tasks < 1:
            raise AutometaError("--iterations, --meta-batch and --test-tasks must be at least 1.")
        if outer not in ("reptile", "fomaml"):
            raise AutometaError(f"--outer must be reptile or fomaml; got {outer!r}.")
        if not 0 <= hard_fraction <= 1:
            raise AutometaError(f"--hard-fraction must be between 0 and 1; got {hard_fraction!r}.")

        def episodes(split: str, queries: int) -> Any:
            if benchmark == "omniglot":
                return OmniglotTasks(ways=ways, shots=shots, queries=queries, split=split, root=str(omniglot_root),
                                     image_size=image_size)
            return GlyphTasks(ways=ways, shots=shots, queries=queries, split=split, image_size=image_size)

        train_tasks, test_dist = episodes("train", 5), episodes("test", 15)
        torch.manual_seed(seed)
        net = nas.SearchNetwork(1, ways, channels=channels, n_cells=cells, n_nodes=nodes, ops=nas.FEWSHOT_OPS,
                                bn=nas.BNSettings(affine=False, track_running_stats=False), seed=seed)
        rates = {"meta_lr": 1e-3, "meta_arch_lr": 1e-2} if outer == "fomaml" else {}
        learner = nas.MetaNAS(net, task_steps=task_steps, outer=outer, hard_fraction=hard_fraction, device=device, **rates)
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with _progress("meta-training") as progress:
            bar = progress.add_task("meta", total=iterations, info="")
            records = learner.meta_train(
                train_tasks, iterations=iterations, meta_batch_size=meta_batch, seed=seed,
                log_every=max(1, min(10, iterations // 10)), checkpoint=out_dir / "checkpoint.pt",
                callback=lambda r: progress.update(bar, completed=r.iteration,
                                                   info=f"query acc {r.query_accuracy:.3f}  T {r.temperature:.2f}"),
            )
        evaluation = learner.evaluate(test_dist.sample(test_tasks, torch.Generator().manual_seed(seed + 2020)),
                                      finetune_steps=task_steps)
    except AutometaError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err.print(f"interrupted; re-run with --out {out_dir} to resume", highlight=False)
        raise typer.Exit(code=130) from None
    net.genotype().save(out_dir / "meta_genotype.json")
    summary = evaluation.summary()
    (out_dir / "results.json").write_text(json.dumps({
        "benchmark": benchmark, "ways": ways, "shots": shots, "iterations": learner.iterations_done,
        "seconds_this_call": round(time.perf_counter() - t0, 2), "test_tasks": test_tasks, "accuracy": summary,
        "records": [r.__dict__ for r in records],
        "distinct_adapted_genotypes": len({g.to_json() for g in evaluation.genotypes}),
    }, indent=1))
    table = Table(title=f"MetaNAS on {benchmark}, {ways}-way {shots}-shot: accuracy over {test_tasks} meta-test tasks")
    table.add_column("network after adaptation")
    table.add_column("accuracy (95% CI)", justify="right")
    for key, label in (("pruned", "pruned"), ("pruned_finetuned", f"pruned + {task_steps} fine-tune steps"),
                       ("unpruned", "search network (not pruned)")):
        table.add_row(label, f"{summary[key]['mean']:.3f} +- {summary[key]['ci95']:.3f}")
    out.print(table)
    out.print(f"meta-architecture: {out_dir / 'meta_genotype.json'}  results: {out_dir / 'results.json'}", highlight=False)


app.add_typer(nas_app, name="nas", help="Neural architecture search: DARTS, warm-started DARTS, MetaNAS (needs torch).")
