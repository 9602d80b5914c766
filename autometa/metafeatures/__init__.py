"""Meta-features of a learning problem, named and defined as OpenML's data qualities.

The public surface::

    from autometa.metafeatures import extract, extract_frame, FEATURES, EXTRACTOR_VERSION
    values = extract(task)                     # dict: name -> float (NaN if undefined)
    values = extract_frame(X, y, "multiclass")  # the same for a DataFrame and a label
    FEATURES["ClassEntropy"].description        # group and one-line definition per name

A meta-database stores ``(name, value, EXTRACTOR_VERSION)``; OpenML's qualities of the
same name share the definition (checked against recorded OpenML values), and
:data:`OPENML_ALIASES` maps OpenML's other spellings onto these names.
"""

from autometa.metafeatures._catalog import (
    EXTRACTOR_VERSION,
    FEATURE_NAMES,
    FEATURES,
    GROUPS,
    OPENML_ALIASES,
    FeatureInfo,
    feature_names,
)
from autometa.metafeatures._extract import DEFAULT_MAX_ROWS_LANDMARKING, extract, extract_frame

__all__ = [
    "DEFAULT_MAX_ROWS_LANDMARKING",
    "EXTRACTOR_VERSION",
    "FEATURES",
    "FEATURE_NAMES",
    "GROUPS",
    "OPENML_ALIASES",
    "FeatureInfo",
    "extract",
    "extract_frame",
    "feature_names",
]
