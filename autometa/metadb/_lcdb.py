"""Import the Learning Curve Database (LCDB, Mohr et al. 2022) shipped by the ``lcdb`` package:
learning curves of 20 scikit-learn learners (default settings) on OpenML datasets, and the
OpenML qualities of those datasets.

For each dataset and learner, the largest training-set anchor is stored as the evaluation
(mean over LCDB's outer x inner seeds of the test score), per metric: accuracy, ROC AUC,
log loss and F1. The full curves stay in the package; ``anchor`` in the run key records
which training size the stored scores belong to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from autometa.exceptions import InputError
from autometa.metadb._schema import MEAN_SPLIT
from autometa.metadb._store import EvalRecord, SQLMetaDB, _int

__all__ = ["import_lcdb", "LCDBImport", "LCDB_METRICS", "lcdb_curves", "rung_agreement"]

#: LCDB file suffix -> autometa metric name.
LCDB_METRICS = {"accuracy": "accuracy", "auc": "roc_auc", "logloss": "log_loss", "f1": "f1"}
_SOURCE = "lcdb"


@dataclass
class LCDBImport:
    datasets: list[int] = field(default_factory=list)
    learners: list[str] = field(default_factory=list)
    evaluations: int = 0
    qualities: int = 0


def _package_file(name: str) -> Path:
    """A data file of the installed ``lcdb`` distribution, found without importing the
    package (its ``__init__`` imports optional dependencies it does not declare)."""
    try:
        path = Path(str(metadata.distribution("lcdb").locate_file(f"lcdb/{name}")))
    except metadata.PackageNotFoundError:
        raise InputError("The LCDB importer needs the 'lcdb' package: pip install 'autometa[data]'.") from None
    if not path.is_file():
        raise InputError(f"The installed lcdb package has no {name}; reinstall it (pip install --force-reinstall lcdb).")
    return path


def _read_curves(metric: str, dataset_ids: set[int] | None) -> pd.DataFrame:
    """One metric's curves, restricted to ``dataset_ids`` while reading (the files are large)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv

    columns = ["openmlid", "learner", "size_train", "outer_seed", "inner_seed", "traintime", "score_test"]
    table = pacsv.read_csv(
        _package_file(f"database-{metric}.csv"), convert_options=pacsv.ConvertOptions(include_columns=columns)
    )
    if dataset_ids is not None:
        table = table.filter(pc.is_in(table["openmlid"], value_set=pa.array(sorted(dataset_ids))))
    return table.to_pandas()


