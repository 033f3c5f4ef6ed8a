"""The `credo` command line: the group in main.py, one module per topic adding its commands."""
