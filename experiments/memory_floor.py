"""How much memory does one fit on the 1,000,000 x 50 stress table need, whoever runs it?
(issue 18's goal: the tuner's peak under 3x the data's in-memory size).

Each step runs in a fresh process, one at a time, and reports that process's peak resident
memory (``ru_maxrss``), its resident memory after loading the table, and the table's size
in memory as an ``autometa.Task`` (X and y), on the stress table of ``scale_check.py``:

- ``load``: ``Task(stress.csv)`` and nothing else;
- ``sklearn HGB, DataFrame``: scikit-learn's ``HistGradientBoostingClassifier`` with the
  package default's settings (balanced class weights) fitted on the loaded DataFrame,
  categories handled by scikit-learn (``categorical_features="from_dtype"``): what a user
  of plain scikit-learn would run;
- ``sklearn HGB, float64 array``: the same on the table already encoded as one float64
  array (the cheapest input scikit-learn's boosting takes: no conversion inside the fit);
- ``autometa refit``: ``autometa.spaces.build_pipeline`` of the package default (the
  configuration ``autometa tune`` refits most often on this table), fitted on all rows, as
  the command's final refit does; with ``--before SRC``, also with the package of an
  earlier source tree (``autometa refit, before``).

The gap between the first row and the others is the fit's own working memory; it bounds
from below what any tuner that refits scikit-learn's boosting on all rows in memory needs.

    python experiments/memory_floor.py --data /tmp/autometa-large [--before /path/to/old/tree]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine_line, results_path

HERE = Path(__file__).resolve().parent

_STEP = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from autometa import Task

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

step, path = sys.argv[1], sys.argv[2]
task = Task(path, label="late")
X, y = task.X, np.asarray(task.y)
data = (X.memory_usage(deep=True).sum() + task.y.memory_usage(deep=True)) / 2**20
if step == "sklearn HGB, float64 array":
    cats = [c for c in X.columns if str(X[c].dtype) == "category"]
    arr = np.empty(X.shape, dtype=np.float64)
    for j, c in enumerate(X.columns):
        col = X[c]
        if c in cats:  # category codes, a missing value as NaN (the code -1 would be a category)
            codes = col.cat.codes.to_numpy()
            arr[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            arr[:, j] = col.to_numpy(dtype=np.float64)
    mask = [c in cats for c in X.columns]
    X = arr
after_load = rss_mib()
t0 = time.perf_counter()
if step.startswith("sklearn HGB"):
    from sklearn.ensemble import HistGradientBoostingClassifier

    cat = "from_dtype" if step.endswith("DataFrame") else mask
    HistGradientBoostingClassifier(categorical_features=cat, class_weight="balanced", random_state=0).fit(X, y)
elif step == "autometa refit":
    from autometa.spaces import build_pipeline, default_initial_configs, get_space

    config = default_initial_configs(get_space(str(task.problem_type)), task)[0]
    build_pipeline(config, X, str(task.problem_type)).fit(X, y)
fit_s = time.perf_counter() - t0
print(json.dumps({"step": step, "data_mib": data, "after_load_mib": after_load, "fit_s": fit_s,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

STEPS = ("load", "sklearn HGB, DataFrame", "sklearn HGB, float64 array", "autometa refit")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "autometa-large")
    ap.add_argument("--name", default="memory_floor")
    ap.add_argument("--before", type=Path, help="a source tree of the code before (its autometa package first)")
    args = ap.parse_args(argv)
    stress = args.data / "flights_stress.csv"
    if not stress.is_file():
        sys.exit(f"{stress} is missing: write it with python experiments/large_tasks.py --out {args.data} "
                 "--tasks none --stress")
    rows = []
    runs = [(step, None) for step in STEPS] + ([("autometa refit", args.before)] if args.before else [])
    for step, tree in runs:
        env = dict(os.environ)
        if tree is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(tree.resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        out = subprocess.run([sys.executable, "-c", _STEP, step, str(stress)], capture_output=True, text=True,
                             check=True, cwd=HERE, env=env)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        if tree is not None:
            row["step"] += ", before"
        rows.append(row)
        print(rows[-1], flush=True)
    results_path(args.name, ".json").write_text(json.dumps(rows, indent=1) + "\n")
    data = rows[0]["data_mib"]
    lines = [f"# {args.name}", "", __doc__.split("\n\n")[0], "", machine_line(), "",
             f"Stress table: 1,000,000 rows x 50 columns, {data:.0f} MiB in memory as a Task. One fresh process "
             "per row.", "",
             "| step | fit s | resident after load MiB | peak MiB | peak / data | peak - after load MiB | "
             "(peak - after load) / data |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        extra = r["peak_mib"] - r["after_load_mib"]
        lines.append(f"| {r['step']} | {r['fit_s']:.1f} | {r['after_load_mib']:.0f} | {r['peak_mib']:.0f} | "
                     f"{r['peak_mib'] / data:.1f}x | {extra:.0f} | {extra / data:.1f}x |")
    load = rows[0]["peak_mib"]
    lines += ["", "## Findings (computed from the rows above)", "",
              f"- Loading alone peaks at {load:.0f} MiB ({load / data:.1f}x the table): the interpreter, the "
              "libraries and the table, before any fit."]
    for r in rows[1:]:
        lines.append(f"- {r['step']}: peak {r['peak_mib']:.0f} MiB = {r['peak_mib'] / data:.1f}x the table, "
                     f"{(r['peak_mib'] - load):.0f} MiB above loading alone.")
    results_path(args.name, ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
