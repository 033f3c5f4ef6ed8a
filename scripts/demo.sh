#!/bin/sh
# Quick start 1: set up, then build a synthetic portfolio, evaluate it and print a summary.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh ""
exec .venv/bin/credo demo "$@"
