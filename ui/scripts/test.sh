#!/usr/bin/env bash
# The console's browser tests, as CI runs them: build the console, then drive
# Debian's Chromium (headless, through playwright-core) against a real
# `warren server` (WARREN_BIN, default target/debug/warren, which must embed
# this build: scripts/test.sh builds the console before cargo). Needs root.
# UI_SCREENSHOTS=1 saves the main screens under docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
npm run build
npm test
