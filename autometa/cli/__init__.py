"""The command line: ``autometa tune``, ``predict``, ``info``, ``suggest``, ``defaults``,
``metafeatures``, ``metadb ...``, ``metalearn`` and ``nas ...``.

The only package that prints, draws progress or configures logging. It parses flags into
the library's arguments and shows the results; refused input exits with status 2 and a
one-line message, without a traceback and without writing output.
"""

from autometa.cli import _tune  # noqa: I001,F401  (registers the commands, in this order)
from autometa.cli import _meta, _metadb, _metalearn, _nas  # noqa: F401
from autometa.cli._common import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
