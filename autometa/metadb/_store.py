"""SQLMetaDB: the meta-database on any SQLAlchemy URL (SQLite by default, PostgreSQL tested)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, delete, event, func, make_url, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, DBAPIError

from autometa.exceptions import InputError
from autometa.metadb._schema import (
    MEAN_SPLIT,
    SCHEMA_VERSION,
    TUNED_SOURCE,
    Base,
    Configuration,
    Ensemble,
    EnsembleMember,
    Evaluation,
    Family,
    MetaFeature,
    Score,
    Source,
    TaskRow,
)
from autometa.spaces import FAMILY_KEY, SPACE_VERSION, config_hash, config_key

__all__ = ["SQLMetaDB", "EvalRecord", "default_url"]

_SOURCE_KINDS = ("own", "openml", "lcdb")


def default_url() -> str:
    """``$AUTOMETA_METADB_URL``, else a SQLite file in ``~/.autometa/``."""
    url = os.environ.get("AUTOMETA_METADB_URL")
    if url:
        return url
    return f"sqlite:///{Path.home() / '.autometa' / 'metadb.sqlite'}"


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation to store: a configuration, its scores (metric -> value), a split
    (``-1`` for the mean over splits), status and fit time."""

    config: Mapping[str, Any]
    scores: Mapping[str, float] = field(default_factory=dict)
    split: int = MEAN_SPLIT
    status: str = "ok"
    fit_time_s: float | None = None
    run_key: str = ""


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, a generous busy timeout, and BEGIN IMMEDIATE so that concurrent writers
    queue for the lock instead of failing on a read-to-write upgrade."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    else:  # other databases: plain inserts of rows not present yet
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert(), row)
            except Exception:
                pass


def _int(v: Any) -> int | None:
    """An integer, or None for missing/NaN/unparseable values (OpenML qualities, CSV cells)."""
    f = _float(v)
    return None if f is None else int(f)


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


_CONNECT_TIMEOUT_S = 5  # how long a database server may take to answer before the store gives up
_URL_EXAMPLES = "'sqlite:///path/metadb.sqlite' or 'postgresql+psycopg://user@host/db'"


def _engine(url: str) -> Engine:
    """The engine of a meta-database URL, or an InputError naming the URL (password hidden)
    and what to do. A server gets a connect timeout, so a host that does not answer fails
    within seconds."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"The meta-database URL must be a SQLAlchemy URL such as {_URL_EXAMPLES}; got {url!r}.") from None
    shown = parsed.render_as_string(hide_password=True)
    kwargs: dict[str, Any] = {}
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        directory = Path(database).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"Cannot create the directory {str(directory)!r} of the SQLite meta-database {shown!r} "
                f"({exc.strerror}); choose a writable location."
            ) from None
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg", "psycopg2") \
            and "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_S}
    try:
        return create_engine(parsed, **kwargs)
    except ModuleNotFoundError as exc:
        hint = "pip install the driver of your database"
        if parsed.get_backend_name() == "postgresql":
            hint = ("pip install 'autometa[distributed]', which installs psycopg 3 for URLs that start with "
                    "'postgresql+psycopg://'")
        raise InputError(f"The meta-database URL {shown!r} needs the driver {exc.name!r}: {hint}.") from None
    except Exception as exc:
        raise InputError(f"Cannot open the meta-database URL {shown!r} ({exc}); URLs look like {_URL_EXAMPLES}.") from None


def _frame(result: Any, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a DataFrame. Built from plain tuples: pandas inspects SQLAlchemy's
    ``Row`` objects attribute by attribute, which took 0.8 s for the 32,000 scores of the
    shipped performance matrix against 0.03 s for tuples."""
    return pd.DataFrame.from_records([tuple(r) for r in result.all()], columns=columns)


