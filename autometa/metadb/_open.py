"""Opening the meta-database a caller names: a store, a URL or the default."""

from __future__ import annotations

import os
from pathlib import Path

from autometa.metadb._store import SQLMetaDB

__all__ = ["cache_dir", "open_metadb"]


def cache_dir() -> Path:
    """Where derived meta-knowledge is cached (fitted surrogates, importances):
    ``$AUTOMETA_CACHE_DIR``, else ``~/.cache/autometa``."""
    root = os.environ.get("AUTOMETA_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "autometa"


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
