"""Rebuild this excerpt of auto-sklearn 0.15.0's meta-learning files (BSD-3-Clause, the
automl.org team) from the unpacked sdist:

    pip download --no-deps --no-build-isolation auto-sklearn==0.15.0   # needs 'wheel'
    tar xzf auto-sklearn-0.15.0.tar.gz
    python tests/data/autosklearn/make_excerpt.py auto-sklearn-0.15.0

Lines are copied verbatim (headers and the rows of the chosen datasets); the binary and
multiclass folders of a metric are identical in the sdist and here.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

FILES = "autosklearn/metalearning/files"
#: One dataset per classifier auto-sklearn found best for balanced accuracy, binary and
#: multiclass; "meta", "stock" and "twonorm" have classifiers autometa cannot map, and
#: "steel-plates-fault" names two OpenML tasks.
BALANCED = [
    "water-treatment", "autouniv-au7-700", "volcanoes-a4", "anneal", "satellite", "meta", "hill-valley",
    "synthetic_control", "mv", "diabetes", "balance-scale", "breast-w", "quake", "stock", "twonorm",
    "steel-plates-fault",
]
FOLDERS = {
    "balanced_accuracy": BALANCED,
    "log_loss": ["water-treatment", "anneal", "hill-valley"],
    "roc_auc": ["water-treatment", "anneal", "satellite"],
}


def excerpt(src: Path, dst: Path, names: list[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    wanted = set(names)
    ids = set()
    for name in ("algorithm_runs.arff", "feature_values.arff"):
        lines = (src / name).read_text().splitlines(keepends=True)
        data = next(i for i, line in enumerate(lines) if line.strip().upper() == "@DATA") + 1
        kept = [line for line in lines[data:] if line.split(",")[0] in wanted]
        if name == "algorithm_runs.arff":
            ids = {line.split(",")[2] for line in kept}
        (dst / name).write_text("".join(lines[:data] + kept))
    lines = (src / "configurations.csv").read_text().splitlines(keepends=True)
    (dst / "configurations.csv").write_text("".join(lines[:1] + [line for line in lines[1:] if line.split(",")[0] in ids]))
    desc = [f"algorithms_deterministic: {','.join(sorted(ids, key=int))}\n" if line.startswith("algorithms_deterministic:")
            else line for line in (src / "description.txt").read_text().splitlines(keepends=True)]
    (dst / "description.txt").write_text("".join(desc))


def main(sdist: Path) -> None:
    here = Path(__file__).resolve().parent
    (here / "autosklearn").mkdir(exist_ok=True)
    shutil.copy(sdist / "autosklearn" / "__version__.py", here / "autosklearn" / "__version__.py")
    for metric, names in FOLDERS.items():
        for task_type in ("binary", "multiclass"):
            folder = f"{metric}_{task_type}.classification_dense"
            excerpt(sdist / FILES / folder, here / FILES / folder, names)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