def import_lcdb(
    db: SQLMetaDB,
    *,
    dataset_ids: Iterable[int] | None = None,
    metrics: Iterable[str] = tuple(LCDB_METRICS),
) -> LCDBImport:
    """Import LCDB's largest-anchor scores and its OpenML qualities into ``db``.

    Parameters
    ----------
    dataset_ids : iterable of int, optional
        OpenML dataset ids to import (all 248 by default).
    metrics : iterable of str
        LCDB metrics among ``accuracy``, ``auc``, ``logloss``, ``f1``.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in LCDB_METRICS]
    if unknown:
        raise InputError(f"Unknown LCDB metric(s) {unknown}; choose from {list(LCDB_METRICS)}.")
    wanted = None if dataset_ids is None else {int(d) for d in dataset_ids}
    meta = pd.read_csv(_package_file("datasets.csv"))  # first: a clear error when lcdb is missing
    db.add_source(_SOURCE, "lcdb", description="Learning Curve Database (Mohr et al. 2022): 20 sklearn learners, default settings",
                  versions={"lcdb": metadata.version("lcdb"), "protocol": "largest anchor, mean over outer x inner seeds, test score"})
    if wanted is not None:
        meta = meta[meta.openmlid.isin(wanted)]

    # Largest anchor per (dataset, learner), averaged over seeds, for every metric.
    per_metric = []
    for m in metrics:
        df = _read_curves(m, wanted)
        if df.empty:
            continue
        largest = df.groupby(["openmlid", "learner"])["size_train"].transform("max")
        top = df[df.size_train == largest]
        agg = top.groupby(["openmlid", "learner"]).agg(
            size_train=("size_train", "max"), traintime=("traintime", "mean"), score=("score_test", "mean"),
            n_seeds=("score_test", "size"),
        )
        agg["metric"] = LCDB_METRICS[m]
        per_metric.append(agg.reset_index())
    report = LCDBImport()
    if not per_metric:
        return report
    scores = pd.concat(per_metric, ignore_index=True)
    meta_by_id = meta.set_index("openmlid")
    for did, group in scores.groupby("openmlid"):
        did = int(did)
        q = meta_by_id.loc[did].to_dict() if did in meta_by_id.index else {}
        n_classes = q.get("NumberOfClasses")
        n_cls = int(n_classes) if n_classes is not None and n_classes == n_classes else None
        name = f"lcdb/openml-dataset/{did}"
        db.add_task(
            name, source=_SOURCE,
            problem_type="classification" if n_cls is None else ("binary" if n_cls == 2 else "multiclass"),
            n_rows=_int(q.get("NumberOfInstances")), n_features=_int(q.get("NumberOfFeatures")), n_classes=n_cls,
            openml_dataset_id=did, protocol={"openml_name": q.get("Name"), "lcdb": "largest anchor, test score"},
        )
        if q:
            qualities = {k: v for k, v in q.items() if k != "Name" and isinstance(v, (int, float, np.number))}
            report.qualities += db.add_metafeatures(name, qualities, extractor="openml", version="lcdb")
        records = []
        for learner, g in group.groupby("learner"):
            anchor = int(g.size_train.max())
            records.append(EvalRecord(
                {"family": f"lcdb:{learner}"},
                {row.metric: float(row.score) for row in g.itertuples()},
                MEAN_SPLIT, "ok", float(g.traintime.mean()), f"anchor={anchor}",
            ))
        report.evaluations += db.add_evaluations(name, records, source=_SOURCE)
        report.datasets.append(did)
    report.learners = sorted(scores.learner.unique().tolist())
    return report


def lcdb_curves(metric: str = "accuracy", dataset_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """LCDB's learning curves: the mean test score over its seeds of every learner (default
    settings) at every training-set size, one row per ``dataset`` (OpenML id),
    ``learner`` and ``rows``, with the mean ``fit_time_s``."""
    if metric not in LCDB_METRICS:
        raise InputError(f"The LCDB metric must be one of {', '.join(LCDB_METRICS)}; got {metric!r}.")
    raw = _read_curves(metric, None if dataset_ids is None else {int(d) for d in dataset_ids})
    out = (raw.groupby(["openmlid", "learner", "size_train"], observed=True)
           .agg(score=("score_test", "mean"), fit_time_s=("traintime", "mean")).reset_index())
    out = out.rename(columns={"openmlid": "dataset", "size_train": "rows"})
    if metric == "logloss":  # higher is better everywhere below
        out["score"] = -out["score"]
    return out


def rung_agreement(curves: pd.DataFrame, *, eta: int = 3, min_learners: int = 8) -> pd.DataFrame:
    """How well scores on fewer rows pick the learners that are best on all of them: what
    successive halving bets on when it keeps the best ``1/eta`` of a rung.

    For each dataset, the top anchor is the largest training size at which at least
    ``min_learners`` learners have a score; every smaller anchor is compared with it on
    the learners scored at both.

    Parameters
    ----------
    curves : DataFrame
        ``dataset``, ``learner``, ``rows``, ``score`` (higher is better), as
        :func:`lcdb_curves` returns.

    Returns
    -------
    DataFrame
        One row per dataset and lower anchor: ``rows`` and ``top_rows``, ``share``
        (their ratio), ``learners``, ``spearman`` (rank correlation of the scores at the
        two sizes), ``survives`` (the best learner at the top anchor is among the best
        ``ceil(learners / eta)`` at the lower one) and ``regret`` (the top anchor's best
        score minus the best top-anchor score among the learners kept at the lower one).
    """
    from scipy.stats import spearmanr

    rows: list[dict[str, float]] = []
    for dataset, g in curves.groupby("dataset"):
        wide = g.pivot_table(index="learner", columns="rows", values="score", aggfunc="mean")
        counts = wide.notna().sum()
        full = [a for a in counts.index if counts[a] >= min_learners]
        if not full:
            continue
        top = max(full)
        for anchor in [a for a in wide.columns if a < top]:
            pair = wide[[anchor, top]].dropna()
            k = len(pair)
            if k < min_learners or pair[top].nunique() < 2 or pair[anchor].nunique() < 2:
                continue
            keep = pair.sort_values(anchor, ascending=False).index[: int(np.ceil(k / eta))]
            best = pair[top].idxmax()
            rho = spearmanr(pair[anchor], pair[top]).statistic
            rows.append({"dataset": float(dataset), "rows": float(anchor), "top_rows": float(top),
                         "share": float(anchor) / float(top), "learners": float(k), "spearman": float(rho),
                         "survives": float(best in keep), "regret": float(pair[top].max() - pair.loc[keep, top].max())})
    return pd.DataFrame(rows)
