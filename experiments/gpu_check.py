"""GPU readiness: every meta-learner and a short DARTS search on CUDA, with and without AMP,
against the CPU: throughput and accuracy parity.

Without a CUDA GPU it prints one line saying so and exits 0. With one:

1. Every algorithm of :data:`autometa.metalearn.ALGORITHMS` through the shipped trainer
   (:func:`autometa.metalearn.fit_meta`): glyphs 5-way 1-shot for the classifiers and the
   learners that do both, sinusoid K=10 for ALPaCA (regression only). Parity: the same
   seed and ``--parity-iterations`` meta-iterations on the CPU, on CUDA (float32) and on
   CUDA with bfloat16 autocast (``amp=True``), scored on the same seeded test tasks.
   Throughput: tasks per second of ``--iterations`` meta-iterations on CUDA (both
   precisions) against the CPU parity run.
2. DARTS (:class:`autometa.nas.DARTSSearch`, first order) on scikit-learn's digits,
   ``--darts-steps`` search steps on the CPU, on CUDA and on CUDA under bfloat16 autocast:
   seconds per step and the search's final validation accuracy.

Writes experiments/results/gpu_check.md and .csv. ``--dry-run`` runs the whole path with
the CPU standing in for the GPU and a few iterations, writing nothing (a check of this
script on a machine without a GPU).

    PYTHONPATH=. python experiments/gpu_check.py [--iterations 300] [--parity-iterations 60]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def run_learner(algo: str, device: str, amp: bool, iterations: int, test_tasks: int) -> dict:
    from autometa.metalearn import MetaLearnProgress, fit_meta

    tasks = "sinusoid" if algo == "alpaca" else "glyphs"
    seen: list[MetaLearnProgress] = []
    kwargs = {"queries": 5, "meta_batch": 4, "outer_lr": 3e-3} if tasks == "glyphs" else {"meta_batch": 25}
    result = fit_meta(algo, tasks, iterations=iterations, eval_every=iterations, test_tasks=test_tasks, device=device,
                      amp=amp, seed=0, callbacks=[seen.append], **kwargs)  # fmt: skip
    train_seconds = seen[-1].seconds
    score = result.test[max(result.test, key=lambda k: int(k.split("_")[1]))]["mean"]
    return {"algorithm": algo, "tasks": tasks, "device": device, "amp": amp, "iterations": iterations,
            "tasks_per_s": iterations * kwargs["meta_batch"] / train_seconds if train_seconds > 0 else float("nan"),
            "metric": result.metric, "test_score": score}  # fmt: skip


def run_darts(device: str, amp: bool, steps: int) -> dict:
    from autometa.nas import DARTSSearch, digits_data

    train, valid = digits_data().split(0.5, seed=0)
    search = DARTSSearch(channels=8, n_cells=3, n_nodes=3, arch_lr=3e-3, device=device, seed=0)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    start = time.perf_counter()
    with autocast:
        result = search.search(train, valid, steps=steps)
    seconds = time.perf_counter() - start
    return {"algorithm": "darts", "tasks": "digits", "device": device, "amp": amp, "iterations": steps,
            "tasks_per_s": steps / seconds, "metric": "valid accuracy",
            "test_score": result.history[-1].valid_accuracy if result.history else float("nan")}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300, help="meta-iterations per GPU throughput run")
    parser.add_argument("--parity-iterations", type=int, default=60, help="meta-iterations of the parity runs")
    parser.add_argument("--darts-steps", type=int, default=100)
    parser.add_argument("--test-tasks", type=int, default=200)
    parser.add_argument("--algorithms", default="", help="comma-separated subset of ALGORITHMS")
    parser.add_argument("--dry-run", action="store_true", help="the CPU stands in for the GPU; nothing is written")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch (torch.cuda.is_available() is False); nothing to check.")
        return 0
    from autometa.metalearn import ALGORITHMS

    gpu = "cpu" if args.dry_run else "cuda"
    if args.dry_run:
        args.iterations, args.parity_iterations, args.darts_steps, args.test_tasks = 3, 2, 2, 5
    torch.set_num_threads(1)
    algorithms = [a for a in args.algorithms.split(",") if a] or list(ALGORITHMS)
    rows = []
    for algo in algorithms:
        parity = [run_learner(algo, "cpu", False, args.parity_iterations, args.test_tasks)]
        for amp in (False, True):
            parity.append(run_learner(algo, gpu, amp and not args.dry_run, args.parity_iterations, args.test_tasks))
            long = run_learner(algo, gpu, amp and not args.dry_run, args.iterations, args.test_tasks)
            parity[-1]["tasks_per_s"] = long["tasks_per_s"]
            parity[-1]["long_run_score"] = long["test_score"]
            parity[-1]["amp"] = amp
        rows += parity
        print(*parity, sep="\n", flush=True)
    darts = [run_darts("cpu", False, args.darts_steps)]
    darts += [run_darts(gpu, amp and not args.dry_run, args.darts_steps) | {"amp": amp} for amp in (False, True)]
    rows += darts
    print(*darts, sep="\n", flush=True)
    if args.dry_run:
        print(f"gpu_check --dry-run: {len(rows)} runs completed on the CPU; nothing written.")
        return 0
    import pandas as pd

    frame = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / "gpu_check.csv", index=False)
    name = torch.cuda.get_device_name(0)
    lines = [
        "# GPU check: every meta-learner and DARTS on CUDA, with and without AMP", "",
        f"GPU: {name}; CPU: {platform.machine()} ({torch.get_num_threads()} torch thread); torch {version('torch')}. "
        f"Parity: {args.parity_iterations} meta-iterations (seed 0) on each device, the same {args.test_tasks} "
        f"test tasks; GPU throughput over {args.iterations} meta-iterations. DARTS: {args.darts_steps} search steps.",
        "", "| algorithm | tasks | CPU score | CUDA score | CUDA+AMP score | CUDA / CPU tasks/s | CUDA+AMP / CPU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for algo, group in frame.groupby("algorithm", sort=False):
        cpu = group[group["device"] == "cpu"].iloc[0]
        fp32 = group[(group["device"] == "cuda") & (~group["amp"])].iloc[0]
        amp = group[(group["device"] == "cuda") & (group["amp"])].iloc[0]
        lines.append(f"| {algo} | {cpu['tasks']} ({cpu['metric']}) | {cpu['test_score']:.3f} | {fp32['test_score']:.3f} | "
                     f"{amp['test_score']:.3f} | {fp32['tasks_per_s'] / cpu['tasks_per_s']:.1f}x | "
                     f"{amp['tasks_per_s'] / cpu['tasks_per_s']:.1f}x |")  # fmt: skip
    (RESULTS / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