class SQLMetaDB:
    """The meta-database: tasks, meta-features, configurations and their evaluations.

    Parameters
    ----------
    url : str, optional
        Any SQLAlchemy URL (``sqlite:///path.sqlite``,
        ``postgresql+psycopg://user@host/db``); :func:`default_url` when omitted.
        Tables are created if missing.
    shipped : bool, default True
        Load the meta-dataset shipped with autometa into the store on its first read
        (:meth:`ensure_shipped`), so that any store (the default one, a PostgreSQL
        server, another SQLite file) starts with it. False for a store that is to hold
        only what is written to it; ``$AUTOMETA_METADATA_DIR=none`` turns it off for all.
        Writes never load it, so a process that only records runs stays cheap.

    Raises
    ------
    InputError
        At once when the URL is malformed, its driver is missing, or the database cannot
        be reached (servers get a connect timeout of a few seconds) or created.

    Notes
    -----
    Safe for concurrent writers in several processes: every write is one transaction,
    get-or-create uses ``INSERT ... ON CONFLICT DO NOTHING`` on unique keys, and SQLite
    runs in WAL mode with ``BEGIN IMMEDIATE``. One instance per process (engines are not
    shared across ``fork``).
    """

    def __init__(self, url: str | None = None, *, shipped: bool = True) -> None:
        self.url = url or default_url()
        self.shipped = shipped
        self._shipped_pending = shipped
        self.engine = _engine(self.url)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        try:
            Base.metadata.create_all(self.engine)
        except DBAPIError as exc:
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            self.engine.dispose()
            if self.engine.dialect.name == "sqlite":
                raise InputError(
                    f"Cannot open the SQLite meta-database {self!r} ({first}); check that the file and its "
                    "directory are writable."
                ) from None
            raise InputError(
                f"Cannot connect to the meta-database {self!r} ({first}); is the server running and reachable, "
                "and are the URL's user, password and database right?"
            ) from None

    def ensure_shipped(self) -> bool:
        """Load the shipped meta-dataset (:func:`~autometa.metadb.shipped_dir`) unless this
        store holds its current build already; returns whether it loaded it.

        A store opened with ``shipped=True`` calls it before its first read, so callers
        need not; call it to load earlier. A newer build (a newer autometa) is loaded on
        top of the one stored. Loading into an empty store takes seconds and is safe when
        several processes do it at once: it only inserts rows not stored yet.
        """
        from autometa.metadb._shipped import build_of, load_shipped, loaded_build, shipped_dir

        self._shipped_pending = False
        d = shipped_dir()
        if d is None or loaded_build(self) == build_of(d):
            return False
        load_shipped(self, d)
        return True

    def _before_read(self) -> None:
        """The first read of a ``shipped=True`` store loads the shipped meta-dataset."""
        if self._shipped_pending:
            self.ensure_shipped()

    def __repr__(self) -> str:
        return f"SQLMetaDB({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes
    def add_source(self, name: str, kind: str, *, description: str = "", versions: Mapping[str, Any] | None = None) -> int:
        """Get or create a source; returns its id."""
        if kind not in _SOURCE_KINDS:
            raise InputError(f"Source kind must be one of {_SOURCE_KINDS}; got {kind!r}.")
        with self.engine.begin() as conn:
            _insert_ignore(conn, Source.__table__, [{
                "name": name, "kind": kind, "description": description,
                "versions": json.dumps(dict(versions or {}), sort_keys=True, default=str),
            }])
            return int(conn.execute(select(Source.id).where(Source.name == name)).scalar_one())

    def add_task(
        self,
        name: str,
        *,
        source: str,
        problem_type: str,
        target: str = "",
        n_rows: int | None = None,
        n_features: int | None = None,
        n_classes: int | None = None,
        openml_task_id: int | None = None,
        openml_dataset_id: int | None = None,
        fingerprint: str | None = None,
        protocol: Mapping[str, Any] | None = None,
    ) -> int:
        """Get or create a task by name (the source must exist); returns its id."""
        with self.engine.begin() as conn:
            source_id = self._source_id(conn, source)
            _insert_ignore(conn, TaskRow.__table__, [{
                "name": name, "source_id": source_id, "problem_type": problem_type, "target": target,
                "n_rows": n_rows, "n_features": n_features, "n_classes": n_classes,
                "openml_task_id": openml_task_id, "openml_dataset_id": openml_dataset_id,
                "fingerprint": fingerprint, "protocol": json.dumps(dict(protocol or {}), sort_keys=True),
            }])
            return int(conn.execute(select(TaskRow.id).where(TaskRow.name == name)).scalar_one())

    def add_metafeatures(
        self, task: str, values: Mapping[str, Any], *, extractor: str = "autometa", version: str = "1"
    ) -> int:
        """Store (or replace) meta-features of a task; returns how many were written."""
        with self.engine.begin() as conn:
            task_id = self._task_id(conn, task)
            conn.execute(
                delete(MetaFeature).where(
                    (MetaFeature.task_id == task_id) & (MetaFeature.extractor == extractor)
                )
            )
            rows = [
                {"task_id": task_id, "name": str(k), "extractor": extractor, "extractor_version": str(version),
                 "value": _float(v)}
                for k, v in values.items()
            ]
            _insert_ignore(conn, MetaFeature.__table__, rows)
        return len(rows)

    def add_evaluations(self, task: str, records: Iterable[EvalRecord], *, source: str) -> int:
        """Store evaluations of configurations on a task in one transaction.

        An evaluation already present (same task, configuration, split, source and run
        key) is left as it is. Returns the number of evaluations newly written.
        """
        records = list(records)
        if not records:
            return 0
        with self.engine.begin() as conn:
            task_id = self._task_id(conn, task)
            source_id = self._source_id(conn, source)
            cfg_ids = self._config_ids(conn, [r.config for r in records])
            before = conn.execute(
                select(func.count()).select_from(Evaluation).where(
                    (Evaluation.task_id == task_id) & (Evaluation.source_id == source_id)
                )
            ).scalar_one()
            _insert_ignore(conn, Evaluation.__table__, [
                {"task_id": task_id, "configuration_id": cfg_ids[config_hash(r.config)], "split": int(r.split),
                 "status": r.status, "fit_time_s": _float(r.fit_time_s), "source_id": source_id, "run_key": r.run_key}
                for r in records
            ])
            rows = conn.execute(
                select(Evaluation.id, Evaluation.configuration_id, Evaluation.split, Evaluation.run_key).where(
                    (Evaluation.task_id == task_id) & (Evaluation.source_id == source_id)
                    & Evaluation.configuration_id.in_(set(cfg_ids.values()))
                )
            ).all()
            eval_ids = {(c, s, k): i for i, c, s, k in rows}
            scores = []
            for r in records:
                eid = eval_ids[(cfg_ids[config_hash(r.config)], int(r.split), r.run_key)]
                scores += [{"evaluation_id": eid, "metric": m, "value": _float(v)} for m, v in r.scores.items()]
            _insert_ignore(conn, Score.__table__, scores)
            after = conn.execute(
                select(func.count()).select_from(Evaluation).where(
                    (Evaluation.task_id == task_id) & (Evaluation.source_id == source_id)
                )
            ).scalar_one()
        return int(after - before)

    def add_configurations(self, configs: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Store configurations (e.g. a fixed design or OpenML setups); returns hash -> id."""
        with self.engine.begin() as conn:
            return self._config_ids(conn, list(configs))

    def add_run(
        self,
        task: Mapping[str, Any],
        trials: Iterable[Mapping[str, Any]],
        *,
        run_key: str,
        task_name: str | None = None,
        versions: Mapping[str, str] | None = None,
        metafeatures: Mapping[str, float] | None = None,
        metafeatures_version: str = "1",
        ensemble: Mapping[str, Any] | None = None,
    ) -> int:
        """Add the trials of one tuning run as own runs; returns the evaluations added.

        The user's meta-database grows with use: each trial becomes an evaluation (mean
        over its splits) and each split a per-split evaluation. The store is handed plain
        records and never reads a run directory.

        Parameters
        ----------
        task : mapping
            What describes the task: ``name``, ``label``, ``problem_type``, ``metric``,
            ``n_rows``, ``n_features``, ``classes`` (or None) and ``fingerprint``
            (``Task.describe()`` plus ``Task.fingerprint()``).
        trials : iterable of mappings
            Each with ``config``, ``scores`` (metric -> value), ``status``, ``fit_time_s``
            and ``fold_scores`` (the task's metric on each split).
        run_key : str
            Identifies the run, so that recording it twice adds nothing.
        task_name : str, optional
            Name of the stored task; ``own/<name>/<fingerprint>`` by default.
        versions : mapping, optional
            Package versions the run used (stored with the ``own`` source).
        metafeatures : mapping, optional
            The task's meta-features (autometa's extractor, ``metafeatures_version``), so
            that later runs find this task among their neighbours.
        ensemble : mapping, optional
            The ensemble the run ended with (``TuneResult.ensemble``): ``members`` (each
            with ``config`` and ``weight``), ``metric``, ``score``, ``single_best_score``
            and ``model``; read back with :meth:`ensembles`.
        """
        missing = [k for k in ("problem_type", "metric", "n_rows", "n_features", "fingerprint") if k not in task]
        if missing:
            raise InputError(f"The task description of a run must have {', '.join(missing)}; got keys {sorted(task)}.")
        name = task_name or f"own/{task.get('name', 'data')}/{task['fingerprint']}"
        self.add_source("own", "own", description="runs of autometa tune", versions=versions or {})
        classes = task.get("classes")
        self.add_task(
            name, source="own", problem_type=str(task["problem_type"]), target=str(task.get("label", "")),
            n_rows=int(task["n_rows"]), n_features=int(task["n_features"]),
            n_classes=len(classes) if classes else None, fingerprint=str(task["fingerprint"]),
        )
        if metafeatures:
            self.add_metafeatures(name, metafeatures, version=metafeatures_version)
        records: list[EvalRecord] = []
        for t in trials:
            scores = {k: (math.nan if v is None else float(v)) for k, v in dict(t["scores"]).items()}
            fit = t.get("fit_time_s")
            records.append(EvalRecord(dict(t["config"]), scores, MEAN_SPLIT, str(t["status"]), fit, run_key))
            records += [
                EvalRecord(dict(t["config"]), {str(task["metric"]): s}, i, str(t["status"]), None, run_key)
                for i, s in enumerate(t.get("fold_scores") or [])
            ]
        added = self.add_evaluations(name, records, source="own")
        if ensemble:
            self.add_ensemble(name, ensemble, source="own", run_key=run_key)
        return added

    def add_ensemble(self, task: str, ensemble: Mapping[str, Any], *, source: str, run_key: str = "") -> int:
        """Store the ensemble of one run on a task (once per task, source and run key);
        returns its id.

        ``ensemble`` has ``members`` (mappings with ``config`` and ``weight``), ``metric``
        and optionally ``score``, ``single_best_score`` and ``model`` (as
        ``TuneResult.ensemble``).
        """
        members = list(ensemble.get("members") or [])
        if not members or any("config" not in m or "weight" not in m for m in members):
            raise InputError(
                "The 'ensemble' of add_ensemble must have members, each with a config and a weight; "
                f"got {[sorted(m) for m in members]!r}."
            )
        if "metric" not in ensemble:
            raise InputError(f"The 'ensemble' of add_ensemble must name its metric; got keys {sorted(ensemble)}.")
        with self.engine.begin() as conn:
            task_id = self._task_id(conn, task)
            source_id = self._source_id(conn, source)
            cfg_ids = self._config_ids(conn, [m["config"] for m in members])
            _insert_ignore(conn, Ensemble.__table__, [{
                "task_id": task_id, "source_id": source_id, "run_key": run_key, "metric": str(ensemble["metric"]),
                "score": _float(ensemble.get("score")), "single_best_score": _float(ensemble.get("single_best_score")),
                "model": str(ensemble.get("model") or "refit"),
            }])
            eid = int(conn.execute(select(Ensemble.id).where(
                (Ensemble.task_id == task_id) & (Ensemble.source_id == source_id) & (Ensemble.run_key == run_key)
            )).scalar_one())
            weights: dict[int, float] = {}
            for m in members:  # one row per configuration: repeated ones add up
                cid = cfg_ids[config_hash(m["config"])]
                weights[cid] = weights.get(cid, 0.0) + float(m["weight"])
            _insert_ignore(conn, EnsembleMember.__table__, [
                {"ensemble_id": eid, "configuration_id": c, "weight": w} for c, w in weights.items()
            ])
        return eid

    # ------------------------------------------------------------------ reads
    def tasks(self) -> pd.DataFrame:
        """All tasks with their source."""
        self._before_read()
        q = select(
            TaskRow.name, Source.name.label("source"), TaskRow.problem_type, TaskRow.target, TaskRow.n_rows,
            TaskRow.n_features, TaskRow.n_classes, TaskRow.openml_task_id, TaskRow.openml_dataset_id,
        ).join(Source, Source.id == TaskRow.source_id).order_by(TaskRow.name)
        with self.engine.connect() as conn:
            return _frame(conn.execute(q), list(q.selected_columns.keys())).set_index("name")

    def metafeatures(self, *, extractor: str = "autometa") -> pd.DataFrame:
        """Meta-features of all tasks: one row per task, one column per meta-feature."""
        self._before_read()
        q = select(TaskRow.name, MetaFeature.name, MetaFeature.value).join(
            TaskRow, TaskRow.id == MetaFeature.task_id
        ).where(MetaFeature.extractor == extractor)
        with self.engine.connect() as conn:
            long = _frame(conn.execute(q), ["task", "name", "value"])
        if long.empty:
            return pd.DataFrame()
        wide = long.pivot(index="task", columns="name", values="value").astype(float)
        wide.columns.name = None
        return wide

    def ensembles(self, task: str | None = None) -> pd.DataFrame:
        """Stored ensembles, one row per member: ``ensemble_id``, ``task``, ``source``,
        ``run_key``, ``metric``, ``score``, ``single_best_score``, ``model``, ``family``,
        ``config_hash`` and ``weight``; of one task when ``task`` is given."""
        self._before_read()
        q = (
            select(Ensemble.id.label("ensemble_id"), TaskRow.name.label("task"), Source.name.label("source"),
                   Ensemble.run_key, Ensemble.metric, Ensemble.score, Ensemble.single_best_score, Ensemble.model,
                   Family.name.label("family"), Configuration.hash.label("config_hash"), EnsembleMember.weight)
            .join(TaskRow, TaskRow.id == Ensemble.task_id)
            .join(Source, Source.id == Ensemble.source_id)
            .join(EnsembleMember, EnsembleMember.ensemble_id == Ensemble.id)
            .join(Configuration, Configuration.id == EnsembleMember.configuration_id)
            .join(Family, Family.id == Configuration.family_id)
            .order_by(Ensemble.id, EnsembleMember.weight.desc(), Configuration.hash)
        )
        if task is not None:
            q = q.where(TaskRow.name == task)
        with self.engine.connect() as conn:
            return _frame(conn.execute(q), [
                "ensemble_id", "task", "source", "run_key", "metric", "score", "single_best_score", "model",
                "family", "config_hash", "weight"])

    def configurations(self, family: str | None = None) -> dict[str, dict[str, Any]]:
        """Stored configurations by hash (of one family, or all)."""
        self._before_read()
        q = select(Configuration.hash, Configuration.config_json).join(Family, Family.id == Configuration.family_id)
        if family is not None:
            q = q.where(Family.name == family)
        with self.engine.connect() as conn:
            return {h: json.loads(c) for h, c in conn.execute(q).all()}

    def performance_matrix(
        self, metric: str, *, family: str | None = None, source: str | None = None, split: int = MEAN_SPLIT,
        tuned: bool = False,
    ) -> pd.DataFrame:
        """Task x configuration matrix of ``metric`` (rows: task names, columns: config
        hashes); missing or failed evaluations are NaN.

        The shipped tuned optima (source :data:`~autometa.metadb.TUNED_SOURCE`) are left
        out unless ``tuned=True`` or ``source`` names them: each of their configurations
        was evaluated on one task only, so they would add thousands of columns of one
        value each to a matrix that portfolios and tunability read as dense.
        """
        q = (
            select(TaskRow.name, Configuration.hash, func.avg(Score.value))
            .select_from(Score)
            .join(Evaluation, Evaluation.id == Score.evaluation_id)
            .where(Score.metric == metric)
        )
        return self._matrix(q, split=split, source=source, tuned=tuned, family=family)

    def _matrix(self, q: Any, *, split: int, source: str | None, tuned: bool,
                family: str | None = None) -> pd.DataFrame:
        """A ``(task, configuration hash, value)`` query over successful evaluations of
        ``split``, restricted to ``source`` (or the tuned optima left out unless ``tuned``)
        and to ``family``, as a task x configuration matrix."""
        self._before_read()
        q = (
            q.join(TaskRow, TaskRow.id == Evaluation.task_id)
            .join(Configuration, Configuration.id == Evaluation.configuration_id)
            .where((Evaluation.split == split) & (Evaluation.status == "ok"))
            .group_by(TaskRow.name, Configuration.hash)
        )
        if family is not None:
            q = q.join(Family, Family.id == Configuration.family_id).where(Family.name == family)
        if source is not None:
            q = q.join(Source, Source.id == Evaluation.source_id).where(Source.name == source)
        elif not tuned:
            q = q.join(Source, Source.id == Evaluation.source_id).where(Source.name != TUNED_SOURCE)
        with self.engine.connect() as conn:
            long = _frame(conn.execute(q), ["task", "config", "value"])
        if long.empty:
            return pd.DataFrame()
        wide = long.pivot(index="task", columns="config", values="value").astype(float)
        wide.columns.name = None
        return wide

    def fit_time_matrix(self, *, source: str | None = None, split: int = MEAN_SPLIT, tuned: bool = False) -> pd.DataFrame:
        """Task x configuration matrix of stored fit times in seconds (an evaluation's
        ``fit_time_s``: all its cross-validation fits together), successful evaluations
        only; NaN where none is stored. ``source`` restricts it to one source (whose
        protocol the times were measured under); the tuned optima are left out unless
        ``tuned=True`` or ``source`` names them, as in :meth:`performance_matrix`."""
        q = (
            select(TaskRow.name, Configuration.hash, func.avg(Evaluation.fit_time_s))
            .select_from(Evaluation)
            .where(Evaluation.fit_time_s.is_not(None))
        )
        return self._matrix(q, split=split, source=source, tuned=tuned)

    def best_configs(
        self, task: str, *, metric: str, k: int = 5, greater_is_better: bool = True, family: str | None = None,
        tuned: bool = True,
    ) -> list[tuple[dict[str, Any], float]]:
        """The ``k`` best stored configurations of a task by ``metric``: ``(config, score)``;
        its tuned optima included unless ``tuned=False``."""
        col = self.performance_matrix(metric, family=family, tuned=tuned)
        if col.empty or task not in col.index:
            return []
        row = col.loc[task].dropna().sort_values(ascending=not greater_is_better).head(k)
        configs = self.configurations(family)
        return [(configs[h], float(v)) for h, v in row.items()]

    def scores(self, task: str, *, split: int = MEAN_SPLIT, tuned: bool = False) -> dict[str, dict[str, Any]]:
        """Every stored evaluation of one task, by configuration hash: ``{"scores":
        {metric: value}, "status": str, "fit_time_s": float or None}``. Several
        evaluations of one configuration (sources, runs) are averaged; the status is
        ``"ok"`` when any of them succeeded. The task's tuned optima (source
        :data:`~autometa.metadb.TUNED_SOURCE`) only with ``tuned=True``, so that a replay
        of the stored scores keeps the fixed design's landscape unless asked."""
        q = (
            select(Configuration.hash, Evaluation.id, Evaluation.status, Evaluation.fit_time_s, Score.metric, Score.value)
            .select_from(Evaluation)
            .join(TaskRow, TaskRow.id == Evaluation.task_id)
            .join(Configuration, Configuration.id == Evaluation.configuration_id)
            .outerjoin(Score, Score.evaluation_id == Evaluation.id)
            .where((TaskRow.name == task) & (Evaluation.split == split))
        )
        if not tuned:
            q = q.join(Source, Source.id == Evaluation.source_id).where(Source.name != TUNED_SOURCE)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        acc: dict[str, dict[str, Any]] = {}
        for h, eid, status, fit, metric, value in rows:
            entry = acc.setdefault(h, {"values": {}, "ok": False, "fits": {}})
            entry["ok"] |= status == "ok"
            if fit is not None:
                entry["fits"][eid] = float(fit)
            if metric is not None and value is not None and status == "ok":
                entry["values"].setdefault(metric, []).append(float(value))
        return {
            h: {
                "scores": {m: sum(v) / len(v) for m, v in e["values"].items()},
                "status": "ok" if e["ok"] else "crash",
                "fit_time_s": (sum(e["fits"].values()) / len(e["fits"])) if e["fits"] else None,
            }
            for h, e in acc.items()
        }

    def info(self) -> dict[str, Any]:
        """Counts: tasks, sources, families, configurations per family, evaluations, ensembles, extractors."""
        self._before_read()
        with self.engine.connect() as conn:
            n_tasks = conn.execute(select(func.count()).select_from(TaskRow)).scalar_one()
            by_type = dict(conn.execute(select(TaskRow.problem_type, func.count()).group_by(TaskRow.problem_type)).all())
            sources = {
                name: {"kind": kind, "tasks": int(nt or 0)}
                for name, kind, nt in conn.execute(
                    select(Source.name, Source.kind, func.count(TaskRow.id))
                    .join(TaskRow, TaskRow.source_id == Source.id, isouter=True)
                    .group_by(Source.name, Source.kind)
                ).all()
            }
            evals_by_source = dict(conn.execute(
                select(Source.name, func.count(Evaluation.id)).join(Evaluation, Evaluation.source_id == Source.id)
                .where(Evaluation.split == MEAN_SPLIT).group_by(Source.name)
            ).all())
            for name in sources:
                sources[name]["evaluations"] = int(evals_by_source.get(name, 0))
            cfgs = dict(conn.execute(
                select(Family.name, func.count(Configuration.id)).join(Configuration, Configuration.family_id == Family.id)
                .group_by(Family.name)
            ).all())
            n_evals = conn.execute(select(func.count()).select_from(Evaluation).where(Evaluation.split == MEAN_SPLIT)).scalar_one()
            n_split = conn.execute(select(func.count()).select_from(Evaluation).where(Evaluation.split != MEAN_SPLIT)).scalar_one()
            n_ens = conn.execute(select(func.count()).select_from(Ensemble)).scalar_one()
            extractors = {
                e: {"version": v, "features": int(n)}
                for e, v, n in conn.execute(
                    select(MetaFeature.extractor, MetaFeature.extractor_version, func.count(func.distinct(MetaFeature.name)))
                    .group_by(MetaFeature.extractor, MetaFeature.extractor_version)
                ).all()
            }
        return {
            "url": self.engine.url.render_as_string(hide_password=True),
            "schema_version": SCHEMA_VERSION,
            "space_version": SPACE_VERSION,
            "tasks": int(n_tasks),
            "tasks_by_problem_type": {k: int(v) for k, v in by_type.items()},
            "sources": sources,
            "families": len(cfgs),
            "configurations_per_family": {k: int(v) for k, v in sorted(cfgs.items())},
            "evaluations": int(n_evals),
            "split_evaluations": int(n_split),
            "ensembles": int(n_ens),
            "metafeature_extractors": extractors,
        }

    # ------------------------------------------------------------------ helpers
    def _source_id(self, conn: Connection, name: str) -> int:
        sid = conn.execute(select(Source.id).where(Source.name == name)).scalar_one_or_none()
        if sid is None:
            raise InputError(f"Unknown source {name!r}; add it first with add_source().")
        return int(sid)

    def _task_id(self, conn: Connection, name: str) -> int:
        tid = conn.execute(select(TaskRow.id).where(TaskRow.name == name)).scalar_one_or_none()
        if tid is None:
            raise InputError(f"Unknown task {name!r}; add it first with add_task().")
        return int(tid)

    def _config_ids(self, conn: Connection, configs: list[Mapping[str, Any]]) -> dict[str, int]:
        by_hash: dict[str, Mapping[str, Any]] = {}
        for c in configs:
            by_hash.setdefault(config_hash(c), c)
        families = sorted({str(c.get(FAMILY_KEY, "unknown")) for c in by_hash.values()})
        _insert_ignore(conn, Family.__table__, [{"name": f, "space_version": SPACE_VERSION} for f in families])
        fam_ids = dict(conn.execute(
            select(Family.name, Family.id).where(Family.name.in_(families) & (Family.space_version == SPACE_VERSION))
        ).all())
        _insert_ignore(conn, Configuration.__table__, [
            {"hash": h, "family_id": fam_ids[str(c.get(FAMILY_KEY, "unknown"))], "config_json": config_key(c)}
            for h, c in by_hash.items()
        ])
        return dict(conn.execute(
            select(Configuration.hash, Configuration.id).where(Configuration.hash.in_(list(by_hash)))
        ).all())
