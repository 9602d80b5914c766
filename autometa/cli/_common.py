"""Shared pieces of the command line: the typer app, the consoles, input loading and
one-line failures. The cli package is the only place that prints, draws progress or
configures logging."""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from autometa.exceptions import AutometaError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="autometa: tune scikit-learn pipelines on a CSV or Parquet table.",
    pretty_exceptions_enable=False,
)


def console(*, stderr: bool = False) -> Console:
    """A rich console; piped or redirected (no terminal, no $COLUMNS) it is 160 columns wide
    instead of rich's 80, so that a log file gets whole leaderboard rows."""
    c = Console(stderr=stderr)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        c = Console(stderr=stderr, width=160)
    return c


out = console()
err = console(stderr=True)


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


#: Column headers of the metrics in the leaderboard (short, so that it fits 80 columns).
_SHORT = {"balanced_accuracy": "bal_acc", "accuracy": "acc", "roc_auc": "roc_auc", "log_loss": "logloss",
          "rmse": "rmse", "mae": "mae", "r2": "r2"}


def _leaderboard_table(result: Any, top: int) -> Table:
    """The leaderboard: fits an 80-column terminal (short metric headers, no frame)."""
    from rich import box

    full = result.leaderboard
    weighted = "weight" in full.columns
    lb = full.head(top + 1) if weighted else full.head(top)  # an ensemble row comes on top of the trials
    metric = result.metric
    others = [c for c in lb.columns if c not in ("trial", "family", "status", "fit_time_s", "error", "weight", metric)]
    shown = len(lb) - int(weighted)
    title = f"Leaderboard: top {shown} of {result.n_trials} trials by validation {metric}"
    if weighted:
        title += " (rank 0: the ensemble, scored out of fold; w: weights)"
    table = Table(title=title,
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True,
                  title_justify="left")
    table.add_column("trial", justify="right", no_wrap=True)  # rows are in rank order
    table.add_column("family", no_wrap=True)
    table.add_column(_SHORT.get(metric, metric), justify="right", style="bold", no_wrap=True)
    for c in others:
        table.add_column(_SHORT.get(c, c), justify="right", no_wrap=True)
    if weighted:
        table.add_column("w", justify="right", no_wrap=True)
    table.add_column("fit s", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for _, row in lb.iterrows():
        weight = [] if not weighted else [f"{row['weight']:.2f}" if row["weight"] > 0 else ""]
        table.add_row(
            str(row["trial"]), row["family"], _fmt(row[metric]),
            *[_fmt(row[c]) for c in others], *weight,
            "-" if row["status"] != "ok" and not row["fit_time_s"] else f"{row['fit_time_s']:.1f}",  # killed: unknown
            row["status"] if row["status"] == "ok" else f"[red]{row['status']}[/]",
        )
    return table


def _split(csv: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (csv or "").split(",") if x.strip())


def _choice(flag: str, value: str, choices: Any) -> str:
    """``value`` if it is one of ``choices``, else a one-line error naming the flag."""
    names = list(choices)
    if value not in names:
        raise AutometaError(f"{flag} must be one of {', '.join(names)}; got {value!r}.")
    return value


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


