"""Scale check (issue 18): the 1,000,000 x 50 stress table against its 40,000-row source.

Measured through the shipped code paths only (``autometa.Task``, ``autometa.metafeatures.extract``
and the ``autometa tune`` command), each in a fresh process so that its peak memory is
its own, one at a time:

1. loading: ``Task(stress.csv)`` wall and CPU seconds, peak resident memory, the size of the
   validated table (``X`` and ``y``) in memory;
2. meta-features: ``extract(task)`` wall and CPU seconds on the loaded stress table;
   1 and 2 run twice, with the code before this work (``--before``: a source tree to put
   first on ``sys.path``) and after it;
3. tuning: ``autometa tune stress.csv --label late --time-budget 300`` and ``autometa tune
   source.csv --label late --time-budget 120``, in a pseudo-terminal (as a user sees the
   bar), recording when the progress bar first moves, the trials run, the wall time, the
   peak memory of the command and of its evaluation worker (sampled every 0.25 s), and the
   held-out balanced accuracy of the saved model on the 10,000 held-out rows.

The tables come from ``large_tasks.py`` (written to ``--data`` when missing). Timing on
this machine is noisy (2 cores shared by several sessions): CPU seconds are reported next
to wall seconds, and the load average at the start of each step.

    python experiments/scale_check.py --data /tmp/autometa-large --before /tmp/autometa-before
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import machine_line, results_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_LOAD_AND_EXTRACT = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import autometa
from autometa import Task
from autometa.metafeatures import extract
w, c = time.perf_counter(), time.process_time()
task = Task(sys.argv[1], label="late")
load_wall, load_cpu = time.perf_counter() - w, time.process_time() - c
load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
size = (task.X.memory_usage(deep=True).sum() + task.y.memory_usage(deep=True)) / 2**20
w, c = time.perf_counter(), time.process_time()
mf = extract(task)
print(json.dumps({"autometa": autometa.__file__, "rows": task.X.shape[0], "features": task.X.shape[1],
                  "load_wall_s": load_wall, "load_cpu_s": load_cpu, "load_peak_mib": load_peak, "data_mib": size,
                  "extract_wall_s": time.perf_counter() - w, "extract_cpu_s": time.process_time() - c,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "n_metafeatures": len(mf)}))
"""


def load_and_extract(data: Path, source_tree: Path) -> dict[str, Any]:
    """Steps 1 and 2 in a fresh process importing autometa from ``source_tree``."""
    env = {**os.environ, "PYTHONPATH": str(source_tree), "OMP_NUM_THREADS": "1"}
    load = round(os.getloadavg()[0], 1)
    out = subprocess.run([sys.executable, "-c", _LOAD_AND_EXTRACT, str(data)], env=env, capture_output=True,
                         text=True, check=True, cwd=tempfile.gettempdir())
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_avg": load}


