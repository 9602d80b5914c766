"""The meta-database: past runs (own, OpenML, LCDB) and task meta-features in SQL."""

from autometa.metadb._autosklearn import (
    AUTOSKLEARN_CLASSIFIERS,
    AUTOSKLEARN_METAFEATURES,
    AUTOSKLEARN_METRICS,
    AutoSklearnImport,
    MappedConfiguration,
    import_autosklearn,
    map_autosklearn_config,
)
from autometa.metadb._lcdb import LCDB_METRICS, LCDBImport, import_lcdb, lcdb_curves, rung_agreement
from autometa.metadb._open import cache_dir, cache_still_fits, open_metadb
from autometa.metadb._openml import OPENML_TO_METRIC, OpenMLImport, import_openml
from autometa.metadb._schema import MEAN_SPLIT, SCHEMA_VERSION, TUNED_SOURCE
from autometa.metadb._shipped import SHIPPED_SOURCE, load_shipped, shipped_dir
from autometa.metadb._store import EvalRecord, SQLMetaDB, default_url

__all__ = [
    "AUTOSKLEARN_CLASSIFIERS",
    "AUTOSKLEARN_METAFEATURES",
    "AUTOSKLEARN_METRICS",
    "AutoSklearnImport",
    "EvalRecord",
    "LCDBImport",
    "LCDB_METRICS",
    "MEAN_SPLIT",
    "MappedConfiguration",
    "OPENML_TO_METRIC",
    "OpenMLImport",
    "SCHEMA_VERSION",
    "SHIPPED_SOURCE",
    "SQLMetaDB",
    "TUNED_SOURCE",
    "cache_dir",
    "cache_still_fits",
    "default_url",
    "import_autosklearn",
    "import_lcdb",
    "import_openml",
    "lcdb_curves",
    "load_shipped",
    "map_autosklearn_config",
    "open_metadb",
    "rung_agreement",
    "shipped_dir",
]
