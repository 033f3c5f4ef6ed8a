#!/bin/sh
# Quick start 2: set up with the dev extras, lint, then run the whole test suite.
# PostgreSQL tests run when TEST_DATABASE_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/test).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
