"""autometa through its public command line and API, run with the project's own Python:
``autometa tune train.csv --label Y --time-budget B --out DIR`` (one thread per fit,
``--n-jobs 1``; ``--no-record`` and a study-private meta-database, so that no held-out table
enters the store a later task reads), then :func:`autometa.load_model` predicts the test
rows. ``--preset noens`` adds ``--no-ensemble`` (when the installed CLI has it).

Wall time is the whole ``autometa tune`` command (start-up, loading and refit included);
model size is ``model.joblib``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runner_common import latency_per_1000, run  # noqa: E402


def fit_predict(args, X, y, X_test, out):  # type: ignore[no-untyped-def]
    import autometa
    from autometa import load_model

    cli = Path(sys.executable).with_name("autometa")
    run_dir = out / "run"
    metadb = os.environ.get("VS_PEERS_METADB", f"sqlite:///{out / 'metadb.sqlite'}")
    cmd = [str(cli), "tune", args.train, "--label", args.label, "--time-budget", f"{args.budget:g}",
           "--out", str(run_dir), "--n-jobs", "1", "--no-record", "--metadb", metadb,
           "--problem-type", args.problem, "--top", "3"]
    presets = [p for p in args.preset.split(",") if p]
    if "noens" in presets:
        cmd.append("--no-ensemble")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    fit_s = time.perf_counter() - t0
    (out / "tune_stdout.txt").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"autometa tune exited {proc.returncode}: {last}")
    model_path = run_dir / "model.joblib"
    saved = load_model(model_path)

    def predict(frame):  # type: ignore[no-untyped-def]
        return saved.predict(frame)["prediction"]

    return {"pred": predict(X_test), "fit_s": fit_s, "model_bytes": model_path.stat().st_size,
            "latency_s_per_1000": latency_per_1000(predict, X_test),
            "versions": {"autometa": autometa.__version__, "git": os.environ.get("VS_PEERS_AUTOMETA_GIT", "")}}


if __name__ == "__main__":
    raise SystemExit(run(fit_predict))
