"""Every meta-learner at an equal CPU budget, several seeds, with intervals over seeds.

Two parts:

* ``--part sinusoid``: K=10 sinusoid regression (Finn et al. 2017 tasks), the 1-40-40-1
  network (gradient-based learners), a 1-40-40 feature net under SNAIL's sequence model,
  and ALPaCA (Bayesian linear head on 1-40-40-32 features) with its test NLL and 90%
  interval coverage. Meta-batch 25, Adam 1e-3, inner step size 0.01.
* ``--part glyphs``: offline glyph benchmark at 5-way 1-shot, 5-way 5-shot and 20-way
  1-shot (``--settings`` picks), the 4-block conv net of ``--width`` channels as the
  network or the embedding; meta-batch 4 with 5 query images per class, Adam 3e-3,
  inner step size 0.4 (as in bench_metalearn_glyphs.py).

Each (setting, algorithm, seed) run meta-trains for ``--cpu-seconds`` of process CPU
time on one thread through the learner's own ``meta_train`` and is scored on fixed
seeded meta-test tasks (the same tasks for every seed and algorithm). The seed sets the
initialization and the meta-batches. Tables give the mean over seeds and the half-width
of a 95% t interval over seeds (t = 4.30 for 3 seeds); the CSV holds every run.

    nice -n 10 PYTHONPATH=. python experiments/bench_metalearn_seeds.py --part sinusoid
    nice -n 10 PYTHONPATH=. python experiments/bench_metalearn_seeds.py --part glyphs --settings 5w1s

Writes experiments/results/bench_metalearn_seeds_<part>.csv, .md and .png; rows of earlier
runs are kept unless this run redoes their (setting, algorithm) pair.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import torch

from autometa.metalearn import (
    ANIL,
    FOMAML,
    IMAML,
    MAML,
    SNAIL,
    ALPaCA,
    GlyphTasks,
    MatchingNet,
    MetaSGD,
    ProtoNet,
    RelationNet,
    Reptile,
    SinusoidTasks,
    accuracy,
    cross_entropy_loss,
    make_convnet,
    make_mlp,
)

RESULTS = Path(__file__).parent / "results"
T95 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}
GLYPH_SETTINGS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1)}

# name -> (inner steps at training and test time, builder(seed, ways, shots, width))
Builder = Callable[[int, int, int, int], object]


def glyph_algorithms() -> dict[str, tuple[int, Builder]]:
    lr = 0.4

    def net(ways: int, width: int, seed: int) -> torch.nn.Module:
        return make_convnet(ways, channels=(width,) * 4, seed=seed)

    def emb(width: int, seed: int) -> torch.nn.Module:
        return make_convnet(None, channels=(width,) * 4, seed=seed)

    return {
        "MAML": (1, lambda s, w, k, c: MAML(net(w, c, s), inner_steps=1, inner_lr=lr, loss_fn=cross_entropy_loss)),
        "FOMAML": (3, lambda s, w, k, c: FOMAML(net(w, c, s), inner_steps=3, inner_lr=lr, loss_fn=cross_entropy_loss)),
        "Reptile": (5, lambda s, w, k, c: Reptile(net(w, c, s), inner_steps=5, inner_lr=lr, loss_fn=cross_entropy_loss)),
        "ANIL": (5, lambda s, w, k, c: ANIL(net(w, c, s), inner_steps=5, inner_lr=lr, loss_fn=cross_entropy_loss)),
        "Meta-SGD": (1, lambda s, w, k, c: MetaSGD(net(w, c, s), inner_steps=1, inner_lr=lr, loss_fn=cross_entropy_loss)),
        "iMAML": (5, lambda s, w, k, c: IMAML(net(w, c, s), inner_steps=5, inner_lr=lr, regularization=1.0, cg_steps=5,
                                              loss_fn=cross_entropy_loss)),  # fmt: skip
        "ProtoNet": (0, lambda s, w, k, c: ProtoNet(emb(c, s))),
        "Matching": (0, lambda s, w, k, c: MatchingNet(emb(c, s), seed=s)),
        "Matching-FCE": (0, lambda s, w, k, c: MatchingNet(emb(c, s), embedding_dim=c, full_context=True, seed=s)),
        "Relation": (0, lambda s, w, k, c: RelationNet(emb(c, s), embedding_dim=c, seed=s)),
        "SNAIL": (0, lambda s, w, k, c: SNAIL(emb(c, s), embedding_dim=c, support_size=w * k, ways=w, seed=s)),
    }


def sinusoid_algorithms() -> dict[str, tuple[int, Callable[[int], object]]]:
    lr = 0.01
    return {
        "MAML": (1, lambda s: MAML(make_mlp(seed=s), inner_steps=1, inner_lr=lr)),
        "FOMAML": (1, lambda s: FOMAML(make_mlp(seed=s), inner_steps=1, inner_lr=lr)),
        "Reptile": (5, lambda s: Reptile(make_mlp(seed=s), inner_steps=5, inner_lr=lr)),
        "ANIL": (5, lambda s: ANIL(make_mlp(seed=s), inner_steps=5, inner_lr=lr)),
        "Meta-SGD": (1, lambda s: MetaSGD(make_mlp(seed=s), inner_steps=1, inner_lr=lr)),
        # lambda = 10: at 1, (I + H / lambda) is far from positive definite on this network and
        # 5 CG steps give no useful meta-gradient (test MSE 4.09, worse than the mean curve);
        # 10 gave 1.98 and 100 gave 2.85 (seed 0, same budget; the README has the probe).
        "iMAML": (5, lambda s: IMAML(make_mlp(seed=s), inner_steps=5, inner_lr=lr, regularization=10.0, cg_steps=5)),
        "SNAIL": (0, lambda s: SNAIL(make_mlp(1, (40,), 40, seed=s), embedding_dim=40, support_size=10, seed=s)),
        "ALPaCA": (0, lambda s: ALPaCA(make_mlp(1, (40, 40), 32, seed=s), feature_dim=32, seed=s)),
    }


def train(learner, tasks, cpu_seconds: float, *, meta_batch: int, outer_lr: float, seed: int,
          chunk: int = 5) -> tuple[list[float], int, float]:  # fmt: skip
    """Meta-train until ``cpu_seconds`` of process CPU time are spent; (losses, iterations, CPU s)."""
    optimizer = torch.optim.Adam(learner.meta_parameters().values(), lr=outer_lr)
    losses: list[float] = []
    start = time.process_time()
    block = 0
    while time.process_time() - start < cpu_seconds:
        history = learner.meta_train(tasks, iterations=chunk, meta_batch_size=meta_batch, optimizer=optimizer,
                                     seed=seed * 100_003 + block)  # fmt: skip
        losses.extend(history.query_losses)
        block += 1
    return losses, len(losses), time.process_time() - start


def interval(values: pd.Series) -> tuple[float, float]:
    n = len(values)
    if n < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), T95.get(n, 1.96) * float(values.std(ddof=1)) / math.sqrt(n)


def run_sinusoid(args: argparse.Namespace, flush: Callable[[list[dict], dict], None]) -> tuple[list[dict], dict]:
    rows, curves = [], {}
    tasks = SinusoidTasks(k_support=10)
    test = SinusoidTasks(k_support=10, k_query=100).sample(args.test_tasks, torch.Generator().manual_seed(2017))
    algorithms = sinusoid_algorithms()
    chosen = [a for a in args.algorithms.split(",") if a] if args.algorithms else list(algorithms)
    for seed in args.seeds:
        for name in chosen:
            steps, build = algorithms[name]
            learner = build(seed)
            losses, iterations, cpu = train(learner, tasks, args.cpu_seconds, meta_batch=25, outer_lr=1e-3, seed=seed)
            t0 = time.process_time()
            row = {"setting": "sinusoid K=10", "algorithm": name, "seed": seed, "inner_steps": steps,
                   "meta_iterations": iterations, "train_cpu_s": round(cpu, 1), "test_tasks": len(test)}  # fmt: skip
            if steps:
                scores = learner.evaluate(test, steps=(steps, 10))
                row |= {"mse": float(scores[steps].mean()), "mse_10_steps": float(scores[10].mean())}
            else:
                row["mse"] = float(learner.evaluate(test)[0].mean())
            if isinstance(learner, ALPaCA):
                cal = learner.calibration(test, level=0.9)
                row |= {"nll": float(cal["nll"].mean()), "coverage90": float(cal["coverage"].mean())}
            row["test_cpu_s"] = round(time.process_time() - t0, 1)
            rows.append(row)
            curves[("sinusoid K=10", name, seed)] = losses
            print(row, flush=True)
        flush(rows, curves)
    return rows, curves


def glyph_test(learner, ways: int, shots: int, n_tasks: int) -> torch.Tensor:
    tasks = GlyphTasks(ways=ways, shots=shots, queries=15, split="test")
    generator = torch.Generator().manual_seed(2024)
    scores = []
    per_batch = max(1, 2000 // (ways * (shots + 15)))
    for done in range(0, n_tasks, per_batch):
        per_task = learner.evaluate(tasks.sample(min(per_batch, n_tasks - done), generator), metric=accuracy)
        scores.append(per_task[max(per_task)])
    return torch.cat(scores)


def run_glyphs(args: argparse.Namespace, flush: Callable[[list[dict], dict], None]) -> tuple[list[dict], dict]:
    rows, curves = [], {}
    algorithms = glyph_algorithms()
    chosen = [a for a in args.algorithms.split(",") if a] if args.algorithms else list(algorithms)
    for key in args.settings.split(","):
        ways, shots = GLYPH_SETTINGS[key]
        setting = f"{ways}-way {shots}-shot"
        tasks = GlyphTasks(ways=ways, shots=shots, queries=5)
        n_test = args.test_tasks if ways == 5 else max(1, args.test_tasks * 3 // 10)
        for seed in args.seeds:
            for name in chosen:
                steps, build = algorithms[name]
                learner = build(seed, ways, shots, args.width)
                losses, iterations, cpu = train(learner, tasks, args.cpu_seconds, meta_batch=4, outer_lr=3e-3,
                                                seed=seed)  # fmt: skip
                t0 = time.process_time()
                acc = glyph_test(learner, ways, shots, n_test).double()
                rows.append({"setting": setting, "algorithm": name, "seed": seed, "inner_steps": steps,
                             "meta_iterations": iterations, "train_cpu_s": round(cpu, 1),
                             "test_cpu_s": round(time.process_time() - t0, 1), "test_tasks": acc.numel(),
                             "accuracy": float(acc.mean()), "chance": 1 / ways})  # fmt: skip
                curves[(setting, name, seed)] = losses
                print(rows[-1], flush=True)
            flush(rows, curves)  # the tables so far, after every seed
    return rows, curves


def write(args: argparse.Namespace, rows: list[dict], curves: dict, header: dict) -> None:
    stem = f"bench_metalearn_seeds_{args.part}{args.suffix}"
    RESULTS.mkdir(exist_ok=True)
    frame = pd.DataFrame(rows)
    csv = RESULTS / f"{stem}.csv"
    if not rows:  # --replot: the tables and the plot from the CSV alone
        frame = pd.read_csv(csv)
    elif csv.is_file():  # keep the rows of the other (setting, algorithm) pairs from earlier runs
        old = pd.read_csv(csv)
        redone = set(zip(frame["setting"], frame["algorithm"], strict=True))
        keep = [(s, a) not in redone for s, a in zip(old["setting"], old["algorithm"], strict=True)]
        frame = pd.concat([old[keep], frame], ignore_index=True)
    frame.to_csv(csv, index=False)
    score = "mse" if args.part == "sinusoid" else "accuracy"
    lines = [f"# Meta-learners at equal CPU budget, {frame['seed'].nunique()} seeds: "
             f"{'sinusoid regression' if args.part == 'sinusoid' else 'few-shot glyphs'}", ""]
    if args.part == "sinusoid":
        lines += [f"K=10 sinusoid tasks (amplitude U[0.1, 5], phase U[0, pi], x U[-5, 5]). Every run: "
                  f"**{args.cpu_seconds:.0f} s of process CPU time** (one thread) of meta-training, meta-batch 25, "
                  "Adam 1e-3, inner step size 0.01. Test: the same 1000 seeded tasks for every run, MSE on 100 query "
                  "points per task after the learner's own inner steps (and after 10 steps for the gradient-based "
                  "ones); predicting the mean curve scores 3.0, predicting 0 scores 4.4. ALPaCA's predictive "
                  "distribution: mean negative log-likelihood of the query targets and the fraction inside the "
                  "central 90% interval (0.90 when calibrated).", ""]
    else:
        lines += [f"Offline glyph benchmark (198 meta-test classes from alphabets unseen in training). Network: 4 "
                  f"conv blocks of {args.width} channels (+ a linear head, or the embedding of the metric and black-box "
                  f"learners). Every run: **{args.cpu_seconds:.0f} s of process CPU time** (one thread) of "
                  "meta-training, meta-batch 4, 5 query images per class, Adam 3e-3, inner step size 0.4. Test: the "
                  f"same seeded meta-test episodes for every run ({args.test_tasks} at 5-way, "
                  f"{max(1, args.test_tasks * 3 // 10)} at 20-way), 15 queries per class.", ""]
    machine = (f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average "
               f"{header['load_start']:.1f} at the start, {header['load_end']:.1f} at the end), torch "
               f"{version('torch')}. The last run of this script (it may have redone only some rows): "
               f"{header['wall'] / 60:.1f} min wall, {header['cpu'] / 60:.1f} min CPU. "
               "Short budgets: the tables rank the learners at equal small CPU cost, not at convergence. "
               "± is the half-width of a 95% t interval over seeds (seed: initialization and meta-batches).")
    md = RESULTS / f"{stem}.md"
    if not rows and md.is_file():  # --replot keeps the machine line of the run that made the numbers
        machine = next((line for line in md.read_text().splitlines() if line.startswith("Machine:")), machine)
    lines += [machine, ""]
    for setting, group in frame.groupby("setting", sort=False):
        lines += [f"## {setting}", ""]
        extra = args.part == "sinusoid"
        head = "| rank | algorithm | inner steps | meta-iterations (mean) | test " + score + " | ± 95% (seeds) | per seed |"
        if extra:
            head += " MSE after 10 steps | NLL | 90% coverage |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        summary = []
        for name, runs in group.groupby("algorithm", sort=False):
            mean, half = interval(runs[score])
            summary.append((name, runs, mean, half))
        summary.sort(key=lambda t: t[2], reverse=score == "accuracy")
        for rank, (name, runs, mean, half) in enumerate(summary, 1):
            seeds = ", ".join(f"{v:.3f}" for v in runs[score])
            line = (f"| {rank} | {name} | {int(runs['inner_steps'].iloc[0])} | {runs['meta_iterations'].mean():.0f} | "
                    f"{mean:.3f} | {half:.3f} | {seeds} |")  # fmt: skip
            if extra:
                cells = []
                for col in ("mse_10_steps", "nll", "coverage90"):
                    if col in runs and runs[col].notna().all():
                        m, h = interval(runs[col])
                        cells.append(f"{m:.3f} ± {h:.3f}")
                    else:
                        cells.append("-")
                line += " " + " | ".join(cells) + " |"
            lines.append(line)
        if not extra:
            lines += ["", f"Chance: {group['chance'].iloc[0]:.2f}."]
        lines.append("")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        settings = list(frame["setting"].unique())
        fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4), squeeze=False)
        for ax, setting in zip(axes[0], settings, strict=True):
            group = frame[frame["setting"] == setting]
            names = list(group["algorithm"].unique())
            stats = [interval(group[group["algorithm"] == n][score]) for n in names]
            ax.bar(range(len(names)), [m for m, _ in stats], yerr=[0 if math.isnan(h) else h for _, h in stats],
                   capsize=3, color="tab:blue")  # fmt: skip
            for i, n in enumerate(names):
                ax.scatter([i] * int((group["algorithm"] == n).sum()), group[group["algorithm"] == n][score],
                           color="black", s=8, zorder=3)  # fmt: skip
            ax.set_xticks(range(len(names)), names, rotation=60, fontsize=8)
            ax.set_ylabel(f"test {score}")
            ax.set_title(setting)
            if score == "accuracy":
                ax.axhline(group["chance"].iloc[0], color="grey", linestyle="--", linewidth=0.8)
            if score == "mse":
                ax.axhline(3.0, color="grey", linestyle="--", linewidth=0.8, label="mean curve")
                ax.set_yscale("log")
                ax.legend(fontsize=7)
        fig.suptitle(f"{args.cpu_seconds:.0f} CPU s per run\nbars: mean over seeds ± 95% t interval; dots: seeds",
                     fontsize=9)  # fmt: skip
        fig.tight_layout()
        fig.savefig(RESULTS / f"{stem}.png", dpi=100)
        lines += [f"![results]({stem}.png)"]
    except ImportError:
        pass
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("sinusoid", "glyphs"), required=True)
    parser.add_argument("--settings", default="5w1s", help="glyphs: comma-separated of 5w1s, 5w5s, 20w1s")
    parser.add_argument("--seeds", default="0,1,2", type=lambda s: [int(v) for v in s.split(",")])
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    parser.add_argument("--suffix", default="", help="appended to the output stem (e.g. _long for a longer budget)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--test-tasks", type=int, default=None, help="default 1000 (sinusoid) or 200 (5-way glyphs)")
    parser.add_argument("--algorithms", default="", help="comma-separated subset (default: all of the part)")
    parser.add_argument("--quick", action="store_true", help="a smoke run (results not written)")
    parser.add_argument("--replot", action="store_true", help="rewrite the .md and .png from the .csv, no runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.test_tasks is None:
        args.test_tasks = 1000 if args.part == "sinusoid" else 200
    if args.quick:
        args.cpu_seconds, args.seeds, args.test_tasks = 0.5, args.seeds[:1], 10
    load_start = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    if args.replot:
        write(args, [], {}, {"load_start": load_start, "load_end": load_start, "wall": 0.0, "cpu": 0.0})
        return

    def flush(rows: list[dict], curves: dict) -> None:
        if args.quick:
            return
        header = {"load_start": load_start, "load_end": os.getloadavg()[0], "wall": time.perf_counter() - wall,
                  "cpu": time.process_time() - cpu}  # fmt: skip
        write(args, rows, curves, header)

    rows, _ = run_sinusoid(args, flush) if args.part == "sinusoid" else run_glyphs(args, flush)
    if args.quick:
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
