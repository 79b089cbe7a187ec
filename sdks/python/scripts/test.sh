#!/usr/bin/env bash
# Tests of the Python SDK (warren-sdk) against a real `warren server`:
# makes or reuses a venv, installs the package in editable mode with its test
# extras, lints it (ruff), type-checks it with `mypy --strict`, checks that it
# needs no newer Python than 3.9 (vermin), then runs pytest. When a Python 3.9
# interpreter is on the machine (pyenv's, say), the package is type-checked
# and the tests run again on it, the oldest Python the SDK supports.
# Extra arguments go to pytest.
#
# Environment:
#   WARREN_BIN            the binary under test (default: target/debug/warren)
#   WARREN_PY_SDK_VENV    the venv (default: /var/cache/warren-test/py-sdk-venv)
#   WARREN_PY_SDK_VENV39  the Python 3.9 venv (default: .../py-sdk-venv39)
#   WARREN_PY39           a Python 3.9 interpreter to use
#
# Tests are skipped (not failed) only while the binary has no `server`
# subcommand; once it has one, a run that collects no test fails.
set -euo pipefail
sdk=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$sdk/../.." && pwd)
venv=${WARREN_PY_SDK_VENV:-/var/cache/warren-test/py-sdk-venv}
venv39=${WARREN_PY_SDK_VENV39:-/var/cache/warren-test/py-sdk-venv39}
export WARREN_BIN=${WARREN_BIN:-$repo/target/debug/warren}

# Makes (if missing) the venv $1 with the interpreter $2 and installs the SDK.
setup_venv() {
  "$sdk/scripts/setup-venv.sh" "$1" "$2"
}

# Runs pytest from the venv $1 (further arguments go to pytest); exit code 5
# (no tests collected) passes only while the binary has no server.
run_pytest() {
  local py_venv=$1 status=0
  shift
  "$py_venv/bin/pytest" "$@" || status=$?
  if [ "$status" -eq 5 ]; then
    if "$WARREN_BIN" server --help >/dev/null 2>&1; then
      echo "pytest collected no tests although $WARREN_BIN has a server subcommand" >&2
      return 1
    fi
    echo "no tests: $WARREN_BIN has no server subcommand yet"
    return 0
  fi
  return "$status"
}

# A working Python 3.9 interpreter, if the machine has one.
find_python39() {
  local candidate
  for candidate in "${WARREN_PY39:-}" python3.9 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9; do
    if [ -n "$candidate" ] &&
      "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 9)' >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

cd "$sdk"
setup_venv "$venv" python3
echo "== ruff (lint and format)"
"$venv/bin/ruff" check src tests
"$venv/bin/ruff" format --check src tests
echo "== mypy --strict (warren package)"
"$venv/bin/mypy" --strict src/warren
echo "== vermin: Python 3.9 compatibility"
"$venv/bin/vermin" --no-tips --violations --eval-annotations -t=3.9- src/warren >/dev/null
echo "== pytest on $("$venv/bin/python" --version) (server: $WARREN_BIN)"
run_pytest "$venv" "$@"

if py39=$(find_python39); then
  setup_venv "$venv39" "$py39"
  echo "== mypy --strict on Python 3.9"
  "$venv39/bin/mypy" --strict --python-version 3.9 src/warren
  echo "== pytest on $("$venv39/bin/python" --version)"
  run_pytest "$venv39" -p no:cacheprovider "$@"
else
  echo "== no Python 3.9 on this machine: the 3.9 run is skipped (vermin checked the syntax)"
fi
