"""What every peer runner shares (stdlib, NumPy and pandas only, so that each peer's own
virtual environment can import it): the command line, reading the fixed split, timing
prediction and writing the result.

A runner is called as

    <venv>/bin/python experiments/peers/run_<peer>.py --train T.csv --test S.csv --label Y
        --problem {binary,multiclass,regression} --budget SECONDS --out DIR [--preset NAME]

and writes ``DIR/pred.csv`` (one column ``prediction``, one row per test row) and
``DIR/result.json`` (status, error, fit wall time, model size on disk, prediction latency
per 1,000 rows, versions). Scoring happens in ``vs_peers.py``, identically for every peer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "TORCH_NUM_THREADS"):
    os.environ[_var] = "1"

import pandas as pd  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--problem", required=True, choices=["binary", "multiclass", "regression"])
    ap.add_argument("--budget", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="")
    return ap.parse_args(argv)


def read(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Training features, training label and test features (the test label is dropped)."""
    train = pd.read_csv(args.train)
    test = pd.read_csv(args.test)
    y = train.pop(args.label)
    test = test.drop(columns=[args.label])
    return train, y, test


def path_size(path: Path) -> int:
    """Bytes on disk of a file or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def latency_per_1000(predict: Callable[[pd.DataFrame], Any], X: pd.DataFrame, repeats: int = 3) -> float:
    """Seconds per 1,000 rows to predict the whole test frame in one call: one warm-up call,
    then the fastest of ``repeats`` timed calls."""
    predict(X)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(X)
        best = min(best, time.perf_counter() - t0)
    return best / len(X) * 1000.0


def run(fit_predict: Callable[[argparse.Namespace, pd.DataFrame, pd.Series, pd.DataFrame, Path], dict[str, Any]],
        argv: list[str] | None = None) -> int:
    """Parse the command line, call ``fit_predict(args, X, y, X_test, out)`` and write the
    result. ``fit_predict`` returns a dict with ``pred`` (array-like), ``fit_s``,
    ``model_bytes``, ``latency_s_per_1000`` and optionally ``versions`` and ``info``."""
    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"status": "ok", "error": ""}
    try:
        X, y, X_test = read(args)
        got = fit_predict(args, X, y, X_test, out)
        pred = pd.Series(list(got.pop("pred")), name="prediction")
        if len(pred) != len(X_test):
            raise RuntimeError(f"{len(pred)} predictions for {len(X_test)} test rows")
        pred.to_csv(out / "pred.csv", index=False)
        result.update(got)
    except Exception as exc:  # noqa: BLE001 - a peer that fails is a result too
        result["status"] = "error"
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        (out / "traceback.txt").write_text(traceback.format_exc())
    result["python"] = sys.version.split()[0]
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return 0 if result["status"] == "ok" else 1
