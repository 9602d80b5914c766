"""Speed of autometa.metafeatures.extract_frame, and of pymfe on the same tables.

Tables are synthetic but shaped like real ones, seeded: 90% numeric columns (normal,
log-normal, exponential, integer counts, uniform; on varied scales), 10% nominal columns
(2-30 levels, Zipf-like frequencies), a binary label from a noisy logistic model.

autometa runs on 2,000 x 20 up to 100,000 x 100 (all four groups, landmarkers on a
2,000-row subsample), with and without 2% missing values. pymfe runs on the complete
tables up to 5,000 x 50 (it has no missing-value support and grows too slow beyond), in
two configurations:

* ``comparable``: only the features both libraries compute (the list of
  tests/test_metafeatures.py), summaries mean/min/max/median, landmarkers on min-max
  scaled data with one-hot nominal columns;
* ``full groups``: pymfe's general, statistical, info-theory and landmarking groups with
  their default features and summaries (what a user gets by asking for those groups).

Single core (BLAS threads pinned to 1), imports excluded; autometa's time is the median
of ``--repeats`` calls after a first call (also reported), pymfe's a single call. About a
minute in all. Writes experiments/results/bench_metafeatures.csv and .md.

    PYTHONPATH=. python experiments/bench_metafeatures.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from autometa.metafeatures import extract_frame  # noqa: E402

RESULTS = Path(__file__).parent / "results"

PYMFE_COMPARABLE = [
    "nr_inst", "nr_attr", "nr_class", "nr_num", "nr_cat", "nr_bin", "attr_to_inst", "freq_class",
    "mean", "sd", "skewness", "kurtosis", "cor",
    "class_ent", "attr_ent", "mut_inf", "eq_num_attr", "ns_ratio",
]  # fmt: skip
PYMFE_LANDMARKERS = ["best_node", "naive_bayes", "one_nn", "linear_discr"]
PYMFE_GROUPS = ["general", "statistical", "info-theory", "landmarking"]


def make_table(n_rows: int, n_cols: int, *, missing: float, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A seeded mixed table: 90% numeric columns of five shapes, 10% nominal columns."""
    rng = np.random.default_rng(seed)
    n_nominal = max(1, n_cols // 10)
    n_numeric = n_cols - n_nominal
    columns: dict[str, object] = {}
    latent = rng.normal(size=(n_rows, 3))
    for j in range(n_numeric):
        scale, shift = rng.uniform(0.1, 100.0), rng.uniform(-50.0, 50.0)
        base = latent[:, j % 3] * rng.uniform(0.0, 0.8) + rng.normal(size=n_rows)
        kind = j % 5
        if kind == 0:
            col = shift + scale * base
        elif kind == 1:
            col = np.exp(base / 2)
        elif kind == 2:
            col = rng.exponential(scale, size=n_rows)
        elif kind == 3:
            col = rng.poisson(np.exp(1 + base / 3)).astype(float)
        else:
            col = rng.uniform(0, scale, size=n_rows)
        columns[f"x{j}"] = col
    for j in range(n_nominal):
        k = int(rng.integers(2, 31))
        weights = 1.0 / np.arange(1, k + 1)
        codes = rng.choice(k, size=n_rows, p=weights / weights.sum())
        columns[f"c{j}"] = pd.Categorical.from_codes(codes, categories=[f"v{i}" for i in range(k)])
    X = pd.DataFrame(columns)
    if missing > 0:
        for c in X.columns[: n_numeric]:
            X.loc[rng.random(n_rows) < missing, c] = np.nan
    logit = latent @ np.array([1.0, -0.7, 0.4]) + 0.5 * (X["c0"].cat.codes.to_numpy() == 0)
    y = pd.Series(np.where(logit + rng.logistic(size=n_rows) > 0, "yes", "no"), name="label")
    return X, y


def time_autometa(X: pd.DataFrame, y: pd.Series, repeats: int) -> tuple[float, float, int]:
    """(first call, median of the next ``repeats`` calls, number of values)."""
    start = time.perf_counter()
    extract_frame(X, y, "binary")  # includes first-touch of memory for this size
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        values = extract_frame(X, y, "binary")
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), len(values)


def _pymfe_input(X: pd.DataFrame) -> tuple[np.ndarray, list[int]]:
    nominal = [i for i, c in enumerate(X.columns) if isinstance(X[c].dtype, pd.CategoricalDtype)]
    data = np.empty(X.shape, dtype=object)
    for i, c in enumerate(X.columns):
        data[:, i] = X[c].cat.codes.to_numpy() if i in nominal else X[c].to_numpy()
    return data, nominal


