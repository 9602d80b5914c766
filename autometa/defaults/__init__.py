"""Tunability, learned defaults and hyperparameter importance from the meta-database."""

from autometa.defaults._importance import hyperparameter_importance
from autometa.defaults._tunability import FamilyTunability, tunability, tunability_table

__all__ = ["FamilyTunability", "hyperparameter_importance", "tunability", "tunability_table"]
