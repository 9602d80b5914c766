"""Warm-started against cold DARTS on related tasks (class subsets of the digits or of the
glyph alphabets).

Two task families (``--family``):

* digits: source tasks are 5-digit subsets of sklearn's 8x8 digits; each target is another
  5-digit subset overlapping its intended source in 4 digits. The searches saturate near
  99% validation accuracy.
* glyphs: 10-class subsets of the offline glyph alphabets (16x16, 60 distorted images per
  class, :func:`autometa.nas.glyph_task`); sources are classes 0-9 of six alphabets; four
  targets are classes 3-12 of a source's alphabet (7 of 10 shared), a fifth is classes
  0-9 of an alphabet no source comes from (Gothic German). Not saturated within the budget.
* tables: the four tables of ``bench_nas_tabular.py`` searched with the tabular operations
  and described by OpenML meta-features (:func:`table_descriptor`); sources are one half
  of the rows (seeded) of credit_data, hpc_data and breast cancer and digits 0-4 read as
  a table; targets are the other half of the three tables (no row shared) and digits 5-9.

Source tasks are searched cold and stored in an
:class:`ArchitectureStore` with their task description (:func:`image_task_embedding`, or
meta-features for tables) and search-network weights. Each target task is then searched three ways for ``--steps`` steps:

* cold: architecture parameters near zero, fresh weights (plain DARTS);
* warm (alphas): the architecture parameters of the nearest stored task (the nearest
  is found by the embedding, not given);
* warm (alphas + weights): also its search-network weights (the classifier excepted).

Cost measure (Grobelnik & Vanschoren 2022): the search steps a warm search needs to
reach the cold search's final validation accuracy (supernet accuracy, recorded every
``--eval-every`` steps), as a fraction of the cold search's steps. Anchor: 60% less
search cost on average.

Search network: 2 cells (normal, reduction), 3 nodes, 8 channels, the 8 DARTS
operations (the 7 tabular ones for tables), first order, arch Adam lr 3e-3, batch 64; each task's images split 50/50 into
search-train and search-valid (seeded). torch uses 1 thread. Writes
experiments/results/nas_warmstart.json, .md and .png (``_glyphs`` / ``_tables`` for the
other families).

    PYTHONPATH=. nice -n 10 python experiments/bench_nas_warmstart.py [--steps 80] [--source-steps 100]
    PYTHONPATH=. nice -n 10 python experiments/bench_nas_warmstart.py --family glyphs --steps 100 --source-steps 150
    PYTHONPATH=. nice -n 10 python experiments/bench_nas_warmstart.py --family tables --steps 200 --source-steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from autometa.nas import (
    DARTS_OPS,
    TABULAR_OPS,
    ArchitectureStore,
    DARTSSearch,
    ImageData,
    digits_data,
    digits_task,
    edge_count,
    glyph_task,
    image_task_embedding,
    table_data,
    table_descriptor,
)

RESULTS = Path(__file__).parent / "results"
N_NODES = 3
_FIRST, _SHIFTED = list(range(10)), list(range(3, 13))


def _slug(alphabet: str) -> str:
    """'Gothic (English)' -> 'gothic-english' (store names are [A-Za-z0-9_.-])."""
    return "-".join(alphabet.lower().replace("(", "").replace(")", "").split())


FAMILIES = {
    "digits": {
        "sources": {"0-4": [0, 1, 2, 3, 4], "5-9": [5, 6, 7, 8, 9], "even": [0, 2, 4, 6, 8], "odd": [1, 3, 5, 7, 9]},
        "targets": {"0-3,6": [0, 1, 2, 3, 6], "5-8,1": [5, 6, 7, 8, 1], "odd-9+8": [1, 3, 5, 7, 8]},
    },
    "glyphs": {  # name -> (alphabet, class positions)
        "sources": {f"{_slug(a)}_0-9": (a, _FIRST) for a in
                    ("Cyrillic", "Japanese", "Latin (sans)", "Gothic (English)", "Greek", "Latin (script)")},
        "targets": {**{f"{_slug(a)}_3-12": (a, _SHIFTED) for a in ("Cyrillic", "Japanese", "Gothic (English)", "Greek")},
                    "gothic-german_0-9": ("Gothic (German)", _FIRST)},
    },
    "tables": {  # name -> (table, half of the rows (0 or 1), classes or None)
        "sources": {"credit_A": ("credit_data", 0, None), "hpc_A": ("hpc_data", 0, None),
                    "cancer_A": ("breast_cancer", 0, None), "digits_0-4": ("digits (as a table)", None, "01234")},
        "targets": {"credit_B": ("credit_data", 1, None), "hpc_B": ("hpc_data", 1, None),
                    "cancer_B": ("breast_cancer", 1, None), "digits_5-9": ("digits (as a table)", None, "56789")},
    },
}


def make_task(family: str, spec, digits: ImageData | None) -> tuple[ImageData, object]:
    """The task's data and its description in the store."""
    if family == "tables":
        return _table_task(*spec)
    task = digits_task(spec, digits) if family == "digits" else glyph_task(*spec)
    return task, image_task_embedding(task)


