"""AutoGluon's TabularPredictor with a preset (``--preset medium_quality`` or
``best_quality``), ``time_limit`` = the budget, one CPU (``num_cpus=1``, ``num_gpus=0``),
the study's metric (balanced accuracy or RMSE). Model size: the predictor's folder."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runner_common import latency_per_1000, path_size, run  # noqa: E402


def fit_predict(args, X, y, X_test, out):  # type: ignore[no-untyped-def]
    import autogluon.tabular
    from autogluon.tabular import TabularPredictor

    label = args.label
    train = X.assign(**{label: y.values})
    metric = "root_mean_squared_error" if args.problem == "regression" else "balanced_accuracy"
    path = out / "ag"
    t0 = time.perf_counter()
    predictor = TabularPredictor(label=label, problem_type=args.problem, eval_metric=metric, path=str(path),
                                 verbosity=0)
    predictor.fit(train, time_limit=args.budget, presets=args.preset or "medium_quality", num_cpus=1, num_gpus=0)
    fit_s = time.perf_counter() - t0
    return {"pred": predictor.predict(X_test), "fit_s": fit_s, "model_bytes": path_size(path),
            "latency_s_per_1000": latency_per_1000(predictor.predict, X_test),
            "versions": {"autogluon.tabular": autogluon.tabular.__version__},
            "info": {"best_model": predictor.model_best}}


if __name__ == "__main__":
    raise SystemExit(run(fit_predict))
