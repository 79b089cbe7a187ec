#!/usr/bin/env bash
# Builds the web console (ui/ → ui/dist/) that `cargo build` embeds in the
# `warren` binary (crates/warren-ui). Needs Node.js and npm at build time
# only (scripts/install-deps.sh installs them); the binary never needs them.
# Without ui/dist, Warren builds anyway and /ui shows how to build it.
set -euo pipefail
cd "$(dirname "$0")/../ui"
npm ci --no-audit --no-fund --loglevel=error
npm run build
