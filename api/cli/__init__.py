"""The `credo` command line: the group in main.py, one module per topic adding its commands."""

from api.cli.main import main

__all__ = ["main"]
