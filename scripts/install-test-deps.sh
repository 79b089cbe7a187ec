#!/usr/bin/env bash
# Installs what the test suite needs, on top of scripts/install-deps.sh:
# cargo-nextest (if missing), a Python venv with schemathesis, the Python SDK's
# test venv (the Rust suite's sdk_desktop test runs its pytest), Debian's Chromium
# for the web console's browser tests (ui/scripts/test.sh), and an X display
# with its tools for the desktop tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/install-deps.sh"

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# The networking tests run python3 servers in a stand-in internet (ip netns).
if ! command -v python3 >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi

# The agent's desktop tests (crates/warren-agent/tests/desktop.rs) run a
# real display on this host: Xvfb, Openbox and the tools the agent drives.
if ! command -v Xvfb >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    xvfb openbox xdotool wmctrl xclip x11-utils xdg-utils ffmpeg chromium fonts-dejavu-core >/dev/null
fi

# The SDK tests need Node 18+ and npm (this machine kind ships them).
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

# The console's tests drive Debian's Chromium with playwright-core.
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

venv=${WARREN_TEST_VENV:-/var/cache/warren-test/venv}
if [ ! -x "$venv/bin/schemathesis" ]; then
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4,<5'
fi

# The Python SDK's test venv, which sdk_desktop (a Rust test) runs pytest
# from before sdks/python/scripts/test.sh runs; that script keeps it current.
py_sdk_venv=${WARREN_PY_SDK_VENV:-/var/cache/warren-test/py-sdk-venv}
if [ ! -x "$py_sdk_venv/bin/pytest" ]; then
  "$here/../sdks/python/scripts/setup-venv.sh" "$py_sdk_venv" python3
fi
