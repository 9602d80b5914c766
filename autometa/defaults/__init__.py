"""Tunability, learned (constant and symbolic) defaults and hyperparameter importance from
the meta-database; :class:`ImportancePruner`, the facade's pruning by importance."""

from autometa.defaults._importance import hyperparameter_importance
from autometa.defaults._prune import ImportancePruner, mean_importance
from autometa.defaults._symbolic import FORMULA_FEATURES, SymbolicDefault, symbolic_defaults, symbolic_table
from autometa.defaults._tunability import FamilyTunability, tunability, tunability_table

__all__ = [
    "FORMULA_FEATURES",
    "FamilyTunability",
    "ImportancePruner",
    "SymbolicDefault",
    "hyperparameter_importance",
    "mean_importance",
    "symbolic_defaults",
    "symbolic_table",
    "tunability",
    "tunability_table",
]
