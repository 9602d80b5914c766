"""Configuration -> a full scikit-learn Pipeline (preprocessing + estimator).

Missing values and categorical columns are handled inside the pipeline, so the fitted
object can be applied to new raw data with the same columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from autometa.spaces._families import FAMILIES
from autometa.spaces._space import split_config

__all__ = ["build_pipeline", "onehot_preprocessor", "MAX_ONEHOT_CATEGORIES"]

#: One-hot columns per categorical feature; rarer categories share one "infrequent" column.
MAX_ONEHOT_CATEGORIES = 32
_MAX_ORDINAL_CATEGORIES = 250  # below HistGradientBoosting's 255-bin limit


def _preprocessor(encoding: str, numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    if encoding == "onehot":
        num = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler())
        cat = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="__missing__"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_ONEHOT_CATEGORIES, sparse_output=False),
        )
    elif encoding == "ordinal":
        num = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1,
            max_categories=_MAX_ORDINAL_CATEGORIES,
        )
    else:  # native: gradient boosting handles NaN and categories itself
        num = "passthrough"
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan,
            max_categories=_MAX_ORDINAL_CATEGORIES,
        )
    return ColumnTransformer(
        [("cat", cat, categorical), ("num", num, numeric)],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def onehot_preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """The one-hot preprocessing of autometa's pipelines (median-imputed and standardized
    numbers with missing-value indicators, one-hot categories), unfitted."""
    return _preprocessor("onehot", numeric, categorical)


def _encoded_width(X: pd.DataFrame, categorical: list[str], numeric: list[str]) -> int:
    width = len(numeric) + int(X[numeric].isna().any().sum()) if numeric else 0
    for c in categorical:
        width += min(X[c].nunique(dropna=False), MAX_ONEHOT_CATEGORIES)
    return max(1, width)


def build_pipeline(
    config: Mapping[str, Any],
    X: pd.DataFrame,
    problem_type: str,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    needs_proba: bool = False,
) -> Pipeline:
    """The unfitted pipeline for ``config`` on data shaped like ``X``.

    Parameters
    ----------
    config : mapping
        A configuration of the combined space (``family`` plus ``"<family>:<name>"`` keys).
    X : DataFrame
        Training features, categorical columns as ``category`` dtype (as :class:`Task` gives).
    problem_type : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    needs_proba : bool
        Whether class probabilities are required (turns on SVC's Platt scaling).
    """
    family_name, params = split_config(config)
    family = FAMILIES[family_name]
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    ctx: dict[str, Any] = {
        "seed": seed,
        "n_jobs": n_jobs,
        "n_rows": X.shape[0],
        "n_encoded": _encoded_width(X, categorical, numeric),
        "needs_proba": needs_proba,
    }
    if (family.encoding == "native" and categorical
            and all(len(X[c].cat.categories) <= _MAX_ORDINAL_CATEGORIES for c in categorical)):
        # The estimator reads the categories from the DataFrame's dtypes itself (and picks
        # its columns by name). A column transformer in front would build a float64 copy of
        # the whole table, held while the estimator makes its own: on 1,000,000 rows x 49
        # features the fit peaked at 6.0x the table instead of 4.9x, as plain scikit-learn
        # does (experiments/results/memory_floor.md). Without categories the transformer's
        # copy is the one the estimator would make, and it keeps columns picked by name.
        ctx["categorical_mask"] = "from_dtype"
        return Pipeline([("preprocess", "passthrough"), ("model", family.build(params, problem_type, ctx))])
    if family.encoding == "native":  # more categories than its bins: ordinal codes, rare ones grouped
        ctx["categorical_mask"] = [True] * len(categorical) + [False] * len(numeric) if categorical else None
    estimator = family.build(params, problem_type, ctx)
    if problem_type == "regression" and family.name in ("svm", "mlp"):
        estimator = TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
    return Pipeline([("preprocess", _preprocessor(family.encoding, numeric, categorical)), ("model", estimator)])
