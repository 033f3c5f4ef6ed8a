"""`python -m api`: the credo command line."""

from api.cli.main import main

main()
