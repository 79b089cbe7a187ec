#!/usr/bin/env bash
# Builds the release `warren` and moves its debug info into a file of its
# own (target/release/warren.debug, found through .gnu_debuglink by gdb and
# by Rust's backtraces): the binary is mapped into every sandbox, its debug
# info need not be. Extra arguments go to cargo (e.g. `-p warren-bench`).
# The web console is built first (scripts/build-ui.sh) so the binary embeds it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-ui.sh
cargo build --release -p warren "$@"
bin=target/release/warren
# Only when the binary was rebuilt (a stripped binary has no .debug_line).
if readelf -S "$bin" | grep -q '\.debug_line'; then
  objcopy --only-keep-debug --compress-debug-sections=zlib "$bin" "$bin.debug"
  objcopy --strip-debug --add-gnu-debuglink="$bin.debug" "$bin" "$bin.stripped"
  mv "$bin.stripped" "$bin"
fi
ls -l "$bin" "$bin.debug" | awk '{printf "%s %.1f MB\n", $NF, $5 / 1e6}'
