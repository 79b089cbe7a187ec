#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): installs
# what the tests need, runs every Rust test with nextest, fuzzes the running
# agent with schemathesis against its committed OpenAPI document, then runs
# the TypeScript and Python SDKs' tests against a real `warren server`, then
# the E2B conformance suite (the official E2B SDKs, unchanged, against one;
# tests/e2b/run.sh), and ends with a 10-minute soak (`WARREN_SOAK_SECS` to change it).
# The web console is built first (so the binary embeds it) and tested in
# Debian's Chromium after the SDKs (ui/scripts/test.sh).
# Formatting, clippy and the declared rust-version are checked first.
# Needs root (sandboxes, btrfs pools, cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh

export CARGO_TERM_COLOR=never
cargo fmt --all --check
scripts/check-msrv.sh
scripts/build-ui.sh
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast

scripts/schemathesis.sh
bash sdks/typescript/scripts/test.sh
bash sdks/python/scripts/test.sh
bash ui/scripts/test.sh
bash tests/e2b/run.sh

# The soak benchmark's 10-minute variant on the debug build: fails on any
# error or on a leak of memory, file descriptors or pool space.
WARREN_BIN=target/debug/warren SOAK_SECS=${WARREN_SOAK_SECS:-600} SOAK_STRICT=1 \
  target/debug/bench-soak
