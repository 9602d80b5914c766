"""Meta-training throughput (tasks/s) of the vectorized paths against the per-task loop, for
every algorithm, on CPU with one thread.

Workloads:

* sinusoid regression, the 1-40-40-1 ReLU network, K=10 support + 10 query points,
  meta-batches of 25 (Finn et al. 2017) and 100 tasks: vmap (torch.func) against the loop;
* MAML on sinusoids at meta-batches of 1, 5, 25 and 100: CPU seconds per meta-iteration
  fitted as ``a + b * tasks`` for each path, which separates the fixed cost of a
  meta-iteration (``a``: sampling, the outer Adam step, dispatch) from the cost per task
  (``b``) and says what caps the speed-up at a given meta-batch;
* glyph 5-way 1-shot classification (5 queries per class), the 4-block conv net with 32
  channels on 28x28 images, meta-batches of 8 tasks: the folded path (the meta-batch in the
  channels: grouped convolutions, native batch norm and pooling; the default of MAML,
  FOMAML, Reptile, ANIL, Meta-SGD and ProtoNet on this net), plain vmap (``fold=False``) and
  the loop, for every algorithm that runs on images.

Inner loops: 1 SGD step (MAML, FOMAML, Meta-SGD), 5 steps (Reptile, ANIL, iMAML with 5 CG
steps); ProtoNet, Matching, Relation and SNAIL have none. Each cell is the median of
``--repeats`` timed blocks after a warm-up block, task sampling and the outer Adam step
included. Time is the process's CPU time (the machine is shared with other jobs, which
inflates wall-clock time but not CPU time); wall-clock rates are in the CSV as well.

    nice -n 10 PYTHONPATH=. python experiments/bench_metalearn_throughput.py [--quick]

Writes experiments/results/bench_metalearn_throughput.csv, .md and .png.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from autometa.metalearn import (
    ANIL,
    FOMAML,
    IMAML,
    MAML,
    SNAIL,
    MatchingNet,
    MetaSGD,
    ProtoNet,
    RelationNet,
    Reptile,
    SinusoidTasks,
    cross_entropy_loss,
    make_convnet,
    make_mlp,
)

RESULTS = Path(__file__).parent / "results"
INNER_STEPS = {MAML: 1, FOMAML: 1, MetaSGD: 1, Reptile: 5, ANIL: 5, IMAML: 5}
FOLDS = (MAML, FOMAML, Reptile, ANIL, MetaSGD, ProtoNet)


def make_learner(algorithm: type, workload: str, path: str):
    vectorize, fold = path != "loop", (None if path == "fold" else False)
    if workload == "sinusoid":
        return algorithm(make_mlp(seed=0), inner_steps=INNER_STEPS[algorithm], inner_lr=0.01, vectorize=vectorize)
    if algorithm is ProtoNet:
        return ProtoNet(make_convnet(None, channels=(32,) * 4, seed=0), vectorize=vectorize, fold=fold)
    embedding = make_convnet(None, channels=(32,) * 4, seed=0)
    if algorithm is MatchingNet:
        return MatchingNet(embedding, vectorize=vectorize)
    if algorithm is RelationNet:
        return RelationNet(embedding, embedding_dim=32, vectorize=vectorize)
    if algorithm is SNAIL:
        return SNAIL(embedding, embedding_dim=32, support_size=5, ways=5, vectorize=vectorize)
    if algorithm is IMAML:
        return IMAML(make_convnet(5, channels=(32,) * 4, seed=0), inner_steps=5, inner_lr=0.4, cg_steps=5,
                     loss_fn=cross_entropy_loss, vectorize=vectorize)  # fmt: skip
    return algorithm(make_convnet(5, channels=(32,) * 4, seed=0), inner_steps=INNER_STEPS[algorithm], inner_lr=0.4,
                     loss_fn=cross_entropy_loss, vectorize=vectorize, fold=fold)  # fmt: skip


def measure(learner, tasks, *, meta_batch: int, min_cpu_seconds: float, repeats: int) -> tuple[float, float, int]:
    """(median CPU tasks/s, median wall tasks/s, iterations per block)."""
    optimizer = torch.optim.Adam(learner.meta_parameters().values(), lr=1e-3)
    start = time.process_time()
    learner.meta_train(tasks, iterations=2, meta_batch_size=meta_batch, optimizer=optimizer, seed=99)  # warm-up
    per_iteration = max((time.process_time() - start) / 2, 1e-4)
    iterations = max(2, int(min_cpu_seconds / per_iteration))
    cpu_rates, wall_rates = [], []
    for r in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        learner.meta_train(tasks, iterations=iterations, meta_batch_size=meta_batch, optimizer=optimizer, seed=r)
        cpu_rates.append(iterations * meta_batch / (time.process_time() - c0))
        wall_rates.append(iterations * meta_batch / (time.perf_counter() - w0))
    return statistics.median(cpu_rates), statistics.median(wall_rates), iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--block-seconds", type=float, default=1.5, help="CPU seconds per timed block")
    parser.add_argument("--quick", action="store_true", help="a smoke run (results not written)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 1 if args.quick else args.repeats
    block = 0.2 if args.quick else args.block_seconds
    from autometa.metalearn import GlyphTasks

    sinusoid = SinusoidTasks(k_support=10)
    glyphs = GlyphTasks(ways=5, shots=1, queries=5)
    regression = [MAML, FOMAML, Reptile, ANIL, MetaSGD]
    images = [MAML, FOMAML, Reptile, ANIL, MetaSGD, ProtoNet, IMAML, MatchingNet, RelationNet, SNAIL]
    cells = [("sinusoid", sinusoid, mb, a, path) for mb in (25, 100) for a in regression for path in ("vmap", "loop")]
    cells += [("sinusoid sweep", sinusoid, mb, MAML, path) for mb in (1, 5) for path in ("vmap", "loop")]
    cells += [("glyphs 5-way 1-shot", glyphs, 8, a, path) for a in images
              for path in (("fold", "vmap", "loop") if a in FOLDS else ("vmap", "loop"))]  # fmt: skip
    rows = []
    load_start = os.getloadavg()[0]
    t_start = time.perf_counter()
    for workload, tasks, meta_batch, algorithm, path in cells:
        learner = make_learner(algorithm, workload.split()[0], path)
        assert getattr(learner, "folds", False) == (path == "fold"), (algorithm, path)
        cpu, wall, iterations = measure(learner, tasks, meta_batch=meta_batch, min_cpu_seconds=block, repeats=repeats)
        rows.append({"workload": workload, "meta_batch": meta_batch, "algorithm": algorithm.__name__, "path": path,
                     "tasks_per_cpu_s": cpu, "tasks_per_wall_s": wall, "iterations_per_block": iterations})  # fmt: skip
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    total = time.perf_counter() - t_start
    load_end = os.getloadavg()[0]
    if args.quick:
        print(frame.to_string(index=False))
        return
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / "bench_metalearn_throughput.csv", index=False)
    main_rows = frame[frame["workload"] != "sinusoid sweep"]
    table = main_rows.pivot_table(index=["workload", "meta_batch", "algorithm"], columns="path",
                                  values="tasks_per_cpu_s", sort=False).reset_index()  # fmt: skip
    if "fold" not in table:
        table["fold"] = np.nan
    table["vmap_speedup"] = table["vmap"] / table["loop"]
    table["fold_speedup"] = table["fold"] / table["loop"]
    lines = [
        "# Meta-training throughput: folded and vmap (torch.func) paths vs the per-task loop",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average "
        f"{load_start:.1f} at the start, {load_end:.1f} at the end), torch {version('torch')} with 1 thread. "
        f"Tasks per second of process CPU time (median of {repeats} blocks of about {block:.1f} CPU s after a "
        f"warm-up; sampling and the outer Adam step included). Total run time {total / 60:.1f} min. "
        "Goal: vmap >= 8x the loop at MAML's meta-batch of 25; on the conv net, at least the loop's rate.",
        "",
        "Inner loops: 1 SGD step for MAML, FOMAML and Meta-SGD, 5 for Reptile, ANIL and iMAML (+5 CG steps); "
        "ProtoNet, Matching, Relation and SNAIL have none. Sinusoid: 1-40-40-1 ReLU MLP, K=10 support + 10 query "
        "points. Glyphs: 4 conv blocks of 32 channels on 28x28, 5-way 1-shot, 5 queries per class; *fold* is the "
        "meta-batch folded into the channels (the default on this net for the algorithms that have it), *vmap* "
        "is torch.func.vmap over the tasks (fold=False).",
        "",
        "| workload | meta-batch | algorithm | fold tasks/s | vmap tasks/s | loop tasks/s | fold / loop | vmap / loop |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for _, r in table.iterrows():
        fold = "-" if np.isnan(r["fold"]) else f"{r['fold']:.0f}"
        fold_x = "-" if np.isnan(r["fold_speedup"]) else f"{r['fold_speedup']:.2f}x"
        lines.append(f"| {r['workload']} | {r['meta_batch']} | {r['algorithm']} | {fold} | {r['vmap']:.0f} | "
                     f"{r['loop']:.0f} | {fold_x} | {r['vmap_speedup']:.2f}x |")  # fmt: skip
    # MAML on sinusoids: seconds per meta-iteration = a + b * tasks, per path
    sweep = frame[(frame["algorithm"] == "MAML") & frame["workload"].str.startswith("sinusoid")]
    fits = {}
    for path in ("vmap", "loop"):
        part = sweep[sweep["path"] == path].sort_values("meta_batch")
        tasks = part["meta_batch"].to_numpy(float)
        seconds = tasks / part["tasks_per_cpu_s"].to_numpy(float)
        b, a = np.polyfit(tasks, seconds, 1)
        fits[path] = (a, b)
    (av, bv), (al, bl) = fits["vmap"], fits["loop"]
    lines += [
        "",
        "## What caps MAML's speed-up on the sinusoid network",
        "",
        "CPU milliseconds per meta-iteration against the meta-batch (MAML, 1 inner step), and a least-squares fit "
        "of `a + b * tasks` per path:",
        "",
        "| meta-batch | vmap ms/iteration | loop ms/iteration | vmap / loop |",
        "|---:|---:|---:|---:|",
    ]
    for mb in sorted(sweep["meta_batch"].unique()):
        v = sweep[(sweep["meta_batch"] == mb) & (sweep["path"] == "vmap")]["tasks_per_cpu_s"].iloc[0]
        lo = sweep[(sweep["meta_batch"] == mb) & (sweep["path"] == "loop")]["tasks_per_cpu_s"].iloc[0]
        lines.append(f"| {mb} | {1000 * mb / v:.2f} | {1000 * mb / lo:.2f} | {v / lo:.1f}x |")
    at25 = (al + 25 * bl) / (av + 25 * bv)
    lines += [
        "",
        f"Fit: vmap {1000 * av:.2f} ms + {1000 * bv:.3f} ms per task; loop {1000 * al:.2f} ms + {1000 * bl:.3f} ms "
        f"per task. At 25 tasks the fit gives {at25:.1f}x; the per-task costs alone give {bl / bv:.1f}x (the "
        f"limit for large meta-batches). The fixed {1000 * av:.2f} ms of a vmap meta-iteration (sampling the "
        "batch, building the functional transforms and dispatching them, the outer Adam step) is "
        f"{100 * av / (av + 25 * bv):.0f}% of its time at 25 tasks: that fixed cost, not the per-task work, is what "
        "keeps the speed-up at 25 tasks where it is.",
    ]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 4))
        labels = [f"{r['algorithm']}\n{r['workload'].split()[0]} mb{r['meta_batch']}" for _, r in table.iterrows()]
        x = np.arange(len(table))
        ax.bar(x - 0.2, table["vmap_speedup"], width=0.4, color="tab:blue", label="vmap / loop")
        ax.bar(x + 0.2, table["fold_speedup"].fillna(0), width=0.4, color="tab:green", label="fold / loop")
        ax.axhline(8, color="tab:red", linestyle="--", label="goal 8x")
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(x, labels, fontsize=6, rotation=90)
        ax.set_ylabel("tasks per CPU second, relative to the loop")
        ax.set_title("Meta-training throughput (CPU, 1 thread)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(RESULTS / "bench_metalearn_throughput.png", dpi=100)
        lines += ["", "![speed-up](bench_metalearn_throughput.png)"]
    except ImportError:
        pass
    (RESULTS / "bench_metalearn_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
