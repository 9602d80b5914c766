"""Meta-training throughput against learn2learn's clone/adapt loop (sinusoid MAML).

learn2learn 0.2.0 is not importable next to autometa's pinned torch (its sdist ships C
files generated for Python 3.7, and its torchvision import needs a matching wheel), so
it runs in its own virtual environment, set up once:

    python -m venv /tmp/l2lenv && /tmp/l2lenv/bin/pip install torch==2.13.0 numpy cython
    pip download learn2learn==0.2.0 --no-deps; tar xzf learn2learn-0.2.0.tar.gz
    cd learn2learn-0.2.0 && rm -rf .eggs && for f in meta_dataset task_dataset transforms; do
        /tmp/l2lenv/bin/cython -3 learn2learn/data/$f.pyx -o learn2learn/data/$f.c; done
    /tmp/l2lenv/bin/pip install --no-build-isolation --no-deps . gym gym_notices cloudpickle tqdm requests scipy

torchvision is left out: ``torchvision.*`` is replaced by empty modules on import (only
learn2learn's vision helpers use it, not ``learn2learn.algorithms.MAML``).

Workload (as experiments/bench_metalearn_throughput.py): 1-40-40-1 ReLU MLP, K=10 support
+ 10 query points, one inner SGD step (lr 0.01), Adam 1e-3 outer, one thread; tasks per
second of process CPU time, median of 3 blocks of about 2 CPU s after a warm-up, task
sampling included.

    python experiments/bench_metalearn_l2l.py --l2l-python /tmp/l2lenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
META_BATCHES = (25, 100)


def _sinusoid(n: int, k: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    amp = torch.empty(n, 1, 1).uniform_(0.1, 5.0, generator=gen)
    phase = torch.empty(n, 1, 1).uniform_(0.0, torch.pi, generator=gen)
    x = torch.empty(n, 2 * k, 1).uniform_(-5.0, 5.0, generator=gen)
    y = amp * torch.sin(x - phase)
    return x[:, :k], y[:, :k], x[:, k:], y[:, k:]


def _rate(step, meta_batch: int, block_cpu: float, repeats: int) -> float:
    start = time.process_time()
    step()
    step()
    per = max((time.process_time() - start) / 2, 1e-4)
    n = max(2, int(block_cpu / per))
    rates = []
    for _ in range(repeats):
        c0 = time.process_time()
        for _ in range(n):
            step()
        rates.append(n * meta_batch / (time.process_time() - c0))
    return statistics.median(rates)


def run_l2l(block_cpu: float, repeats: int) -> dict:
    """Runs inside the learn2learn environment: its MAML clone/adapt loop."""
    sys.path.insert(0, str(Path(__file__).parent))
    import _torchvision_stub  # noqa: F401
    import learn2learn as l2l

    torch.set_num_threads(1)
    out = {"learn2learn": l2l.__version__}
    for first_order in (False, True):
        for mb in META_BATCHES:
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40),
                                        torch.nn.ReLU(), torch.nn.Linear(40, 1))
            maml = l2l.algorithms.MAML(model, lr=0.01, first_order=first_order)
            opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(0)

            def step(maml=maml, opt=opt, gen=gen, mb=mb):
                xs, ys, xq, yq = _sinusoid(mb, 10, gen)
                opt.zero_grad()
                total = 0.0
                for i in range(mb):
                    learner = maml.clone()
                    learner.adapt(torch.nn.functional.mse_loss(learner(xs[i]), ys[i]))
                    total = total + torch.nn.functional.mse_loss(learner(xq[i]), yq[i])
                (total / mb).backward()
                opt.step()

            out[f"{'FOMAML' if first_order else 'MAML'}@{mb}"] = _rate(step, mb, block_cpu, repeats)
    return out


def run_autometa(block_cpu: float, repeats: int) -> dict:
    from autometa.metalearn import FOMAML, MAML, SinusoidTasks, make_mlp

    torch.set_num_threads(1)
    tasks = SinusoidTasks(k_support=10)
    out = {}
    for name, cls in (("MAML", MAML), ("FOMAML", FOMAML)):
        for mb in META_BATCHES:
            for vectorize in (True, False):
                learner = cls(make_mlp(seed=0), inner_steps=1, inner_lr=0.01, vectorize=vectorize)
                opt = torch.optim.Adam(learner.meta_parameters().values(), lr=1e-3)
                gen = torch.Generator().manual_seed(0)

                def step(learner=learner, opt=opt, gen=gen, mb=mb):
                    learner.meta_step(tasks.sample(mb, gen), opt)

                out[f"{name}@{mb}:{'vmap' if vectorize else 'loop'}"] = _rate(step, mb, block_cpu, repeats)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--l2l-python", default="/tmp/l2lenv/bin/python", help="interpreter of the learn2learn venv")
    ap.add_argument("--block-seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--inside-l2l", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside_l2l:
        print(json.dumps(run_l2l(args.block_seconds, args.repeats)))
        return
    if not Path(args.l2l_python).is_file():
        sys.exit(f"No learn2learn interpreter at {args.l2l_python}; set it up as the module docstring says.")
    load0 = os.getloadavg()[0]
    ours = run_autometa(args.block_seconds, args.repeats)
    proc = subprocess.run([args.l2l_python, __file__, "--inside-l2l", "--block-seconds", str(args.block_seconds),
                           "--repeats", str(args.repeats)], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    load1 = os.getloadavg()[0]
    lines = ["# Meta-training throughput: autometa (torch.func vmap) vs learn2learn's clone/adapt loop", "",
             f"Sinusoid, 1-40-40-1 MLP, K=10 + 10, one inner step; tasks per CPU second, one thread, median of "
             f"{args.repeats} blocks. learn2learn {theirs['learn2learn']} in its own venv (same torch). Load average "
             f"{load0:.1f} / {load1:.1f} (another job shared the 2 cores; both sides measured under it).", "",
             "| algorithm | meta-batch | autometa vmap | autometa per-task loop | learn2learn | vmap / learn2learn |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in ("MAML", "FOMAML"):
        for mb in META_BATCHES:
            v, lp, l2 = ours[f"{name}@{mb}:vmap"], ours[f"{name}@{mb}:loop"], theirs[f"{name}@{mb}"]
            lines.append(f"| {name} | {mb} | {v:.0f} | {lp:.0f} | {l2:.0f} | {v / l2:.1f}x |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "bench_metalearn_l2l.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
