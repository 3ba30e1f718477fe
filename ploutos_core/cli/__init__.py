"""The ``ploutos`` command line (:func:`main`): one module per subcommand, shared options in
:mod:`.common`."""

from ploutos_core.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
