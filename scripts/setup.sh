#!/bin/sh
# Creates .venv with Python 3.11 (or 3.12) and installs credo into it. Used by demo.sh and test.sh.
set -eu
cd "$(dirname "$0")/.."
PY=""
for candidate in python3.11 python3.12 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then
  echo "credo needs Python 3.11 or 3.12 (durable_rules does not import on 3.13)" >&2; exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
if [ -n "${1:-}" ]; then TARGET=".[$1]"; else TARGET="."; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$TARGET"
