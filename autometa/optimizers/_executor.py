"""Executors: where :func:`autometa.tune` runs its trials — one at a time in this process,
or several at once on the workers of a Dask cluster.

The facade owns the loop: it asks the optimizer while the executor has a free slot,
submits, and tells each result as it comes back. Every guarantee of the evaluator holds
per trial on every worker: the evaluator (for :class:`~autometa.evaluation.Evaluator`, a
killable process with the wall-time and memory limits) runs on the worker, so a hanging,
crashing or out-of-memory configuration comes back as a failed trial and the worker's
evaluation process is replaced.
"""

from __future__ import annotations

import abc
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autometa.evaluation import BaseEvaluator, TrialResult
from autometa.exceptions import AutometaWarning, InputError
from autometa.extras import require_distributed

__all__ = ["BaseExecutor", "DaskExecutor", "Finished", "SerialExecutor"]

#: Seconds a trial may run past its deadline before the driver gives up on its worker.
_GRACE_S = 30.0
#: Seconds local workers may take to start (imports on a busy machine).
_WORKER_START_S = 120.0


@dataclass(frozen=True)
class Finished:
    """A trial that came back: the key it was submitted under, its result, and the
    seconds between submission and the result reaching the driver."""

    key: str
    result: TrialResult
    roundtrip_s: float


class BaseExecutor(abc.ABC):
    """Runs evaluations for the facade's loop.

    Contract: :meth:`submit` never blocks on an evaluation and is only called while
    :meth:`free` is positive; :meth:`wait` blocks until at least one submitted trial is
    back (or ``timeout_s`` passes) and returns every finished one, each exactly once —
    a trial whose worker was lost comes back as a failed :class:`TrialResult`, never
    as an exception. :meth:`close` releases workers (it may be called more than once).
    Called from one thread.
    """

    #: Trials that can run at once.
    capacity: int = 1

    @abc.abstractmethod
    def submit(self, key: str, config: Mapping[str, Any], *, time_limit_s: float | None, deadline: float,
               budget: float | None = None) -> None:
        """Start evaluating ``config``; ``deadline`` is a ``time.perf_counter()`` value;
        ``budget`` a row budget for an evaluator that supports one (successive halving)."""

    @abc.abstractmethod
    def wait(self, timeout_s: float | None = None) -> list[Finished]:
        """The trials that finished since the last call (at least one unless it timed out)."""

    @property
    @abc.abstractmethod
    def n_running(self) -> int:
        """Submitted trials not yet returned by :meth:`wait`."""

    @property
    def free(self) -> int:
        return self.capacity - self.n_running

    def close(self, wait: bool = True) -> None:  # noqa: B027 - optional hook
        """Release workers; with ``wait=False`` without waiting for them to exit."""

    def describe(self) -> dict[str, Any]:
        """What ran where, for ``TuneResult.setup``."""
        return {"name": type(self).__name__, "capacity": self.capacity}


class SerialExecutor(BaseExecutor):
    """One trial at a time, evaluated by ``evaluator`` when :meth:`wait` is called."""

    capacity = 1

    def __init__(self, evaluator: BaseEvaluator) -> None:
        self.evaluator = evaluator
        self._job: tuple[str, dict[str, Any], float | None, float, float, float | None] | None = None

    @property
    def n_running(self) -> int:
        return 0 if self._job is None else 1

    def submit(self, key: str, config: Mapping[str, Any], *, time_limit_s: float | None, deadline: float,
               budget: float | None = None) -> None:
        if self._job is not None:
            raise RuntimeError("SerialExecutor runs one trial at a time; wait() for it first.")
        self._job = (key, dict(config), time_limit_s, deadline, time.perf_counter(), budget)

    def wait(self, timeout_s: float | None = None) -> list[Finished]:
        if self._job is None:
            return []
        key, config, limit, deadline, t0, budget = self._job
        self._job = None
        res = _evaluate_budget(self.evaluator, config, limit, deadline, budget)
        return [Finished(key, res, time.perf_counter() - t0)]