def _table_task(table: str, half: int | None, classes: str | None) -> tuple[ImageData, object]:
    import warnings

    from autometa import Task
    from experiments.bench_nas_tabular import load_tables

    frame, label = load_tables()[table]
    if classes is not None:
        frame = frame[frame[label].isin(list(classes))]
    if half is not None:  # disjoint halves: a source's weights have never seen a target row
        order = frame.sample(frac=1.0, random_state=0).index
        frame = frame.loc[order[: len(order) // 2] if half == 0 else order[len(order) // 2 :]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(frame.reset_index(drop=True), label=label)
    train_rows, _ = ImageData.split_index(len(task.X), 0.5, seed=0)  # the search-train rows of main()
    return table_data(task, fit_rows=train_rows), table_descriptor(task)


def make_search(steps: int, eval_every: int, ops: tuple[str, ...] = DARTS_OPS) -> DARTSSearch:
    return DARTSSearch(
        ops=ops, channels=8, n_cells=2, n_nodes=N_NODES, order="first", arch_lr=3e-3, batch_size=64,
        eval_every=eval_every, device="cpu", seed=0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="digits")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--source-steps", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="Re-render the .md and .png from the .json.")
    args = parser.parse_args()
    suffix = ("" if args.family == "digits" else f"_{args.family}") + ("_quick" if args.quick else "")
    if args.report_only:
        write_report(json.loads((RESULTS / f"nas_warmstart{suffix}.json").read_text()), suffix)
        return
    if args.quick:
        args.steps, args.source_steps, args.eval_every = 4, 4, 2
    torch.set_num_threads(1)
    family = FAMILIES[args.family]
    data = digits_data() if args.family == "digits" else None
    ops = TABULAR_OPS if args.family == "tables" else DARTS_OPS
    started = time.perf_counter()
    store = ArchitectureStore()  # in memory; pass a directory to keep it
    sources = {}
    for name, classes in family["sources"].items():
        task, descriptor = make_task(args.family, classes, data)
        train, valid = task.split(0.5, seed=0)
        search = make_search(args.source_steps, args.eval_every, ops)
        result = search.search(train, valid, steps=args.source_steps)
        store.add(name, descriptor, result, weights=search.network_.state_dict())
        sources[name] = {"classes": classes, "valid_accuracy": result.final_valid_accuracy,
                         "genotype": result.genotype.to_dict()}
        print(f"source {name}: valid acc {result.final_valid_accuracy:.3f}", flush=True)

    targets = {}
    shape = (edge_count(N_NODES), len(ops))
    for name, classes in family["targets"].items():
        task, descriptor = make_task(args.family, classes, data)
        train, valid = task.split(0.5, seed=0)
        start = store.warm_start(descriptor, ops=ops, shape=shape, with_weights=True)
        assert start is not None
        runs = {}
        for variant, kwargs in {
            "cold": {},
            "warm (alphas)": {"init_alphas": start.alphas},
            "warm (alphas + weights)": {"init_alphas": start.alphas, "init_weights": start.weights},
        }.items():
            t0 = time.perf_counter()
            result = make_search(args.steps, args.eval_every, ops).search(train, valid, steps=args.steps, **kwargs)
            runs[variant] = {
                "seconds": time.perf_counter() - t0,
                "curve": [(r.step, r.valid_accuracy) for r in result.history],
                "final_valid_accuracy": result.final_valid_accuracy,
                "genotype": result.genotype.to_dict(),
            }
        target_acc = runs["cold"]["final_valid_accuracy"]
        for run in runs.values():
            reached = next((s for s, a in run["curve"] if a >= target_acc), None)
            run["steps_to_cold_final"] = reached
            run["cost_fraction"] = reached / args.steps if reached is not None else None
        targets[name] = {"classes": classes, "nearest": start.sources[0][0], "distance": start.sources[0][1], "runs": runs}
        print(f"target {name}: nearest {start.sources[0][0]}; "
              + "; ".join(f"{v}: {r['steps_to_cold_final']} steps, final {r['final_valid_accuracy']:.3f}" for v, r in runs.items()),
              flush=True)

    payload = {
        "settings": vars(args),
        "machine": {"platform": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "load_average_end": os.getloadavg()[0]},
        "seconds": time.perf_counter() - started,
        "sources": sources,
        "targets": targets,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"nas_warmstart{suffix}.json").write_text(json.dumps(payload, indent=1))
    write_report(payload, suffix)


def write_report(payload: dict, suffix: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = payload["settings"]
    family = args.get("family", "digits")
    variants = ["warm (alphas)", "warm (alphas + weights)"]
    lines = [
        f"# Warm-started vs cold DARTS on related {family.removesuffix('s')} tasks",
        "",
        f"Machine: {payload['machine']['platform']}, {payload['machine']['cores']} cores, torch "
        f"{payload['machine']['torch']}, 1 thread, shared with another job (load average "
        f"{payload['machine']['load_average_end']:.1f} at the end). Whole benchmark: {payload['seconds'] / 60:.1f} min.",
        "",
        f"Sources searched cold for {args['source_steps']} steps and stored with their task "
        f"{'meta-features' if family == 'tables' else 'embedding'}: "
        + ", ".join(f"{n} ({s['valid_accuracy']:.3f})" for n, s in payload["sources"].items())
        + f". Targets searched for {args['steps']} steps, validation accuracy recorded every {args['eval_every']} steps.",
        "",
        "Cost = steps until a search first reaches the cold search's final validation accuracy, as a share of "
        "the cold search's steps (lower is better; the anchor is 0.40, i.e. 60% less). The cold search itself may "
        "reach that accuracy before its last step: its own first-reach step is the stricter reference, and the "
        "last column divides the warm steps by it.",
        "",
        "| target | nearest stored task | cold final acc | cold: first reach | "
        + " | ".join(f"{v}: steps (cost)" for v in variants)
        + " | " + " | ".join(f"{v}: final acc" for v in variants)
        + " | " + " | ".join(f"{v}: steps / cold first reach" for v in variants) + " |",
        "|---|---|---:|---:|" + "---:|" * (3 * len(variants)),
    ]
    costs: dict[str, list[float]] = {v: [] for v in variants}
    strict: dict[str, list[float]] = {v: [] for v in variants}
    for name, t in payload["targets"].items():
        cold_reach = t["runs"]["cold"]["steps_to_cold_final"]
        cells, ratios = [], []
        for v in variants:
            run = t["runs"][v]
            frac = run["cost_fraction"]
            costs[v].append(frac if frac is not None else 1.0)
            reached = run["steps_to_cold_final"]
            ratio = reached / cold_reach if reached is not None else args["steps"] / cold_reach
            strict[v].append(ratio)
            cells.append(f"{reached} ({frac:.2f})" if frac is not None else "not reached (1.00)")
            ratios.append(f"{ratio:.2f}" if reached is not None else f">= {ratio:.2f}")
        finals = [f"{t['runs'][v]['final_valid_accuracy']:.3f}" for v in variants]
        lines.append(f"| {name} | {t['nearest']} | {t['runs']['cold']['final_valid_accuracy']:.3f} | {cold_reach} | "
                     + " | ".join(cells) + " | " + " | ".join(finals) + " | " + " | ".join(ratios) + " |")
    lines += ["", "Mean cost relative to the cold search's steps (not reached counts as 1.00): "
              + "; ".join(f"{v}: {statistics.mean(c):.2f} ({100 * (1 - statistics.mean(c)):.0f}% less search)"
                          for v, c in costs.items()) + ".",
              "", "Mean cost relative to the cold search's own first reach of its final accuracy: "
              + "; ".join(f"{v}: {statistics.mean(c):.2f} ({100 * (1 - statistics.mean(c)):.0f}% less)"
                          for v, c in strict.items()) + "."]
    noise = ("The final accuracies sit on a plateau near 0.99, where one validation image decides whether a curve "
             "'reaches' the cold final value. A less noisy view: " if family == "digits" else
             "A view less sensitive to the last evaluation's noise: ")
    lines += ["", noise + "steps until 95% of the cold final accuracy.", "",
              "| target | cold | " + " | ".join(variants) + " |", "|---|---:|" + "---:|" * len(variants)]
    soft: dict[str, list[float]] = {v: [] for v in ["cold", *variants]}
    for name, t in payload["targets"].items():
        level = 0.95 * t["runs"]["cold"]["final_valid_accuracy"]
        row = []
        for v in ["cold", *variants]:
            reached = next((st for st, a in t["runs"][v]["curve"] if a >= level), None)
            soft[v].append(reached if reached is not None else args["steps"])
            row.append(str(reached))
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += ["", "Mean steps to 95% of the cold final accuracy: "
              + "; ".join(f"{v}: {statistics.mean(c):.1f}" for v, c in soft.items())
              + " (" + "; ".join(f"{v}: {100 * (1 - statistics.mean(soft[v]) / statistics.mean(soft['cold'])):.0f}% fewer than cold"
                                 for v in variants) + ")."]
    (RESULTS / f"nas_warmstart{suffix}.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, len(payload["targets"]), figsize=(4 * len(payload["targets"]), 3.4), squeeze=False)
    for ax, (name, t) in zip(axes[0], payload["targets"].items(), strict=True):
        for variant, run in t["runs"].items():
            steps, accs = zip(*run["curve"], strict=True)
            ax.plot(steps, accs, marker=".", label=variant)
        ax.axhline(t["runs"]["cold"]["final_valid_accuracy"], color="grey", lw=0.8, ls="--")
        ax.set(title=f"target {name} (nearest: {t['nearest']})", xlabel="search step", ylabel="valid accuracy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"nas_warmstart{suffix}.png", dpi=120)


if __name__ == "__main__":
    main()
