"""The meta-database schema (SQLAlchemy 2, portable across SQLite and PostgreSQL).

::

    sources ─┐
    tasks ───┼── metafeatures (task, name, extractor, version) -> value
             │
    families ── configurations (family, canonical JSON, hash)
             │
    tasks x configurations ── evaluations (split, status, fit time, source) ── scores (metric -> value)
    tasks ── ensembles (run, metric, score, how it was made) ── ensemble_members (configuration, weight)

An evaluation is one configuration on one task on one split; ``split = -1`` holds the
mean over the splits of a resampling protocol (what the rest of autometa queries).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "TUNED_SOURCE",
    "Base",
    "Source",
    "TaskRow",
    "MetaFeature",
    "Family",
    "Configuration",
    "Evaluation",
    "Score",
    "Ensemble",
    "EnsembleMember",
    "SCHEMA_VERSION",
    "MEAN_SPLIT",
]

SCHEMA_VERSION = "1"
#: The ``split`` value of an evaluation that summarizes all splits (mean of the scores).
MEAN_SPLIT = -1
#: The source of the shipped tuned optima (metadata/evaluations_tuned/): one SMAC search per
#: suite task, each with configurations of its own, so left out of the cross-task reads of
#: :class:`~autometa.metadb.SQLMetaDB` unless asked for (``tuned=True``).
TUNED_SOURCE = "autometa-suite-tuned"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Base(DeclarativeBase):
    pass


class Source(Base):
    """Where knowledge came from: our own runs, OpenML, LCDB; with versions and dates."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # own | openml | lcdb
    description: Mapped[str] = mapped_column(Text, default="")
    versions: Mapped[str] = mapped_column(Text, default="{}")  # JSON: package versions, protocol
    created_at: Mapped[str] = mapped_column(String(32), default=_now)


class TaskRow(Base):
    """A learning task: a dataset, a target and a problem type."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    problem_type: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(200), default="")
    n_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_features: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_classes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    openml_task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    openml_dataset_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    protocol: Mapped[str] = mapped_column(Text, default="{}")  # JSON: resampling, subsample cap
    created_at: Mapped[str] = mapped_column(String(32), default=_now)


class MetaFeature(Base):
    """One meta-feature value of a task, by extractor (autometa's own, or OpenML's qualities)."""

    __tablename__ = "metafeatures"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    extractor: Mapped[str] = mapped_column(String(32), primary_key=True)
    extractor_version: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


class Family(Base):
    """A model family with the version of its search space."""

    __tablename__ = "families"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    space_version: Mapped[str] = mapped_column(String(16))
    __table_args__ = (UniqueConstraint("name", "space_version"),)


class Configuration(Base):
    """A configuration as canonical JSON (sorted keys), identified by its hash."""

    __tablename__ = "configurations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(40), unique=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"))
    config_json: Mapped[str] = mapped_column(Text)


class Evaluation(Base):
    """One configuration evaluated on one task (one split, or the mean over splits)."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    configuration_id: Mapped[int] = mapped_column(ForeignKey("configurations.id"))
    split: Mapped[int] = mapped_column(Integer, default=MEAN_SPLIT)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    fit_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    run_key: Mapped[str] = mapped_column(String(100), default="")  # e.g. an OpenML run id or a tune output dir
    created_at: Mapped[str] = mapped_column(String(32), default=_now)
    __table_args__ = (
        UniqueConstraint("task_id", "configuration_id", "split", "source_id", "run_key"),
        Index("ix_evaluations_task", "task_id"),
        Index("ix_evaluations_config", "configuration_id"),
    )


class Score(Base):
    """One metric value of an evaluation, in the metric's natural units."""

    __tablename__ = "scores"
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


class Ensemble(Base):
    """The weighted ensemble a tuning run ended with (ensemble selection over its trials)."""

    __tablename__ = "ensembles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    run_key: Mapped[str] = mapped_column(String(100), default="")
    metric: Mapped[str] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # out of fold, natural units
    single_best_score: Mapped[float | None] = mapped_column(Float, nullable=True)  # on the same rows
    model: Mapped[str] = mapped_column(String(16), default="refit")  # refit | folds | none
    created_at: Mapped[str] = mapped_column(String(32), default=_now)
    __table_args__ = (UniqueConstraint("task_id", "source_id", "run_key"), Index("ix_ensembles_task", "task_id"))


class EnsembleMember(Base):
    """One configuration of an ensemble and its weight (the weights of an ensemble sum to 1)."""

    __tablename__ = "ensemble_members"
    ensemble_id: Mapped[int] = mapped_column(ForeignKey("ensembles.id"), primary_key=True)
    configuration_id: Mapped[int] = mapped_column(ForeignKey("configurations.id"), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)
