"""DARTS on a small image task on CPU: searched cells against a fixed cell and random
cells of the same size, and the share of skip connections over the search.

Task (``--family``): scikit-learn's 1,797 handwritten digits (1x8x8, 10 classes; the
default), or every class of one glyph alphabet (``--family glyphs --alphabet Cyrillic``:
1x16x16, 60 distorted images per class, :func:`autometa.nas.glyph_task`), split (seeded)
into search-train 40% / search-valid 20% / test 40%.

1. Search: the DARTS search space with the 8 DARTS operations, a 3-cell network (normal,
   reduction, reduction), 3 intermediate nodes, 8 channels; ``--steps`` search steps,
   batch 64, architecture Adam lr 3e-3 (10x DARTS's 3e-4: the search is 100x shorter),
   three variants: first order, first order with the DARTS- auxiliary skip, second order.
2. Evaluation: each discretized cell is trained from scratch (3 cells, 16 channels,
   ``--train-steps`` SGD steps on search-train + search-valid, cosine lr 0.05) and scored
   on the test split, over ``--seeds`` seeds; so are a fixed hand-made cell of the same
   shape (every edge a 3x3 separable convolution, node i fed by states i and i+1), the
   same fixed cell with its width chosen so its parameter count is closest to the searched
   cells' mean (equal size), and random cells (operations and inputs drawn uniformly).

torch uses 1 thread. Writes experiments/results/nas_darts.json, .md and .png
(``nas_darts_glyphs.*`` for the glyph family).

    PYTHONPATH=. nice -n 10 python experiments/bench_nas_darts.py [--steps 150] [--train-steps 500] [--seeds 2]
    PYTHONPATH=. nice -n 10 python experiments/bench_nas_darts.py --family glyphs --alphabet Cyrillic
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
    AuxiliarySkip,
    DARTSSearch,
    Genotype,
    GenotypeNetwork,
    ImageData,
    count_parameters,
    digits_data,
    glyph_task,
    train_genotype,
)

RESULTS = Path(__file__).parent / "results"
N_NODES = 3


def splits(family: str = "digits", alphabet: str = "Cyrillic", seed: int = 0) -> tuple[ImageData, ImageData, ImageData]:
    data = digits_data() if family == "digits" else glyph_task(alphabet)
    search, test = data.split(0.6, seed=seed)
    train, valid = search.split(2 / 3, seed=seed + 1)
    return train, valid, test


def fixed_cell() -> Genotype:
    cell = tuple(("sep_conv_3x3", j) for i in range(N_NODES) for j in (i, i + 1))
    return Genotype(normal=cell, reduce=cell)


def random_cell(seed: int) -> Genotype:
    return Genotype.random(DARTS_OPS, N_NODES, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--train-steps", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--family", choices=["digits", "glyphs"], default="digits")
    parser.add_argument("--alphabet", default="Cyrillic", help="The glyph alphabet of --family glyphs.")
    parser.add_argument("--quick", action="store_true", help="A smoke run (a few steps).")
    parser.add_argument("--report-only", action="store_true", help="Re-render the .md and .png from the .json.")
    args = parser.parse_args()
    suffix = ("_glyphs" if args.family == "glyphs" else "") + ("_quick" if args.quick else "")
    if args.report_only:
        write_report(json.loads((RESULTS / f"nas_darts{suffix}.json").read_text()), suffix)
        return
    if args.quick:
        args.steps, args.train_steps, args.seeds = 4, 20, 1
    torch.set_num_threads(1)
    train, valid, test = splits(args.family, args.alphabet)
    full_train = ImageData(torch.cat([train.x, valid.x]), torch.cat([train.y, valid.y]))
    started = time.perf_counter()

    variants = {
        "DARTS (1st order)": {"order": "first"},
        "DARTS- (1st order, auxiliary skip)": {"order": "first", "guard": AuxiliarySkip(beta=1.0)},
        "DARTS (2nd order)": {"order": "second"},
    }
    searches = {}
    for name, kwargs in variants.items():
        search = DARTSSearch(
            ops=DARTS_OPS, channels=8, n_cells=3, n_nodes=N_NODES, arch_lr=3e-3, batch_size=64,
            eval_every=max(1, args.steps // 15), device="cpu", seed=0, **kwargs,
        )
        t0 = time.perf_counter()
        result = search.search(train, valid, steps=args.steps)
        searches[name] = {"result": result.to_dict(), "seconds": time.perf_counter() - t0}
        print(f"{name}: {time.perf_counter() - t0:.0f} s, valid acc {result.final_valid_accuracy:.3f}, "
              f"skip share {result.history[-1].skip_share:.2f}, {result.genotype.to_json()}", flush=True)

    candidates = {name: (Genotype.from_dict(s["result"]["genotype"]), 16) for name, s in searches.items()}

    def size(genotype: Genotype, channels: int) -> int:
        return count_parameters(GenotypeNetwork(genotype, train.in_channels, train.n_classes, channels=channels, n_cells=3))

    searched_size = statistics.mean(size(g, c) for g, c in candidates.values())
    matched = min(range(4, 33), key=lambda c: abs(size(fixed_cell(), c) - searched_size))
    candidates["fixed cell (all sep_conv_3x3)"] = (fixed_cell(), 16)
    candidates[f"fixed cell (all sep_conv_3x3), {matched} channels: the searched cells' size"] = (fixed_cell(), matched)
    randoms = {f"random cell {i}": (random_cell(100 + i), 16) for i in range(2)}
    evaluations = {}
    for name, (genotype, channels) in {**candidates, **randoms}.items():
        seeds = range(1) if name.startswith("random") else range(args.seeds)
        runs = []
        for seed in seeds:
            _, res = train_genotype(
                genotype, full_train, test, steps=args.train_steps, test=test, channels=channels, n_cells=3,
                device="cpu", seed=seed, eval_every=args.train_steps, lr=0.05, batch_size=64,
            )
            runs.append({"seed": seed, "test_accuracy": res.test_accuracy, "seconds": res.seconds})
        evaluations[name] = {"genotype": genotype.to_dict(), "n_parameters": res.n_parameters, "channels": channels,
                             "runs": runs}
        accs = [r["test_accuracy"] for r in runs]
        print(f"train {name}: test acc {statistics.mean(accs):.4f} over {len(accs)} seed(s), {res.n_parameters} params", flush=True)

    total = time.perf_counter() - started
    payload = {
        "settings": vars(args),
        "machine": {"platform": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "load_average_end": os.getloadavg()[0]},
        "seconds": total,
        "task": {"family": args.family, "alphabet": args.alphabet if args.family == "glyphs" else None,
                 "shape": list(train.x.shape[1:]), "classes": train.n_classes, "n_test": len(test)},
        "searches": searches,
        "evaluations": evaluations,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"nas_darts{suffix}.json").write_text(json.dumps(payload, indent=1))
    write_report(payload, suffix)


def write_report(payload: dict, suffix: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = payload["settings"]
    task = payload.get("task") or {"family": "digits", "n_test": len(splits()[2])}
    what = "digits" if task["family"] == "digits" else f"the {task['alphabet']} glyphs"
    lines = [
        f"# DARTS on {what} (CPU): searched cells vs a fixed cell and random cells, skip share over the search",
        "",
        f"Machine: {payload['machine']['platform']}, {payload['machine']['cores']} cores, torch "
        f"{payload['machine']['torch']}, 1 thread, shared with another job (load average "
        f"{payload['machine']['load_average_end']:.1f} at the end). Whole benchmark: {payload['seconds'] / 60:.1f} min.",
        "",
        ("Task: sklearn digits (1x8x8, 10 classes)" if task["family"] == "digits" else
         f"Task: every class of the {task['alphabet']} glyph alphabet ({task['classes']} classes, "
         f"{'x'.join(map(str, task['shape']))}, 60 distorted images per class)")
        + "; search on 40% / 20% (train / valid) of the images, "
        "evaluation networks trained on those 60% and tested on the other 40%.",
        "",
        f"## Search ({args['steps']} steps, 3 cells x 3 nodes, 8 channels, 8 operations)",
        "",
        "| variant | seconds | supernet valid acc | skip share (normal cell) | normal cell |",
        "|---|---:|---:|---:|---|",
    ]
    for name, s in payload["searches"].items():
        hist = s["result"]["history"]
        cell = ", ".join(f"{op}<-{j}" for op, j in s["result"]["genotype"]["normal"])
        lines.append(f"| {name} | {s['seconds']:.0f} | {hist[-1]['valid_accuracy']:.3f} | {hist[-1]['skip_share']:.2f} | {cell} |")
    lines += [
        "",
        f"## Training from scratch ({args['train_steps']} steps, 3 cells, 16 channels unless named; test accuracy, mean over seeds)",
        "",
        "| cell | parameters | seeds | test accuracy | per seed |",
        "|---|---:|---:|---:|---|",
    ]
    for name, e in payload["evaluations"].items():
        accs = [r["test_accuracy"] for r in e["runs"]]
        lines.append(
            f"| {name} | {e['n_parameters']:,} | {len(accs)} | {statistics.mean(accs):.4f} | "
            + ", ".join(f"{a:.4f}" for a in accs) + " |"
        )
    n_test = task["n_test"]
    evals = payload["evaluations"]

    def mean_of(names: list[str]) -> float:
        return statistics.mean(r["test_accuracy"] for n in names for r in evals[n]["runs"])

    searched = [n for n in evals if n.startswith("DARTS")]
    randoms = [n for n in evals if n.startswith("random")]
    fixed = [n for n in evals if n.startswith("fixed")]
    lines += [
        "",
        "## Reading",
        "",
        f"- The test split has {n_test} images: one image is {100 / n_test:.2f} percentage points"
        + (", so differences of a few tenths of a point are within seed noise on this saturated task."
           if task["family"] == "digits" else "."),
        f"- Searched cells (mean over the {len(searched)} searches and their seeds): {mean_of(searched):.4f} with "
        f"{statistics.mean(evals[n]['n_parameters'] for n in searched):,.0f} parameters on average; "
        + "; ".join(f"{n}: {mean_of([n]):.4f} with {evals[n]['n_parameters']:,}" for n in fixed)
        + f"; random cells: {mean_of(randoms):.4f}.",
    ]
    for name, s in payload["searches"].items():
        hist = s["result"]["history"]
        peak = max(hist, key=lambda h: h["skip_share"])
        lines.append(f"- {name}: skip share {hist[-1]['skip_share']:.2f} at the end (highest {peak['skip_share']:.2f} at "
                     f"step {peak['step']}); aux-skip coefficient at the end {hist[-1]['aux_skip']:.3f}.")
    (RESULTS / f"nas_darts{suffix}.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, s in payload["searches"].items():
        hist = s["result"]["history"]
        steps = [h["step"] for h in hist]
        axes[0].plot(steps, [h["skip_share"] for h in hist], marker="o", label=name)
        axes[1].plot(steps, [h["valid_accuracy"] for h in hist], marker=".", label=name)
    axes[0].set(xlabel="search step", ylabel="skip share of the normal cell", title="Skip connections over the search")
    axes[1].set(xlabel="search step", ylabel="supernet validation accuracy", title="Search progress")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"nas_darts{suffix}.png", dpi=120)


if __name__ == "__main__":
    main()
