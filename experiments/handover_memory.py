"""Memory of the hand-over of a table to the evaluation worker (issue 18, point 2: "the
worker processes each hold one copy of the data and receive it once").

For the 1,000,000 x 50 stress table of experiments/scale_check.py, in a fresh process per
source tree: ``Task(stress.csv)``, then ``autometa.evaluation.Evaluator(task).start()``
(the worker process starts and receives the data), sampling every 10 ms the resident memory
of the driver and of the worker. Reported: the driver's memory before the hand-over, the
peaks of both during it, the worker's memory once it holds the data, all against the
table's in-memory size. ``--before``: a source tree of the code before (put first on
``sys.path``), measured in the same run.

    python experiments/handover_memory.py --data /tmp/autometa-large --before /tmp/autometa-before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, machine_line, results_path

_MEASURE = r"""
import json, sys, threading, time, warnings
warnings.simplefilter("ignore")
import psutil
import autometa
from autometa import Task
from autometa.evaluation import Evaluator
me = psutil.Process()
task = Task(sys.argv[1], label="late")
data = (task.X.memory_usage(deep=True).sum() + task.y.memory_usage(deep=True)) / 2**20
ev = Evaluator(task)
before = me.memory_info().rss / 2**20
peak = {"driver": 0.0, "worker": 0.0}
done = threading.Event()
def sample():
    while not done.is_set():
        try:
            d = me.memory_info().rss / 2**20
            w = sum(c.memory_info().rss for c in me.children(recursive=True)) / 2**20
        except psutil.Error:
            continue
        peak["driver"], peak["worker"] = max(peak["driver"], d), max(peak["worker"], w)
        time.sleep(0.01)
thread = threading.Thread(target=sample, daemon=True)
thread.start()
t0 = time.perf_counter()
ev.start()
seconds = time.perf_counter() - t0
time.sleep(0.5)
held = sum(c.memory_info().rss for c in me.children(recursive=True)) / 2**20
done.set()
thread.join()
ev.close()
print(json.dumps({"autometa": autometa.__file__, "data_mib": data, "driver_before_mib": before,
                  "driver_peak_mib": peak["driver"], "worker_peak_mib": peak["worker"], "worker_holding_mib": held,
                  "start_s": seconds}))
"""


def measure(data: Path, source_tree: Path) -> dict[str, float | str]:
    env = {**os.environ, "PYTHONPATH": str(source_tree), "OMP_NUM_THREADS": "1"}
    load = round(os.getloadavg()[0], 1)
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(data)], env=env, capture_output=True, text=True,
                         check=True, cwd=tempfile.gettempdir())
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_avg": load}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "autometa-large")
    ap.add_argument("--before", type=Path, help="a source tree of the code before (its autometa package first)")
    ap.add_argument("--name", default="handover_memory")
    args = ap.parse_args(argv)
    stress = args.data / "flights_stress.csv"
    if not stress.is_file():
        raise SystemExit(f"{stress} is missing: write it with python experiments/scale_check.py --data {args.data}")
    rows = ([("before", measure(stress, args.before))] if args.before else []) + [("after", measure(stress, ROOT))]
    lines = [f"# {args.name}", "", __doc__.split("\n\n")[0], "", machine_line(), "",
             "| code | table MiB | driver before MiB | driver peak MiB | worker peak MiB | worker holding MiB | "
             "driver peak / table | worker peak / table | start s | load avg |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        d = float(r["data_mib"])
        lines.append(f"| {name} | {d:.0f} | {float(r['driver_before_mib']):.0f} | {float(r['driver_peak_mib']):.0f} | "
                     f"{float(r['worker_peak_mib']):.0f} | {float(r['worker_holding_mib']):.0f} | "
                     f"{float(r['driver_peak_mib']) / d:.1f}x | {float(r['worker_peak_mib']) / d:.1f}x | "
                     f"{float(r['start_s']):.1f} | {r['load_avg']} |")
    lines += ["", "Resident memory includes the interpreter and the imported libraries (about 280 MiB with "
              "autometa's imports: scale_check.md).", ""]
    results_path(args.name, ".md").write_text("\n".join(lines) + "\n")
    results_path(args.name, ".json").write_text(json.dumps(dict(rows), indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
