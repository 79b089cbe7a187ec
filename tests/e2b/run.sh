#!/usr/bin/env bash
# The E2B conformance suite: the official E2B SDKs (npm `e2b` and
# `@e2b/code-interpreter`, PyPI `e2b` and `e2b-code-interpreter`, at the
# versions pinned in js/package-lock.json and py/requirements.txt), unchanged,
# against one real `warren server` (target/debug/warren, built first).
# Installs the SDKs into caches under /var/cache/warren-test, reinstalling
# only when the pins change, then runs tests/e2b/run.mjs (see there).
# Needs root, like the server.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${WARREN_E2B_CACHE:-/var/cache/warren-test}
export WARREN_BIN=${WARREN_BIN:-$repo/target/debug/warren}
export WARREN_E2B_PY_VENV=${WARREN_E2B_PY_VENV:-$cache/e2b-py-venv}

# npm: node_modules lives in the cache, linked from js/.
js_cache=$cache/e2b-js
js_stamp=$(sha256sum "$here/js/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$js_cache/.stamp" 2>/dev/null)" != "$js_stamp" ]; then
  rm -rf "$js_cache"
  mkdir -p "$js_cache"
  cp "$here/js/package.json" "$here/js/package-lock.json" "$js_cache/"
  (cd "$js_cache" && npm ci --no-audit --no-fund --silent)
  echo "$js_stamp" >"$js_cache/.stamp"
fi
ln -sfn "$js_cache/node_modules" "$here/js/node_modules"

# PyPI: a venv in the cache.
py_stamp=$(sha256sum "$here/py/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$WARREN_E2B_PY_VENV/.stamp" 2>/dev/null)" != "$py_stamp" ]; then
  rm -rf "$WARREN_E2B_PY_VENV"
  mkdir -p "$(dirname "$WARREN_E2B_PY_VENV")"
  python3 -m venv "$WARREN_E2B_PY_VENV"
  "$WARREN_E2B_PY_VENV/bin/pip" install -q --disable-pip-version-check -r "$here/py/requirements.txt"
  echo "$py_stamp" >"$WARREN_E2B_PY_VENV/.stamp"
fi

exec node "$here/run.mjs" "$@"
