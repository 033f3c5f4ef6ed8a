"""`python -m api`: the credo command line."""

from api.cli import main

main()
