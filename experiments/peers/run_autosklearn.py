"""auto-sklearn 0.15 (``AutoSklearnClassifier`` / ``AutoSklearnRegressor``) with its defaults
(meta-learned warm start, SMAC, ensemble selection), ``time_left_for_this_task`` = the
budget, one job, seed 0, a 3 GB memory limit per trial. It optimizes the study's metric:
balanced accuracy, or RMSE for regression.

auto-sklearn needs scikit-learn 0.24, which does not build on Python 3.11: its virtual
environment uses Python 3.9 (``install.sh``). Text columns are given to it as pandas
categoricals, which it encodes itself.

Model size: the fitted estimator, pickled (it holds the ensemble's members)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runner_common import latency_per_1000, run  # noqa: E402


def _frame(X):  # type: ignore[no-untyped-def]
    X = X.copy()
    for c in X.columns:
        if X[c].dtype == object or str(X[c].dtype) in ("string", "bool"):
            X[c] = X[c].astype(str).where(X[c].notna(), None).astype("category")
    return X


def fit_predict(args, X, y, X_test, out):  # type: ignore[no-untyped-def]
    import pickle

    import autosklearn
    import autosklearn.metrics as am
    from autosklearn.classification import AutoSklearnClassifier
    from autosklearn.regression import AutoSklearnRegressor

    classify = args.problem != "regression"
    cls = AutoSklearnClassifier if classify else AutoSklearnRegressor
    model = cls(time_left_for_this_task=int(args.budget), n_jobs=1, seed=0, memory_limit=3072,
                metric=am.balanced_accuracy if classify else am.root_mean_squared_error,
                tmp_folder=str(out / "autosklearn_tmp"), delete_tmp_folder_after_terminate=True)
    X, X_test = _frame(X), _frame(X_test)
    for c in X.columns:  # the test rows' categories as the training rows'
        if str(X[c].dtype) == "category":
            X_test[c] = X_test[c].astype(str).where(X_test[c].notna(), None).astype(X[c].dtype)
    t0 = time.perf_counter()
    model.fit(X, y.astype(str) if classify else y)
    fit_s = time.perf_counter() - t0
    with open(out / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    return {"pred": model.predict(X_test), "fit_s": fit_s, "model_bytes": (out / "model.pkl").stat().st_size,
            "latency_s_per_1000": latency_per_1000(model.predict, X_test),
            "versions": {"auto-sklearn": autosklearn.__version__},
            "info": {"n_models": len(model.get_models_with_weights())}}


if __name__ == "__main__":
    raise SystemExit(run(fit_predict))
