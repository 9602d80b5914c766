"""MetaNAS against fixed-cell Reptile and first-order MAML at equal parameter count, on the
offline glyph few-shot benchmark (or Omniglot from a local copy).

Episodes: 5-way 1-shot, ``--image-size`` pixels, meta-train split for training, 5 query
images per class while training; evaluation on ``--test-tasks`` episodes of the
meta-test split (disjoint alphabets), 15 queries per class, the same episodes for every
method (seeded).

* MetaNAS: a search network with the 7 few-shot operations, 3 cells (normal, reduction,
  reduction), 2 nodes, 8 channels, batch norm without running statistics; Reptile over
  weights (meta lr 1.0) and architecture (0.6), both annealed linearly to 0; 5 first-order
  DARTS steps per task (SGD 0.1 on the weights, Adam 0.01 on the architecture); temperature
  annealed 1.0 -> 0.05. Meta-test: 5 DARTS steps on the support set, discretize, prune,
  score the pruned network (and, for reference, the unpruned adapted search network).
* Baselines: a fixed cell (every edge a 3x3 separable convolution) in the same 3-cell
  network, its width chosen so its parameter count is closest to the pruned MetaNAS
  network's (the meta-architecture's); meta-trained with autometa.metalearn's Reptile (5
  SGD steps of 0.1, outer SGD 1.0 annealed to 0) and first-order MAML (5 steps of 0.1,
  Adam 1e-3), the same number of meta-iterations and tasks as MetaNAS; meta-test: 5 SGD
  steps of 0.1 on the support set.

MetaNAS is scored pruned (the issue's protocol), pruned and fine-tuned for 5 more SGD steps
on the support set, and unpruned (the adapted search network, ~5x the parameters). For
reference, the networks without meta-training (random initialisation, then the same
adaptation) are scored too.

Accuracy: mean over test episodes with a 95% normal-approximation interval. torch uses
1 thread. Writes experiments/results/nas_metanas.json, .md and .png.

    PYTHONPATH=. nice -n 10 python experiments/bench_nas_metanas.py [--iterations 60] [--test-tasks 100]
        [--omniglot-root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from autometa.metalearn import FOMAML, GlyphTasks, OmniglotTasks, Reptile, adapt
from autometa.nas import (
    FEWSHOT_OPS,
    BNSettings,
    Genotype,
    GenotypeNetwork,
    MetaNAS,
    SearchNetwork,
    count_parameters,
    few_shot_accuracy,
    mean_ci,
)

RESULTS = Path(__file__).parent / "results"
WAYS, SHOTS = 5, 1
N_CELLS, N_NODES, CHANNELS = 3, 2, 8
BN = BNSettings(affine=False, track_running_stats=False)
TASK_STEPS, TASK_LR = 5, 0.1


def episodes(args: argparse.Namespace, split: str, queries: int):
    if args.omniglot_root:
        return OmniglotTasks(ways=WAYS, shots=SHOTS, queries=queries, split=split, root=args.omniglot_root,
                             image_size=args.image_size)
    return GlyphTasks(ways=WAYS, shots=SHOTS, queries=queries, split=split, image_size=args.image_size)


def fixed_cell() -> Genotype:
    cell = tuple(("sep_conv_3x3", j) for i in range(N_NODES) for j in (i, i + 1))
    return Genotype(normal=cell, reduce=cell)


def baseline_network(target_params: int) -> tuple[GenotypeNetwork, int]:
    best = min(range(2, 33), key=lambda c: abs(count_parameters(
        GenotypeNetwork(fixed_cell(), 1, WAYS, channels=c, n_cells=N_CELLS, bn=BN)) - target_params))
    return GenotypeNetwork(fixed_cell(), 1, WAYS, channels=best, n_cells=N_CELLS, bn=BN, seed=0), best


def train_baseline(kind: str, net: GenotypeNetwork, tasks, iterations: int, meta_batch: int) -> float:
    t0 = time.perf_counter()
    if kind == "none":
        return 0.0
    if kind == "reptile":
        learner = Reptile(net, inner_steps=TASK_STEPS, inner_lr=TASK_LR, loss_fn=F.cross_entropy, vectorize=False)
        optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    else:
        learner = FOMAML(net, inner_steps=TASK_STEPS, inner_lr=TASK_LR, loss_fn=F.cross_entropy, vectorize=False)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for i in range(iterations):
        if kind == "reptile":
            optimizer.param_groups[0]["lr"] = 1.0 * (1 - i / iterations)
        learner.meta_train(tasks, iterations=1, meta_batch_size=meta_batch, seed=i, optimizer=optimizer)
    return time.perf_counter() - t0


def run_baselines(methods: dict, net: SearchNetwork, pruned_params: int, train_tasks, test_batch, *, iterations: int,
                  meta_batch: int) -> None:
    """Score the networks without meta-training and the fixed-cell Reptile / first-order MAML baselines."""
    untrained = MetaNAS(SearchNetwork(1, WAYS, channels=CHANNELS, n_cells=N_CELLS, n_nodes=N_NODES, ops=FEWSHOT_OPS,
                                      bn=BN, seed=0), task_steps=TASK_STEPS, task_lr=TASK_LR, task_arch_lr=0.01,
                        temperature=(1.0, 1.0), device="cpu").evaluate(test_batch, finetune_steps=TASK_STEPS)
    methods["no meta-training: search network (T = 1), adapted, not pruned"] = {
        "accuracies": list(untrained.unpruned), "n_parameters": count_parameters(net), "train_seconds": 0.0}
    methods["no meta-training: search network (T = 1), adapted, pruned, +5 fine-tune steps"] = {
        "accuracies": list(untrained.finetuned or ()), "n_parameters": pruned_params, "train_seconds": 0.0}
    for kind, label in (("none", "no meta-training: fixed cell"), ("reptile", "Reptile, fixed cell"),
                        ("fomaml", "first-order MAML, fixed cell")):
        base, width = baseline_network(pruned_params)
        seconds = train_baseline(kind, base, train_tasks, iterations, meta_batch)
        accs = []
        for t in range(len(test_batch)):
            adapted = adapt(base, test_batch.support_x[t], test_batch.support_y[t], steps=TASK_STEPS, lr=TASK_LR,
                            loss_fn=F.cross_entropy)
            accs.append(few_shot_accuracy(adapted(test_batch.query_x[t]), test_batch.query_y[t]))
        methods[label] = {"accuracies": accs, "n_parameters": count_parameters(base), "channels": width,
                          "train_seconds": seconds}
        print(f"{label}: {mean_ci(accs)}, {count_parameters(base)} params ({width} channels)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--meta-batch", type=int, default=5)
    parser.add_argument("--test-tasks", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--omniglot-root", default="")
    parser.add_argument("--outer", choices=["reptile", "fomaml"], default="reptile",
                        help="MetaNAS outer loop; fomaml (Adam 1e-3 on weights and architecture) writes nas_metanas_fomaml.* "
                             "and reuses the baselines of nas_metanas.json when its settings match.")
    parser.add_argument("--meta-arch-lr", type=float, default=None,
                        help="Outer step size of the architecture (default: 0.6 for reptile, 1e-3 for fomaml).")
    parser.add_argument("--hard-fraction", type=float, default=0.0,
                        help="Share of the last meta-iterations (and the meta-test adaptation) run on the discretized "
                             "architecture (MetaNAS hard_fraction; 0 = temperature annealing alone).")
    parser.add_argument("--baselines-from", default=None,
                        help="Result stem whose baselines to reuse (same iterations, meta-batch, test tasks, image "
                             "size and baseline width); they are seeded, so a rerun gives the same numbers.")
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of MetaNAS's initialisation and meta-training episodes (the baselines and the "
                             "meta-test episodes keep theirs).")
    parser.add_argument("--name", default=None,
                        help="Result file stem (default: nas_metanas, nas_metanas_fomaml, with _quick for --quick).")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="Re-render the .md and .png from the .json.")
    args = parser.parse_args()
    suffix = ("_fomaml" if args.outer == "fomaml" else "") + ("_quick" if args.quick else "")
    stem = args.name or f"nas_metanas{suffix}"
    if args.report_only:
        write_report(json.loads((RESULTS / f"{stem}.json").read_text()), stem)
        return
    if args.quick:
        args.iterations, args.test_tasks, args.meta_batch = 2, 4, 2
    torch.set_num_threads(1)
    started = time.perf_counter()
    train_tasks = episodes(args, "train", 5)
    test_batch = episodes(args, "test", 15).sample(args.test_tasks, torch.Generator().manual_seed(2020))

    net = SearchNetwork(1, WAYS, channels=CHANNELS, n_cells=N_CELLS, n_nodes=N_NODES, ops=FEWSHOT_OPS, bn=BN,
                        seed=args.seed)
    outer_rates = {"reptile": (1.0, 0.6), "fomaml": (1e-3, 1e-3)}[args.outer]
    if args.meta_arch_lr is not None:
        outer_rates = (outer_rates[0], args.meta_arch_lr)
    metanas = MetaNAS(net, task_steps=TASK_STEPS, task_lr=TASK_LR, task_arch_lr=0.01, meta_lr=outer_rates[0],
                      meta_arch_lr=outer_rates[1], temperature=(1.0, 0.05), outer=args.outer,
                      hard_fraction=args.hard_fraction, device="cpu")
    t0 = time.perf_counter()
    records = metanas.meta_train(train_tasks, iterations=args.iterations, meta_batch_size=args.meta_batch, seed=args.seed,
                                 log_every=max(1, args.iterations // 12),
                                 callback=lambda r: print(f"  MetaNAS {r.iteration}: query acc {r.query_accuracy:.3f}, "
                                                          f"skip share {r.skip_share:.2f}", flush=True))
    metanas_seconds = time.perf_counter() - t0
    meta_genotype = net.genotype()
    pruned_params = count_parameters(net.prune(meta_genotype))
    evaluation = metanas.evaluate(test_batch, finetune_steps=TASK_STEPS)
    genotypes = evaluation.genotypes
    adapted_params = [count_parameters(net.prune(g)) for g in genotypes]
    print(f"MetaNAS: pruned {mean_ci(list(evaluation.pruned))}, unpruned {mean_ci(list(evaluation.unpruned))}, "
          f"{pruned_params} params", flush=True)

    label = "MetaNAS" if args.outer == "reptile" else "MetaNAS (first-order MAML outer loop)"
    if args.hard_fraction:
        label += f", hard last {args.hard_fraction:.0%}"
    reference = RESULTS / f"{args.baselines_from or 'nas_metanas'}{'_quick' if args.quick else ''}.json"
    keys = ("iterations", "meta_batch", "test_tasks", "image_size", "omniglot_root")
    reused: dict = {}
    # the reused baselines are sized to the reference's pruned network: only for the default file names
    if args.baselines_from and not reference.is_file():
        raise SystemExit(f"--baselines-from: {reference} does not exist; run that benchmark first.")
    if (args.baselines_from or (args.outer == "fomaml" and args.name is None)) and reference.is_file():
        ref = json.loads(reference.read_text())
        width = baseline_network(pruned_params)[1]
        ref_widths = {m.get("channels") for m in ref["methods"].values() if "channels" in m}
        if all(ref["settings"].get(k) == getattr(args, k) for k in keys) and ref_widths == {width}:
            reused = {k: v for k, v in ref["methods"].items() if not k.startswith("MetaNAS")}
            print(f"reusing the baselines of {reference.name}", flush=True)
    methods = {
        f"{label} (adapted, pruned)": {"accuracies": list(evaluation.pruned), "n_parameters": pruned_params,
                                       "train_seconds": metanas_seconds},
        f"{label} (adapted, pruned, +{TASK_STEPS} fine-tune steps)": {
            "accuracies": list(evaluation.finetuned or ()), "n_parameters": pruned_params,
            "train_seconds": metanas_seconds},
        f"{label} (adapted, not pruned: search network)": {"accuracies": list(evaluation.unpruned),
                                                           "n_parameters": count_parameters(net),
                                                           "train_seconds": metanas_seconds},
    }
    if reused:
        methods.update(reused)
    else:
        run_baselines(methods, net, pruned_params, train_tasks, test_batch, iterations=args.iterations,
                      meta_batch=args.meta_batch)

    payload = {
        "settings": vars(args),
        "benchmark": "omniglot" if args.omniglot_root else "glyphs",
        "machine": {"platform": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "load_average_end": os.getloadavg()[0]},
        "seconds": time.perf_counter() - started,
        "metanas_records": [r.__dict__ for r in records],
        "meta_genotype": meta_genotype.to_dict(),
        "adapted_genotypes": Counter(g.to_json() for g in genotypes).most_common(),
        "adapted_parameters": {"min": min(adapted_params), "max": max(adapted_params),
                               "mean": sum(adapted_params) / len(adapted_params)},
        "methods": methods,
        "baselines_reused_from": reference.name if reused else None,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=1))
    write_report(payload, stem)


def write_report(payload: dict, stem: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = payload["settings"]
    n_distinct = len(payload["adapted_genotypes"])
    seed_note = f" MetaNAS seed {args['seed']}; the baselines' seed is 0." if args.get("seed") else ""
    lines = [
        f"# {'MetaNAS (first-order MAML outer loop)' if args.get('outer') == 'fomaml' else 'MetaNAS'}"
        f"{', hard last ' + format(args['hard_fraction'], '.0%') if args.get('hard_fraction') else ''} vs fixed-cell "
        f"Reptile / first-order MAML ({payload['benchmark']}, 5-way 1-shot)",
        "",
        f"Machine: {payload['machine']['platform']}, {payload['machine']['cores']} cores, torch "
        f"{payload['machine']['torch']}, 1 thread, shared with another job (load average "
        f"{payload['machine']['load_average_end']:.1f} at the end). Whole benchmark: {payload['seconds'] / 60:.1f} min.",
        "",
        f"{args['iterations']} meta-iterations of {args['meta_batch']} tasks for every method, {args['image_size']}x"
        f"{args['image_size']} images; {args['test_tasks']} meta-test episodes (15 queries per class), the same for all."
        + seed_note + (f" Baselines reused from {payload['baselines_reused_from']} (seeded: the same settings give the same numbers)."
           if payload.get("baselines_reused_from") else ""),
        "",
        "| method | parameters | meta-test accuracy | 95% CI | meta-training s |",
        "|---|---:|---:|---:|---:|",
    ]
    hard = bool(args.get("hard_fraction"))
    for name, m in payload["methods"].items():
        if hard and name.endswith("(adapted, not pruned: search network)"):
            continue  # the adapted search network ran its discretized architecture: the pruned row
        mean, half = mean_ci(m["accuracies"])
        lines.append(f"| {name} | {m['n_parameters']:,} | {mean:.3f} | ± {half:.3f} | {m['train_seconds']:.0f} |")
    p = payload["adapted_parameters"]
    pruned = next(m["accuracies"] for k, m in payload["methods"].items() if k.endswith("(adapted, pruned)"))
    lines.append("")
    if hard:
        lines += ["The adapted search network ran its discretized architecture (hard), so it scores what the pruned "
                  "network scores; the unpruned row is left out.", ""]
    methods = payload["methods"]
    equal_size = "first-order MAML, fixed cell sized like the MetaNAS pruned network"  # nas_metanas_equal_params.py
    for baseline in (equal_size if equal_size in methods else "first-order MAML, fixed cell", "Reptile, fixed cell"):
        if baseline in methods:
            diff = [a - b for a, b in zip(pruned, payload["methods"][baseline]["accuracies"], strict=True)]
            mean, half = mean_ci(diff)
            wins, losses = sum(d > 0 for d in diff), sum(d < 0 for d in diff)
            lines.append(f"Paired over the same episodes, MetaNAS pruned minus {baseline}: {mean:+.3f} ± {half:.3f} "
                         f"({wins} episodes better, {len(diff) - wins - losses} equal, {losses} worse).")
    lines += [
        "",
        f"Meta-learned normal cell: {', '.join(f'{op}<-{j}' for op, j in payload['meta_genotype']['normal'])}; "
        f"reduction cell: {', '.join(f'{op}<-{j}' for op, j in payload['meta_genotype']['reduce'])}.",
        f"Task-adapted architectures: {n_distinct} distinct genotype(s) over {args['test_tasks']} test tasks; "
        f"pruned networks of {p['min']:,}-{p['max']:,} parameters (mean {p['mean']:,.0f}); the \"parameters\" column gives the meta-architecture's pruned network.",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")

    recs = payload["metanas_records"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].plot([r["iteration"] for r in recs], [r["query_accuracy"] for r in recs], marker=".")
    axes[0].set(xlabel="meta-iteration", ylabel="query accuracy after task steps", title="MetaNAS meta-training")
    axes[1].plot([r["iteration"] for r in recs], [r["skip_share"] for r in recs], marker=".", label="skip share")
    axes[1].plot([r["iteration"] for r in recs], [r["temperature"] for r in recs], ls="--", label="temperature")
    axes[1].set(xlabel="meta-iteration", title="Skip share of the meta-architecture")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{stem}.png", dpi=120)


if __name__ == "__main__":
    main()
