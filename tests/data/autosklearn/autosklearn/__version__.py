"""Version information."""

# The following line *must* be the last in the module, exactly as formatted:
__version__ = "0.15.0"