def _evaluate_budget(ev: BaseEvaluator, config: dict[str, Any], time_limit_s: float | None, deadline: float,
                     budget: float | None) -> TrialResult:
    """``ev.evaluate``, with the row budget only when there is one (evaluators written
    before budgets existed do not take the keyword)."""
    if budget is None:
        return ev.evaluate(config, time_limit_s=time_limit_s, deadline=deadline)
    return ev.evaluate(config, time_limit_s=time_limit_s, deadline=deadline, budget=budget)  # type: ignore[call-arg]


def _evaluate_on_worker(evaluator: BaseEvaluator, token: str, config: dict[str, Any], time_limit_s: float | None,
                        deadline_wall: float, budget: float | None = None,
                        ) -> tuple[TrialResult, float, str]:  # pragma: no cover - runs on a worker
    """The task a Dask worker runs: evaluate with this worker's copy of the evaluator.

    The evaluator arrives once per worker (scattered with ``broadcast=True``) and is kept
    in the worker process under ``token``, so its evaluation process and the data it
    holds live between trials. Deadlines travel as wall-clock times (``time.time()``)
    because ``perf_counter`` values mean nothing in another process.
    """
    import distributed

    ev = _WORKER_CACHE.setdefault(token, evaluator)
    t0 = time.perf_counter()
    deadline = t0 + (deadline_wall - time.time())
    res = _evaluate_budget(ev, config, time_limit_s, deadline, budget)
    return res, time.perf_counter() - t0, str(distributed.get_worker().address)


def _start_on_worker(evaluator: BaseEvaluator, token: str) -> bool:  # pragma: no cover - runs on a worker
    _WORKER_CACHE.setdefault(token, evaluator).start()
    return True


#: The evaluators held by this worker process, by run token (see _evaluate_on_worker).
_WORKER_CACHE: dict[str, BaseEvaluator] = {}


def _release_on_worker(token: str) -> bool:  # pragma: no cover - runs on a worker
    ev = _WORKER_CACHE.pop(token, None)
    if ev is not None:
        ev.close()
    return True