def time_pymfe(X: pd.DataFrame, y: pd.Series, config: str) -> tuple[float, int]:
    from pymfe.mfe import MFE

    data, nominal = _pymfe_input(X)
    target = y.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        if config == "comparable":
            summary = ["mean", "min", "max", "median"]
            mfe = MFE(groups="all", features=PYMFE_COMPARABLE, summary=summary, random_state=0)
            mfe.fit(data, target, cat_cols=nominal, transform_cat=None, suppress_warnings=True)
            names, _ = mfe.extract(suppress_warnings=True)
            lm = MFE(groups=["landmarking"], features=PYMFE_LANDMARKERS, summary=["mean"], random_state=0)
            lm.fit(data, target, cat_cols=nominal, transform_cat="one-hot", rescale="min-max", suppress_warnings=True)
            lm_names, _ = lm.extract(suppress_warnings=True)
            n_values = len(names) + len(lm_names)
        else:
            mfe = MFE(groups=PYMFE_GROUPS, random_state=0)
            mfe.fit(data, target, cat_cols=nominal, suppress_warnings=True)
            names, _ = mfe.extract(suppress_warnings=True)
            n_values = len(names)
        return time.perf_counter() - start, n_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small tables only (a smoke run)")
    args = parser.parse_args()

    autometa_sizes = [(2_000, 20), (5_000, 50), (20_000, 100), (100_000, 100)]
    pymfe_sizes = {(2_000, 20): ("comparable", "full groups"), (5_000, 50): ("comparable", "full groups")}
    if args.quick:
        autometa_sizes, pymfe_sizes = [(2_000, 20)], {(2_000, 20): ("comparable",)}

    rows = []
    for n_rows, n_cols in autometa_sizes:
        for missing in (0.0, 0.02):
            X, y = make_table(n_rows, n_cols, missing=missing)
            first, seconds, n_values = time_autometa(X, y, args.repeats)
            rows.append(dict(tool="autometa", config="all groups", rows=n_rows, cols=n_cols, missing=missing,
                             seconds=round(seconds, 3), first_call_seconds=round(first, 3), values=n_values))  # fmt: skip
            print(f"autometa {n_rows} x {n_cols} missing={missing}: {seconds:.2f} s (first call {first:.2f} s)", flush=True)
    for (n_rows, n_cols), configs in pymfe_sizes.items():
        X, y = make_table(n_rows, n_cols, missing=0.0)
        for config in configs:
            seconds, n_values = time_pymfe(X, y, config)
            rows.append(dict(tool="pymfe", config=config, rows=n_rows, cols=n_cols, missing=0.0,
                             seconds=round(seconds, 3), first_call_seconds=round(seconds, 3), values=n_values))  # fmt: skip
            print(f"pymfe {config} {n_rows} x {n_cols}: {seconds:.2f} s", flush=True)

    table = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "bench_metafeatures.csv", index=False)
    write_markdown(table, RESULTS / "bench_metafeatures.md", args.repeats)


def write_markdown(table: pd.DataFrame, path: Path, repeats: int) -> None:
    ours = table[table.tool == "autometa"].set_index(["rows", "cols", "missing"])["seconds"]
    lines = [
        "# Meta-feature extraction speed: autometa vs pymfe",
        "",
        f"Single core (BLAS threads 1), imports excluded. autometa: `seconds` is the median of {repeats} calls "
        "after a first call, which is also reported (`first call`, it pays for first-touch memory); pymfe: one call.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end (above 1: other processes shared the cores).",
        f"Versions: autometa {version('autometa')}, pymfe {version('pymfe')}, numpy {np.__version__}, "
        f"pandas {pd.__version__}, scikit-learn {version('scikit-learn')}.",
        "",
        "| tool | configuration | rows x cols | missing | seconds | first call | values | autometa / pymfe |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in table.itertuples():
        ratio = ""
        if r.tool == "pymfe":
            ratio = f"{ours[(r.rows, r.cols, 0.0)] / r.seconds:.3f}"
        lines.append(
            f"| {r.tool} | {r.config} | {r.rows:,} x {r.cols} | {r.missing:.0%} | {r.seconds:.2f} "
            f"| {r.first_call_seconds:.2f} | {r.values} | {ratio} |"
        )
    lines += [
        "",
        "`values`: numbers returned (autometa: named meta-features, NaN where undefined; pymfe: "
        "feature x summary values). `autometa / pymfe` < 1 means autometa is faster on the same "
        "complete table. pymfe needs complete data and is not run beyond 5,000 x 50 to keep the "
        "script short; its time grows much faster with the table than autometa's (compare the two sizes).",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
