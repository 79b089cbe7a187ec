#!/usr/bin/env bash
# Makes (if missing) the venv $1 with the interpreter $2 (default: python3)
# and installs the SDK in it in editable mode with its test extras. Used by
# scripts/test.sh and by scripts/install-test-deps.sh (the Rust suite's
# sdk_desktop test runs pytest from this venv before the SDK's own tests).
set -euo pipefail
sdk=$(cd "$(dirname "$0")/.." && pwd)
venv=$1
python=${2:-python3}
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" 'hatchling>=1.26' editables
"${pip[@]}" --no-build-isolation -e "$sdk[test]"
