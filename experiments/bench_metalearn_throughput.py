"""Meta-training throughput (tasks/s) of the vmap path against the per-task loop, for every
algorithm, on CPU with one thread.

Two workloads:

* sinusoid regression, the 1-40-40-1 ReLU network, K=10 support + 10 query points,
  meta-batches of 25 (Finn et al. 2017) and 100 tasks;
* glyph 5-way 1-shot classification (5 queries per class), the 4-block conv net with 32
  channels on 28x28 images, meta-batches of 8 tasks.

Inner loops: 1 SGD step (MAML, FOMAML, Meta-SGD), 5 steps (Reptile, ANIL); ProtoNet has
none. Each cell is the median of ``--repeats`` timed blocks after a warm-up block, task
sampling and the outer Adam step included. Time is the process's CPU time (the machine
is shared with another job, which inflates wall-clock time but not CPU time); wall-clock
rates are written to the CSV as well.

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

import pandas as pd
import torch

from autometa.metalearn import (
    ANIL,
    FOMAML,
    MAML,
    MetaSGD,
    ProtoNet,
    Reptile,
    SinusoidTasks,
    cross_entropy_loss,
    make_convnet,
    make_mlp,
)

RESULTS = Path(__file__).parent / "results"
INNER_STEPS = {MAML: 1, FOMAML: 1, MetaSGD: 1, Reptile: 5, ANIL: 5}


def make_learner(algorithm: type, workload: str, vectorize: bool):
    if workload == "sinusoid":
        return algorithm(make_mlp(seed=0), inner_steps=INNER_STEPS[algorithm], inner_lr=0.01, vectorize=vectorize)
    if algorithm is ProtoNet:
        return ProtoNet(make_convnet(None, channels=(32,) * 4, seed=0), vectorize=vectorize)
    return algorithm(make_convnet(5, channels=(32,) * 4, seed=0), inner_steps=INNER_STEPS[algorithm], inner_lr=0.4,
                     loss_fn=cross_entropy_loss, vectorize=vectorize)  # fmt: skip


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
    parser.add_argument("--block-seconds", type=float, default=2.0, help="CPU seconds per timed block")
    parser.add_argument("--quick", action="store_true", help="a smoke run (results not written)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 1 if args.quick else args.repeats
    block = 0.2 if args.quick else args.block_seconds
    from autometa.metalearn import GlyphTasks

    workloads = [
        ("sinusoid", SinusoidTasks(k_support=10), 25, [MAML, FOMAML, Reptile, ANIL, MetaSGD]),
        ("sinusoid", SinusoidTasks(k_support=10), 100, [MAML, FOMAML, Reptile, ANIL, MetaSGD]),
        ("glyphs 5-way 1-shot", GlyphTasks(ways=5, shots=1, queries=5), 8, [MAML, FOMAML, Reptile, ANIL, MetaSGD, ProtoNet]),
    ]
    rows = []
    load_start = os.getloadavg()[0]
    t_start = time.perf_counter()
    for workload, tasks, meta_batch, algorithms in workloads:
        for algorithm in algorithms:
            for vectorize in (True, False):
                learner = make_learner(algorithm, workload.split()[0], vectorize)
                cpu, wall, iterations = measure(learner, tasks, meta_batch=meta_batch, min_cpu_seconds=block,
                                                repeats=repeats)  # fmt: skip
                rows.append({"workload": workload, "meta_batch": meta_batch, "algorithm": algorithm.__name__,
                             "path": "vmap" if vectorize else "loop", "tasks_per_cpu_s": cpu, "tasks_per_wall_s": wall,
                             "iterations_per_block": iterations})  # fmt: skip
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    total = time.perf_counter() - t_start
    load_end = os.getloadavg()[0]
    if args.quick:
        print(frame.to_string(index=False))
        return
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / "bench_metalearn_throughput.csv", index=False)
    table = frame.pivot_table(index=["workload", "meta_batch", "algorithm"], columns="path", values="tasks_per_cpu_s",
                              sort=False).reset_index()  # fmt: skip
    table["speedup"] = table["vmap"] / table["loop"]
    lines = [
        "# Meta-training throughput: vmap (torch.func) vs the per-task loop",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with another job (load average "
        f"{load_start:.1f} at the start, {load_end:.1f} at the end), torch {version('torch')} with 1 thread. "
        f"Tasks per second of process CPU time (median of {repeats} blocks of about {block:.0f} CPU s after a warm-up; "
        "sampling and the outer Adam step included). Total run time "
        f"{total / 60:.1f} min. Goal: vmap >= 8x the loop.",
        "",
        "Inner loops: 1 SGD step for MAML, FOMAML and Meta-SGD, 5 for Reptile and ANIL; ProtoNet has none. "
        "Sinusoid: 1-40-40-1 ReLU MLP, K=10 support + 10 query points. Glyphs: 4 conv blocks of 32 channels on "
        "28x28, 5-way 1-shot, 5 queries per class.",
        "",
        "| workload | meta-batch | algorithm | vmap tasks/s | loop tasks/s | speed-up |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for _, r in table.iterrows():
        lines.append(f"| {r['workload']} | {r['meta_batch']} | {r['algorithm']} | {r['vmap']:.0f} | {r['loop']:.0f} | "
                     f"{r['speedup']:.1f}x |")  # fmt: skip
    lines += [
        "",
        "Reading: the vmap path removes the Python and dispatch overhead of one autograd graph per task, which is",
        "what dominates a small network: 4-6x the loop at the paper's meta-batch of 25 (below the 8x goal) and",
        "11-21x at 100 tasks per meta-batch. On the conv net each task's convolutions already cost milliseconds, so",
        "there is little overhead to remove, and under vmap batch norm and max-pooling run through batching rules",
        "(a profile of ProtoNet shows native_batch_norm_backward at 2.8x and extra mul/copy kernels) that are slower",
        "than the native kernels the loop uses: 0.6-1.2x the loop on CPU. The goal of >= 8x is met only for the",
        "small network with large meta-batches.",
    ]  # written after the 2026-11-22 run; re-check the ranges against the table above when re-running
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.8))
        labels = [f"{r['algorithm']}\n{r['workload'].split()[0]} mb{r['meta_batch']}" for _, r in table.iterrows()]
        ax.bar(range(len(table)), table["speedup"], color="tab:blue")
        ax.axhline(8, color="tab:red", linestyle="--", label="goal 8x")
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(table)), labels, fontsize=7, rotation=90)
        ax.set_ylabel("vmap / loop tasks per CPU second")
        ax.set_title("Meta-training throughput, vmap vs per-task loop (CPU, 1 thread)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(RESULTS / "bench_metalearn_throughput.png", dpi=100)
        lines += ["", "![speed-up](bench_metalearn_throughput.png)"]
    except ImportError:
        pass
    (RESULTS / "bench_metalearn_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
