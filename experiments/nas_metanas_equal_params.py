"""Fixed-cell first-order MAML baselines sized to the parameter counts of the MetaNAS
(first-order MAML outer loop) networks: its pruned network and its search network.

Adds the rows to experiments/results/nas_metanas_fomaml.json (written by
``bench_nas_metanas.py --outer fomaml``) with the same settings and test episodes, and
re-renders the report.

    PYTHONPATH=. nice -n 10 python experiments/nas_metanas_equal_params.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from bench_nas_metanas import (  # noqa: E402
    RESULTS,
    TASK_LR,
    TASK_STEPS,
    baseline_network,
    episodes,
    train_baseline,
    write_report,
)

from autometa.metalearn import adapt  # noqa: E402
from autometa.nas import count_parameters, few_shot_accuracy, mean_ci  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="nas_metanas_fomaml", help="Result file stem of the MetaNAS run.")
    stem = parser.parse_args().name
    path = RESULTS / f"{stem}.json"
    payload = json.loads(path.read_text())
    args = argparse.Namespace(**payload["settings"])
    torch.set_num_threads(1)
    train_tasks = episodes(args, "train", 5)
    test_batch = episodes(args, "test", 15).sample(args.test_tasks, torch.Generator().manual_seed(2020))
    prefix = "MetaNAS (first-order MAML outer loop) (adapted, "
    targets = {"pruned network": payload["methods"][prefix + "pruned)"]["n_parameters"],
               "search network": payload["methods"][prefix + "not pruned: search network)"]["n_parameters"]}
    for what, n_params in targets.items():
        base, width = baseline_network(n_params)
        seconds = train_baseline("fomaml", base, train_tasks, args.iterations, args.meta_batch)
        t0 = time.perf_counter()
        accs = []
        for t in range(len(test_batch)):
            adapted = adapt(base, test_batch.support_x[t], test_batch.support_y[t], steps=TASK_STEPS, lr=TASK_LR,
                            loss_fn=F.cross_entropy)
            accs.append(few_shot_accuracy(adapted(test_batch.query_x[t]), test_batch.query_y[t]))
        label = f"first-order MAML, fixed cell sized like the MetaNAS {what}"
        payload["methods"][label] = {"accuracies": accs, "n_parameters": count_parameters(base), "channels": width,
                                     "train_seconds": seconds}
        payload["seconds"] += seconds + time.perf_counter() - t0
        print(f"{label}: {mean_ci(accs)}, {count_parameters(base)} params ({width} channels)", flush=True)
    path.write_text(json.dumps(payload, indent=1))
    write_report(payload, stem)


if __name__ == "__main__":
    main()
