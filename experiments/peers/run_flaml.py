"""FLAML's AutoML with its default search (all its estimators), ``time_budget`` = the
budget, one thread (``n_jobs=1``), seed 0. It optimizes the study's metric: balanced
accuracy through a custom metric (FLAML has none built in), RMSE for regression.

Model size: the fitted best estimator with FLAML's data and label transformers (what
``AutoML.predict`` needs), pickled; the AutoML object itself also keeps the training data."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runner_common import latency_per_1000, run  # noqa: E402


def balanced_accuracy_loss(X_val, y_val, estimator, labels, X_train, y_train, *args, **kwargs):  # type: ignore[no-untyped-def]
    from sklearn.metrics import balanced_accuracy_score

    score = balanced_accuracy_score(y_val, estimator.predict(X_val))
    return 1.0 - score, {"balanced_accuracy": score}


def fit_predict(args, X, y, X_test, out):  # type: ignore[no-untyped-def]
    import pickle

    import flaml
    from flaml import AutoML

    automl = AutoML()
    classify = args.problem != "regression"
    t0 = time.perf_counter()
    automl.fit(X_train=X, y_train=y, task="classification" if classify else "regression",
               metric=balanced_accuracy_loss if classify else "rmse", time_budget=args.budget,
               n_jobs=1, seed=0, verbose=0, log_file_name=str(out / "flaml.log"))
    fit_s = time.perf_counter() - t0
    with open(out / "model.pkl", "wb") as fh:
        pickle.dump((automl.model, automl._transformer, automl._label_transformer), fh)
    return {"pred": automl.predict(X_test), "fit_s": fit_s, "model_bytes": (out / "model.pkl").stat().st_size,
            "latency_s_per_1000": latency_per_1000(automl.predict, X_test),
            "versions": {"flaml": flaml.__version__},
            "info": {"best_estimator": automl.best_estimator}}


if __name__ == "__main__":
    raise SystemExit(run(fit_predict))
