"""Search spaces per model family (ConfigSpace) and the pipeline builder."""

from autometa.spaces._families import FAMILIES, Family
from autometa.spaces._pipeline import build_pipeline, onehot_preprocessor
from autometa.spaces._space import (
    FAMILY_KEY,
    SPACE_VERSION,
    config_hash,
    config_key,
    config_to_dict,
    default_initial_configs,
    default_reason,
    encode_configs,
    family_defaults,
    fixed_design,
    get_space,
    in_space,
    split_config,
    trial_key,
)

__all__ = [
    "FAMILIES",
    "FAMILY_KEY",
    "SPACE_VERSION",
    "Family",
    "build_pipeline",
    "config_hash",
    "config_key",
    "config_to_dict",
    "default_initial_configs",
    "default_reason",
    "encode_configs",
    "family_defaults",
    "fixed_design",
    "get_space",
    "in_space",
    "onehot_preprocessor",
    "split_config",
    "trial_key",
]
