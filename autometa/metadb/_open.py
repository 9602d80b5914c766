"""Opening the meta-database a caller names: a store, a URL or the default."""

from __future__ import annotations

import os
from pathlib import Path

from autometa.metadb._store import SQLMetaDB

__all__ = ["cache_dir", "cache_still_fits", "open_metadb"]


def cache_dir() -> Path:
    """Where derived meta-knowledge is cached (fitted surrogates, importances):
    ``$AUTOMETA_CACHE_DIR``, else ``~/.cache/autometa``."""
    root = os.environ.get("AUTOMETA_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "autometa"


def cache_still_fits(fitted_tasks: int, tasks_now: int, stale_tasks: int | None = None) -> bool:
    """Whether meta-knowledge fitted on a store of ``fitted_tasks`` tasks may be reused now
    that it holds ``tasks_now``: while it has gained at most ``stale_tasks`` tasks, by default
    5% of those fitted on (at least one). Each recorded run adds a task, and a refit costs
    seconds to minutes of a run's budget."""
    allowed = max(1, round(0.05 * fitted_tasks)) if stale_tasks is None else stale_tasks
    return 0 <= tasks_now - fitted_tasks <= allowed


def open_metadb(metadb: SQLMetaDB | str | None = None) -> SQLMetaDB:
    """The store to read meta-knowledge from.

    Parameters
    ----------
    metadb : SQLMetaDB, str or None
        A store (returned as is), an SQLAlchemy URL (opened now, so an unreachable one
        fails at once with :class:`~autometa.exceptions.InputError`), or None for the
        default store (``$AUTOMETA_METADB_URL`` or ``~/.autometa/metadb.sqlite``). Every
        store holds the shipped meta-dataset from its first read on.
    """
    if isinstance(metadb, SQLMetaDB):
        return metadb
    return SQLMetaDB(metadb)  # it loads the shipped meta-dataset before its first read