class _Memory:
    """Samples the resident memory of a process and of its children."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.main = self.children = self.total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.25):
            try:
                main = self.proc.memory_info().rss / 2**20
                kids = [k.memory_info().rss / 2**20 for k in self.proc.children(recursive=True)]
            except psutil.Error:
                continue
            self.main = max(self.main, main)
            self.children = max([self.children, *kids])
            self.total = max(self.total, main + sum(kids))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def tune_cli(data: Path, budget: float, out: Path) -> dict[str, Any]:
    """``autometa tune`` in a pseudo-terminal: what the bar showed and when, memory, trials."""
    cmd = [sys.executable, "-m", "autometa.cli", "tune", str(data), "--label", "late", "--time-budget", f"{budget:g}",
           "--out", str(out), "--no-record"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "160", "PYTHONPATH": str(ROOT)}
    load = round(os.getloadavg()[0], 1)
    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env, close_fds=True)
    os.close(slave)
    mem = _Memory(proc.pid)
    frames: list[tuple[float, str]] = []
    messages: list[str] = []
    buf = ""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536).decode(errors="replace")
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            *complete, buf = re.split(r"[\r\n]", buf)
            for raw in complete:
                line = _ANSI.sub("", raw).strip()
                if line.startswith("tuning"):
                    frames.append((time.perf_counter() - t0, line))
                elif line.startswith(("error:", "warning:", "best ", "final model:", "protocol:")) and line not in messages:
                    messages.append(line)
        elif proc.poll() is not None:
            break
    proc.wait()
    wall = time.perf_counter() - t0
    mem.stop()
    os.close(master)
    moved = [t for (t, a), (_, b) in zip(frames, frames[1:], strict=False) if a != b]
    result = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else {}
    return {"exit_code": proc.returncode, "wall_s": wall, "load_avg": load, "first_bar_s": frames[0][0] if frames else None,
            "first_move_s": moved[0] if moved else None,
            "bar_at": {str(at): next((f for t, f in reversed(frames) if t < at), None) for at in (10, 30, 60)},
            "peak_cli_mib": mem.main, "peak_worker_mib": mem.children, "peak_total_mib": mem.total,
            "n_trials": result.get("n_trials"), "n_failed": result.get("n_failed"),
            "best_cv": result.get("best_score"), "best_family": (result.get("best_config") or {}).get("family"),
            "statuses": _statuses(out), "last_frame": frames[-1][1] if frames else None, "messages": messages}


def _statuses(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    path = out / "trials.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            status = json.loads(line)["status"]
            counts[status] = counts.get(status, 0) + 1
    return counts


def heldout_score(out: Path, heldout: Path) -> float | None:
    import pandas as pd
    from sklearn.metrics import balanced_accuracy_score

    from autometa import load_model

    model_path = out / "model.joblib"
    if not model_path.exists():
        return None
    test = pd.read_csv(heldout)
    pred = load_model(model_path).predict(test.drop(columns=["late"]))["prediction"]
    return float(balanced_accuracy_score(test["late"], pred))


def report(rows: dict[str, Any], name: str) -> str:
    b, a = rows.get("before"), rows["after"]
    tuned = [(label, rows[key]) for label, key in (("1M stress", "tune_stress"), ("40k source", "tune_source"))
             if key in rows]
    lines = [f"# {name}", "", __doc__.split("\n\n")[0], "", machine_line(), "",
             f"Stress table: {a['rows']:,} rows x {a['features'] + 1} columns ({a['features']} features), "
             f"{a['data_mib']:.0f} MiB in memory as a Task (X and y). Each number is one run.", "",
             "## Loading and meta-features (fresh process each)", "",
             "| code | load wall s | load CPU s | load peak MiB | peak / data | extract wall s | extract CPU s | "
             "process peak MiB | load avg |", "|---|---|---|---|---|---|---|---|---|"]
    for label, r in (("before", b), ("after", a)):
        if r:
            lines.append(f"| {label} | {r['load_wall_s']:.1f} | {r['load_cpu_s']:.1f} | {r['load_peak_mib']:.0f} | "
                         f"{r['load_peak_mib'] / r['data_mib']:.1f}x | {r['extract_wall_s']:.1f} | "
                         f"{r['extract_cpu_s']:.1f} | {r['peak_mib']:.0f} | {r['load_avg']} |")
    lines += ["", "Peak memory includes the interpreter and imported libraries (about 280 MiB with autometa's "
              "imports).", "", "## autometa tune (the command, in a pseudo-terminal)", "",
              "| table | budget s | exit | wall s | bar first drawn s | bar first moved s | "
              "trials (failed) | statuses | best CV bal. acc. | held-out bal. acc. | peak command MiB | "
              "peak worker MiB | peak sum MiB | load avg |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in tuned:
        def f(v: Any, spec: str = ".1f") -> str:
            return "-" if v is None else format(v, spec)
        lines.append(f"| {label} | {r['budget']:g} | {r['exit_code']} | {r['wall_s']:.1f} | {f(r['first_bar_s'])} | "
                     f"{f(r['first_move_s'])} | {r['n_trials']} ({r['n_failed']}) | "
                     f"{r['statuses']} | {f(r['best_cv'], '.4f')} | {f(r['heldout'], '.4f')} | {r['peak_cli_mib']:.0f} | "
                     f"{r['peak_worker_mib']:.0f} | {r['peak_total_mib']:.0f} | {r['load_avg']} |")
    lines += ["", "The bar as drawn at 10, 30 and 60 s and at the end, and the lines the command printed:", ""]
    for label, r in tuned:
        lines.append(f"- {label}:")
        lines += [f"  - {at} s: `{frame}`" for at, frame in r.get("bar_at", {}).items()]
        lines.append(f"  - end: `{r['last_frame']}`")
        lines += [f"  - printed: {m}" for m in r.get("messages", [])]
    lines += ["", "## Findings (computed from the rows above)", ""]
    if b:
        lines.append(f"- Loading: {b['load_cpu_s'] / a['load_cpu_s']:.1f}x less CPU ({b['load_cpu_s']:.1f} -> "
                     f"{a['load_cpu_s']:.1f} s), peak {b['load_peak_mib']:.0f} -> {a['load_peak_mib']:.0f} MiB "
                     f"({b['load_peak_mib'] / a['data_mib']:.1f}x -> {a['load_peak_mib'] / a['data_mib']:.1f}x the table).")
        lines.append(f"- Meta-features: {b['extract_cpu_s'] / a['extract_cpu_s']:.1f}x less CPU "
                     f"({b['extract_cpu_s']:.1f} -> {a['extract_cpu_s']:.1f} s; wall {b['extract_wall_s']:.1f} -> "
                     f"{a['extract_wall_s']:.1f} s at load average {b['load_avg']} / {a['load_avg']} on "
                     f"{os.cpu_count()} cores); process peak {b['peak_mib']:.0f} -> {a['peak_mib']:.0f} MiB.")
    for label, r in tuned:
        inside = r["wall_s"] <= r["budget"]
        lines.append(f"- {label}, {r['budget']:g} s: exit {r['exit_code']} after {r['wall_s']:.1f} s "
                     f"({'inside' if inside else 'over'} the budget by {abs(r['budget'] - r['wall_s']):.1f} s); bar drawn "
                     f"after {r['first_bar_s'] or float('nan'):.1f} s; peak of command + worker "
                     f"{r['peak_total_mib']:.0f} MiB"
                     + (f" = {r['peak_total_mib'] / a['data_mib']:.1f}x the table (command alone "
                        f"{r['peak_cli_mib'] / a['data_mib']:.1f}x)." if label.startswith("1M") else "."))
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "autometa-large")
    ap.add_argument("--before", type=Path, help="a source tree of the code before (its autometa package first)")
    ap.add_argument("--name", default="scale_check")
    ap.add_argument("--skip-tune", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md from the saved .json")
    ap.add_argument("--only", choices=("stress", "source"), help="tune only this table (the other's row is kept)")
    args = ap.parse_args()
    stress, source, heldout = (args.data / f"flights_{p}.csv" for p in ("stress", "source", "heldout"))
    if not stress.exists():
        subprocess.run([sys.executable, str(HERE / "large_tasks.py"), "--out", str(args.data), "--tasks", "none",
                        "--stress"], check=True)
    raw = results_path(args.name, ".json")
    rows: dict[str, Any] = json.loads(raw.read_text()) if raw.exists() else {}
    if args.report_only:
        results_path(args.name, ".md").write_text(report(rows, args.name))
        return
    if args.before is not None:
        rows["before"] = load_and_extract(stress, args.before)
        print("before", rows["before"], flush=True)
    rows["after"] = load_and_extract(stress, ROOT)
    print("after", rows["after"], flush=True)
    raw.write_text(json.dumps(rows, indent=2))
    if not args.skip_tune:
        with tempfile.TemporaryDirectory() as tmp:
            for key, data, budget in (("tune_stress", stress, 300.0), ("tune_source", source, 120.0)):
                if args.only and key != f"tune_{args.only}":
                    continue
                out = Path(tmp) / key
                r = tune_cli(data, budget, out)
                r["budget"] = budget
                r["heldout"] = heldout_score(out, heldout)
                rows[key] = r
                print(key, r, flush=True)
                raw.write_text(json.dumps(rows, indent=2))
    results_path(args.name, ".md").write_text(report(rows, args.name))
    print(report(rows, args.name))


if __name__ == "__main__":
    main()
