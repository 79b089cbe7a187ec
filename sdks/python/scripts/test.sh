#!/usr/bin/env bash
# Tests of the Python SDK (warren-sdk) against a real `warren server`:
# makes or reuses a venv, installs the package in editable mode with its test
# extras, lints it (ruff), type-checks it with `mypy --strict`, checks that it needs no newer
# Python than 3.9 (vermin), then runs pytest. Extra arguments go to pytest.
#
# Environment:
#   WARREN_BIN          the binary under test (default: target/debug/warren)
#   WARREN_PY_SDK_VENV  the venv (default: /var/cache/warren-test/py-sdk-venv)
#
# Tests are skipped (not failed) only while the binary has no `server`
# subcommand; once it has one, a run that collects no test fails.
set -euo pipefail
sdk=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$sdk/../.." && pwd)
venv=${WARREN_PY_SDK_VENV:-/var/cache/warren-test/py-sdk-venv}
export WARREN_BIN=${WARREN_BIN:-$repo/target/debug/warren}

if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
fi
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" 'hatchling>=1.26' editables
"${pip[@]}" --no-build-isolation -e "$sdk[test]"

cd "$sdk"
echo "== ruff (lint and format)"
"$venv/bin/ruff" check src tests
"$venv/bin/ruff" format --check src tests
echo "== mypy --strict (warren package)"
"$venv/bin/mypy" --strict src/warren
echo "== vermin: Python 3.9 compatibility"
"$venv/bin/vermin" --no-tips --violations --eval-annotations -t=3.9- src/warren >/dev/null

echo "== pytest (server: $WARREN_BIN)"
status=0
"$venv/bin/pytest" "$@" || status=$?
if [ "$status" -eq 5 ]; then
  if "$WARREN_BIN" server --help >/dev/null 2>&1; then
    echo "pytest collected no tests although $WARREN_BIN has a server subcommand" >&2
    exit 1
  fi
  echo "no tests: $WARREN_BIN has no server subcommand yet"
  exit 0
fi
exit "$status"