def _reap_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class DaskExecutor(BaseExecutor):
    """Trials on the workers of a Dask cluster, up to one per worker thread at a time.

    Parameters
    ----------
    evaluator : BaseEvaluator
        Sent once to every worker (its data with it); each worker keeps its copy between
        trials. An :class:`~autometa.evaluation.Evaluator` then runs each trial in its own
        killable process on that worker, with the time and memory limits.
    client : distributed.Client, str or None
        An existing cluster (a client, or a scheduler address such as
        ``"tcp://10.0.0.5:8786"``), or None for a local cluster of ``n_workers`` worker
        processes with one thread each, started here and closed by :meth:`close`.
    n_workers : int, optional
        Trials at once. Default: every thread of the cluster.
    connect_timeout_s : float
        How long to wait for a scheduler address to answer.

    Notes
    -----
    A trial whose worker is lost (killed, or the machine gone) comes back as a failed
    trial (status ``crash``), and the run goes on; the local cluster's nanny starts a
    new worker. A trial that does not come back by its deadline (the end of the budget,
    less the refit's share) plus a grace period is given up (status ``timeout``).
    """

    def __init__(self, evaluator: BaseEvaluator, *, client: Any = None, n_workers: int | None = None,
                 connect_timeout_s: float = 10.0) -> None:
        distributed = require_distributed("tune(n_workers=...)")
        if n_workers is not None and n_workers < 1:
            raise InputError(f"The 'n_workers' parameter must be at least 1; got {n_workers!r}.")
        self._own: list[Any] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        if client is None:
            client = self._start_local(distributed, n_workers or 1)
        elif isinstance(client, str):
            try:
                client = distributed.Client(client, timeout=connect_timeout_s, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise InputError(
                    f"Cannot reach the Dask scheduler at {client!r} ({type(exc).__name__}); start it with "
                    "'dask scheduler' and check the address."
                ) from None
            self._own = [client]
        self.client = client
        self.capacity = n_workers if n_workers is not None else self._threads()
        self._evaluator_obj = evaluator
        self._evaluator: Any = None  # the scattered evaluator, once the workers are up
        self._token = uuid.uuid4().hex
        self._running: dict[Any, tuple[str, dict[str, Any], float, float, bool]] = {}
        self._starting: list[Any] = []
        self._done = threading.Event()  # set by a future's done-callback (Dask's thread)
        self.n_lost = 0
        self.trials_per_worker: dict[str, int] = {}
        self._overheads: list[float] = []
        self.start_s: float | None = None
        self._t_start = time.perf_counter()
        if not self._procs:
            self._ready()

    def _threads(self) -> int:
        return int(sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))

    def _ready(self) -> None:
        """Wait for the workers, send the evaluator to each once, and start its evaluation process there."""
        if self._evaluator is not None:
            return
        if self._procs:
            try:
                self.client.wait_for_workers(self.capacity, timeout=_WORKER_START_S)
            except (TimeoutError, OSError):
                self.close()
                raise InputError(f"{self.capacity} local Dask worker(s) did not start within {_WORKER_START_S:.0f} s.") from None
        threads = self._threads()
        if threads < 1:
            self.close()
            raise InputError("The Dask cluster has no workers; start some with 'dask worker ADDRESS'.")
        if self.capacity > threads:
            warnings.warn(
                f"n_workers={self.capacity} but the Dask cluster has {threads} worker thread(s): at most {threads} "
                "trials run at once.", AutometaWarning, stacklevel=3,
            )
        self._scatter()
        self._starting = [  # start-up in parallel, before the first trial
            self.client.submit(_start_on_worker, self._evaluator, self._token, workers=[addr], pure=False,
                               allow_other_workers=False)
            for addr in self.client.scheduler_info()["workers"]
        ]
        self.start_s = time.perf_counter() - self._t_start

    def _start_local(self, distributed: Any, n: int) -> Any:
        """A scheduler in this process and ``n`` worker processes started by ``dask worker``.

        The workers are started as commands, not with :mod:`multiprocessing`, so that the
        user's main script is never imported again in them (a script without a
        ``__main__`` guard would otherwise run again in every worker). Each worker
        process has a nanny that replaces it when it dies; they all exit on their own
        (``--death-timeout``) when this process is killed.
        """
        import dask

        # The evaluator is broadcast to every worker; the active memory manager would drop the
        # "extra" copies, so that losing one worker could lose the only one.
        with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                              "distributed.scheduler.active-memory-manager.start": False}), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cluster = distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                                               dashboard_address=None,
                                               scheduler_port=0, silence_logs=50)
            client = distributed.Client(cluster, set_as_default=False)
        self._own = [client, cluster]
        cmd = [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--nworkers", str(n),
               "--nthreads", "1", "--no-dashboard", "--death-timeout", "30", "--memory-limit", "0"]
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self._procs = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env=env)]
        return client

    @property
    def n_running(self) -> int:
        return len(self._running)

    def _evaluator_alive(self) -> None:
        """Send the evaluator again when the cluster has lost it.

        The scheduler's active memory manager may keep a scattered value on one worker
        only; when that worker dies the value is gone, and every trial that depends on it
        would be cancelled. A fresh broadcast keeps the run going (each worker still keeps
        its own copy, by token, once it has one).
        """
        if self._evaluator is not None and self._evaluator.status != "finished":
            self._scatter()

    def _scatter(self) -> None:
        self._evaluator = self.client.scatter(self._evaluator_obj, broadcast=True, hash=False)

    def submit(self, key: str, config: Mapping[str, Any], *, time_limit_s: float | None, deadline: float,
               budget: float | None = None) -> None:
        self._ready()
        self._evaluator_alive()
        now = time.perf_counter()
        fut = self.client.submit(
            _evaluate_on_worker, self._evaluator, self._token, dict(config), time_limit_s,
            time.time() + (deadline - now), budget, pure=False, retries=0,
        )
        fut.add_done_callback(lambda _f: self._done.set())
        # The worker enforces the trial's limit (its start-up excluded, as in a serial run);
        # the driver only gives up on a worker that stays silent past the trial's deadline.
        give_up = deadline + _GRACE_S
        # the overhead is measured on trials that did not queue behind a worker's start-up
        self._running[fut] = (key, dict(config), now, give_up, all(f.done() for f in self._starting))

    def wait(self, timeout_s: float | None = None) -> list[Finished]:
        if not self._running:
            return []
        horizon = min(r[3] for r in self._running.values()) - time.perf_counter()
        limit = max(0.0, horizon) if timeout_s is None else max(0.0, min(timeout_s, horizon))
        if not any(f.done() for f in self._running):
            self._done.wait(limit)
        self._done.clear()
        out: list[Finished] = []
        now = time.perf_counter()
        for fut in [f for f in self._running if f.done() or now >= self._running[f][3]]:
            key, config, t0, _, warm = self._running.pop(fut)
            out.append(Finished(key, self._collect(fut, config, t0, now, warm), now - t0))
        return out

    def _collect(self, fut: Any, config: dict[str, Any], t0: float, now: float, warm: bool) -> TrialResult:
        if not fut.done():
            fut.cancel()
            self.n_lost += 1
            return TrialResult(config=config, status="timeout", duration_s=now - t0,
                               error="the worker did not return the trial within its time limit (given up)")
        try:
            res, worker_s, where = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker or a broken connection: the trial failed
            self.n_lost += 1
            return TrialResult(config=config, status="crash", duration_s=now - t0,
                               error=f"the Dask worker running this trial was lost ({type(exc).__name__})")
        if warm:
            self._overheads.append(max(0.0, (now - t0) - worker_s))
        self.trials_per_worker[where] = self.trials_per_worker.get(where, 0) + 1
        return res

    def describe(self) -> dict[str, Any]:
        ov = sorted(self._overheads)
        return {
            "name": type(self).__name__,
            "capacity": self.capacity,
            "start_s": None if self.start_s is None else round(self.start_s, 3),
            "scheduler": str(getattr(self.client, "scheduler", None) and self.client.scheduler.address),
            "lost_trials": self.n_lost,
            "trials_per_worker": dict(sorted(self.trials_per_worker.items())),
            "overhead_s_median": round(ov[len(ov) // 2], 4) if ov else None,
            "overhead_s_mean": round(sum(ov) / len(ov), 4) if ov else None,
            "overhead_trials": len(ov),
        }

    def close(self, wait: bool = True) -> None:
        """Stop this run's work on the cluster; the local workers, if any, are stopped.

        With ``wait=False`` the local worker processes are only signalled (they need about
        a second to exit, and their evaluation processes end with them); a later
        :meth:`close` reaps them. ``tune`` closes that way before the refit, so that the
        workers' shutdown overlaps the refit instead of adding to the budget.
        """
        if getattr(self, "client", None) is None:
            self._reap(wait)
            return
        for fut in list(getattr(self, "_running", {})):
            fut.cancel()
        self._running = {}
        if self._procs:  # local workers: SIGTERM first, so that each nanny stops its worker at once
            for proc in self._procs:
                proc.terminate()
        else:
            try:  # stop this run's evaluation processes on the workers (a user's cluster stays up)
                self.client.run(_release_on_worker, self._token, wait=True)
            except Exception:  # noqa: BLE001 - a cluster already gone has nothing left to free
                pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for part in self._own:
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - closing twice or a dead cluster
                    pass
        self._own = []
        self.client = None
        self._reap(wait)

    def _reap(self, wait: bool) -> None:
        """Wait for the local worker processes to exit (killed after 10 s); without
        ``wait``, a daemon thread does it, so that no exited worker stays a zombie."""
        procs = list(getattr(self, "_procs", []))
        if not wait:
            if procs:
                threading.Thread(target=_reap_all, args=(procs,), name="autometa-reap", daemon=True).start()
            return
        _reap_all(procs)
        self._procs = []
