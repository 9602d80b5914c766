"""The meta-database: past runs (own, OpenML, LCDB) and task meta-features in SQL."""

from autometa.metadb._schema import MEAN_SPLIT, SCHEMA_VERSION
from autometa.metadb._store import EvalRecord, SQLMetaDB, config_hash, default_url

__all__ = ["EvalRecord", "MEAN_SPLIT", "SCHEMA_VERSION", "SQLMetaDB", "config_hash", "default_url"]
