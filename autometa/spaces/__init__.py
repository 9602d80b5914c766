"""Search spaces per model family (ConfigSpace) and the pipeline builder."""

from autometa.spaces._families import FAMILIES, Family
from autometa.spaces._pipeline import build_pipeline
from autometa.spaces._space import (
    FAMILY_KEY,
    SPACE_VERSION,
    config_to_dict,
    family_defaults,
    fixed_design,
    get_space,
    split_config,
)

__all__ = [
    "FAMILIES",
    "FAMILY_KEY",
    "SPACE_VERSION",
    "Family",
    "build_pipeline",
    "config_to_dict",
    "family_defaults",
    "fixed_design",
    "get_space",
    "split_config",
]
