"""Skip connections over a longer DARTS search, with and without the collapse guards.

Digits (as in bench_nas_darts.py: search-train 40%, search-valid 20%), a 2-cell search
network (normal, reduction), 3 nodes, 8 channels, the 8 DARTS operations, first order,
arch Adam lr 3e-3, ``--steps`` steps. Three searches from the same seed: plain DARTS,
DARTS- (auxiliary skip, beta 1 -> 0), and RobustDARTS-style early stopping on the
dominant Hessian eigenvalue of the validation loss in alpha (estimated every
``--every`` steps, 8 power iterations; stop when the 2-estimate mean grew by more than
1/0.75 over 2 estimates). Recorded: the skip share of the normal cell's genotype, the
mean softmax weight of the skip operation, the eigenvalue.

torch uses 1 thread. Writes experiments/results/nas_skip.json, .md and .png.

    PYTHONPATH=. nice -n 10 python experiments/bench_nas_skip.py [--steps 300] [--every 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from autometa.nas import DARTS_OPS, AuxiliarySkip, DARTSSearch, HessianEarlyStop, digits_data

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="Re-render the .md and .png from the .json.")
    args = parser.parse_args()
    suffix = "_quick" if args.quick else ""
    if args.report_only:
        write_report(json.loads((RESULTS / f"nas_skip{suffix}.json").read_text()), suffix)
        return
    if args.quick:
        args.steps, args.every = 6, 2
    torch.set_num_threads(1)
    search_data, _ = digits_data().split(0.6, seed=0)
    train, valid = search_data.split(2 / 3, seed=1)
    variants = {
        "DARTS": None,
        "DARTS- (auxiliary skip)": AuxiliarySkip(beta=1.0),
        "Hessian early stop": HessianEarlyStop(every=args.every, window=2, lag=2, ratio=0.75, power_iterations=8),
    }
    started = time.perf_counter()
    runs = {}
    for name, guard in variants.items():
        search = DARTSSearch(ops=DARTS_OPS, channels=8, n_cells=2, n_nodes=3, order="first", arch_lr=3e-3,
                             batch_size=64, eval_every=args.every, guard=guard, device="cpu", seed=0)
        t0 = time.perf_counter()
        result = search.search(train, valid, steps=args.steps)
        runs[name] = {"seconds": time.perf_counter() - t0, "steps": result.steps, "stopped_early": result.stopped_early,
                      "history": [asdict(r) for r in result.history], "genotype": result.genotype.to_dict()}
        print(f"{name}: {result.steps} steps, skip share {result.genotype.skip_share():.2f}, "
              f"stopped early {result.stopped_early}", flush=True)
    payload = {
        "settings": vars(args),
        "machine": {"platform": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "load_average_end": os.getloadavg()[0]},
        "seconds": time.perf_counter() - started,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"nas_skip{suffix}.json").write_text(json.dumps(payload, indent=1))
    write_report(payload, suffix)


def write_report(payload: dict, suffix: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = payload["settings"]
    lines = [
        "# Skip connections over a DARTS search, with and without collapse guards (digits)",
        "",
        f"Machine: {payload['machine']['platform']}, {payload['machine']['cores']} cores, torch "
        f"{payload['machine']['torch']}, 1 thread, shared with another job (load average "
        f"{payload['machine']['load_average_end']:.1f} at the end). Whole benchmark: {payload['seconds'] / 60:.1f} min.",
        "",
        f"{args['steps']} first-order search steps at most; 2 cells x 3 nodes, 8 channels, 8 operations.",
        "",
        "| variant | steps | stopped early | final skip share | final skip weight | max skip share | final eigenvalue | valid acc | normal cell |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, run in payload["runs"].items():
        h = run["history"]
        eig = next((r["eigenvalue"] for r in reversed(h) if r["eigenvalue"] is not None), None)
        cell = ", ".join(f"{op}<-{j}" for op, j in run["genotype"]["normal"])
        lines.append(
            f"| {name} | {run['steps']} | {run['stopped_early']} | {h[-1]['skip_share']:.2f} | {h[-1]['skip_weight']:.3f} | "
            f"{max(r['skip_share'] for r in h):.2f} | {eig if eig is None else f'{eig:.3g}'} | {h[-1]['valid_accuracy']:.3f} | {cell} |"
        )
    lines += ["", "## Reading", "",
              "- All three searches start from the same seed, so the Hessian run equals plain DARTS until it stops.",
              "- A skip share of 0 means no normal-cell edge of the genotype is a skip connection; the skip weight is "
              f"the mean softmax weight of the skip operation (uniform: {1 / 8:.3f})."]
    for name, run in payload["runs"].items():
        h = run["history"]
        lines.append(f"- {name}: skip weight {h[0]['skip_weight']:.3f} at step {h[0]['step']}, lowest "
                     f"{min(r['skip_weight'] for r in h):.3f}, {h[-1]['skip_weight']:.3f} at step {h[-1]['step']}.")
        eig = [(r["step"], r["eigenvalue"]) for r in h if r["eigenvalue"] is not None]
        if run["stopped_early"] and eig:
            lines.append(f"  Eigenvalue {eig[0][1]:.3g} at step {eig[0][0]}, {eig[-1][1]:.3g} at step {eig[-1][0]} "
                         "when the stopping rule fired; the architecture of two estimates earlier is returned.")
    (RESULTS / f"nas_skip{suffix}.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for i, (name, run) in enumerate(payload["runs"].items()):
        h = run["history"]
        steps = [r["step"] for r in h]
        style = {"marker": ".", "label": name, "color": f"C{i}", "ls": ["-", "--", ":"][i % 3]}
        axes[0].plot(steps, [r["skip_share"] for r in h], **style)
        axes[1].plot(steps, [r["skip_weight"] for r in h], **style)
        eig = [(r["step"], r["eigenvalue"]) for r in h if r["eigenvalue"] is not None]
        if eig:
            axes[2].plot(*zip(*eig, strict=True), **style)
    axes[0].set(xlabel="search step", ylabel="skip share (normal genotype)", title="Skip share")
    axes[1].set(xlabel="search step", ylabel="mean softmax weight of skip", title="Skip weight (normal edges)")
    axes[2].set(xlabel="search step", ylabel="dominant eigenvalue", title="Hessian of L_val in alpha")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"nas_skip{suffix}.png", dpi=120)


if __name__ == "__main__":
    main()
