"""Tunability, learned (constant and symbolic) defaults and hyperparameter importance from
the meta-database."""

from autometa.defaults._importance import hyperparameter_importance
from autometa.defaults._symbolic import FORMULA_FEATURES, SymbolicDefault, symbolic_defaults, symbolic_table
from autometa.defaults._tunability import FamilyTunability, tunability, tunability_table

__all__ = [
    "FORMULA_FEATURES",
    "FamilyTunability",
    "SymbolicDefault",
    "hyperparameter_importance",
    "symbolic_defaults",
    "symbolic_table",
    "tunability",
    "tunability_table",
]
