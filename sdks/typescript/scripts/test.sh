#!/usr/bin/env bash
# The TypeScript SDK's checks, as CI runs them: install the locked
# dependencies, build dist/ (ESM, CJS, .d.ts), then run the tests against a
# real `warren server` (WARREN_BIN, default ../../target/debug/warren; it
# must be built first). Needs root, like the server.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
npm test
