"""The progress bar of ``autometa tune``: it moves with the clock and names the phase.

A long phase (reading a large file, computing meta-features, a first trial on a million
rows) would leave a bar that moves only when a trial ends frozen for minutes. This one is
redrawn twice a second from a background thread: in time-budget mode its fill is the
elapsed share of the budget, and its last column says what is happening now: ``loading
DATA``, ``setting up``, ``trial k running, s``.

The phase after loading is read from the log records the library emits anyway (the warm
start is logged just before the first trial), so the library needs no hook for it.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["TuneProgress"]

_TICK_S = 0.5
#: Log messages of autometa.tune after which the first trial starts.
_BEFORE_FIRST_TRIAL = ("warm start (", "resumed:")


class _PhaseHandler(logging.Handler):
    """Turns the facade's set-up log records into phase changes."""

    def __init__(self, bar: TuneProgress) -> None:
        super().__init__(level=logging.INFO)
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        msg = str(record.msg)
        if msg.startswith(_BEFORE_FIRST_TRIAL):
            self.bar.trial_started()


class TuneProgress:
    """The bar of one ``autometa tune`` run; a context manager.

    Parameters
    ----------
    console : Console
        Where the bar is drawn (standard error).
    time_budget_s : float
        The run's budget; the bar fills with the elapsed share of it.
    n_trials : int, optional
        With a trial limit, the bar fills with the finished share of the trials instead.
    start : float
        ``time.perf_counter()`` at the start of the run (process start).
    """

    def __init__(self, console: Console, *, time_budget_s: float, n_trials: int | None, start: float) -> None:
        self.time_budget_s = float(time_budget_s)
        self.n_trials = n_trials
        self.start = start
        self.total = float(n_trials) if n_trials else self.time_budget_s
        self._progress = Progress(
            TextColumn("[bold]tuning"), BarColumn(), TextColumn("{task.fields[trials]} trials"),
            TextColumn("best {task.fields[best]}"), TextColumn("{task.fields[left]}"), TimeElapsedColumn(),
            TextColumn("{task.fields[phase]}"),
            console=console, transient=False,
        )
        self._bar = self._progress.add_task("tune", total=self.total, trials=0, best="-", left="", phase="")
        self._lock = threading.Lock()
        self._phase = ""
        self._phase_since = time.perf_counter()
        self._finished = 0
        self._running = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick_loop, name="autometa-progress", daemon=True)
        self._handler = _PhaseHandler(self)
        self._logger = logging.getLogger("autometa")
        self._old_level = self._logger.level

    # ------------------------------------------------------------------ phases
    def phase(self, text: str) -> None:
        """Show ``text`` as what is happening now (with its elapsed seconds)."""
        with self._lock:
            self._phase, self._phase_since, self._running = text, time.perf_counter(), False
        self._tick()

    def trial_started(self) -> None:
        """The next trial is running (the set-up is over, or a trial just ended)."""
        with self._lock:
            self._running, self._phase_since = True, time.perf_counter()
        self._tick()

    def on_trial(self, p: Any) -> None:
        """The callback :func:`autometa.tune` calls after every trial (a ``Progress``)."""
        from autometa.cli._common import _fmt

        with self._lock:
            self._finished = int(p.n_trials)
        self._progress.update(self._bar, trials=p.n_trials, best=_fmt(p.best_score))
        self.trial_started()

    # ------------------------------------------------------------------ drawing
    def _tick(self) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        with self._lock:
            seconds = now - self._phase_since
            text = f"trial {self._finished + 1} running, {seconds:.0f} s" if self._running else (
                f"{self._phase}, {seconds:.0f} s" if self._phase else "")
            done = float(self._finished) if self.n_trials else min(elapsed, self.time_budget_s)
        left = max(0.0, self.time_budget_s - elapsed)
        self._progress.update(self._bar, completed=done, left=f"{left:.0f} s left", phase=text)

    def _tick_loop(self) -> None:
        while not self._stop.wait(_TICK_S):
            self._tick()

    def __enter__(self) -> TuneProgress:
        self._progress.start()
        if self._logger.getEffectiveLevel() > logging.INFO:
            self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self._handler)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._old_level)
        if kind is None:
            self._progress.update(self._bar, completed=self.total, phase="done")
        elif not issubclass(kind, KeyboardInterrupt):  # a failed run ends with its one error line only
            self._progress.update(self._bar, visible=False)
        self._progress.stop()
