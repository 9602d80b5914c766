"""Tunability and learned defaults from the meta-database."""

from autometa.defaults._tunability import FamilyTunability, tunability, tunability_table

__all__ = ["FamilyTunability", "tunability", "tunability_table"]
