"""scikit-learn defaults: HistGradientBoosting (``--preset hgb``) or RandomForest
(``--preset rf``) with the library's default hyperparameters, one thread.

The only preprocessing is what the estimator needs to accept the table: text columns
ordinal-encoded (HGB treats them as categorical, as its ``categorical_features`` option
does for category dtypes); for the forest, missing numbers take the column median."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runner_common import latency_per_1000, run  # noqa: E402


def fit_predict(args, X, y, X_test, out):  # type: ignore[no-untyped-def]
    import joblib
    import numpy as np
    import pandas as pd
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    cat = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]))]
    num = [c for c in X.columns if c not in cat]
    # HGB's native categorical support takes at most max_bins - 1 = 254 categories per column;
    # wider text columns enter as their ordinal codes
    cat.sort(key=lambda c: X[c].nunique() > 254)
    n_small = sum(X[c].nunique() <= 254 for c in cat)
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    classify = args.problem != "regression"
    t0 = time.perf_counter()
    if args.preset == "hgb":
        prep = ColumnTransformer([("cat", enc, cat), ("num", "passthrough", num)], verbose_feature_names_out=False)
        est_cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        est = est_cls(random_state=0, categorical_features=list(range(n_small)) or None)
    elif args.preset == "rf":
        prep = ColumnTransformer([("cat", make_pipeline(enc, SimpleImputer(strategy="constant", fill_value=-1)), cat),
                                  ("num", SimpleImputer(strategy="median"), num)])
        est = (RandomForestClassifier if classify else RandomForestRegressor)(random_state=0, n_jobs=1)
    else:
        raise ValueError(f"--preset must be hgb or rf, got {args.preset!r}")
    model = make_pipeline(prep, est)
    yy = y.astype(str) if classify else y
    model.fit(X, yy)
    fit_s = time.perf_counter() - t0
    joblib.dump(model, out / "model.joblib")
    return {"pred": model.predict(X_test), "fit_s": fit_s, "model_bytes": (out / "model.joblib").stat().st_size,
            "latency_s_per_1000": latency_per_1000(model.predict, X_test),
            "versions": {"scikit-learn": sklearn.__version__}}


if __name__ == "__main__":
    raise SystemExit(run(fit_predict))
