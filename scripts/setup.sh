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
# The web console's browser tests (tests/console) drive Debian's headless Chromium: install it
# when we can (root with apt-get); elsewhere those tests skip, saying so.
if [ "${1:-}" = "dev" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the console's browser tests (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "chromium could not be installed: the browser tests will skip" >&2
  else
    echo "chromium is not installed (apt-get install chromium): the browser tests will skip" >&2
  fi
fi
