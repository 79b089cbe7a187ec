#!/usr/bin/env bash
# Builds release binaries, installs the peers the benchmarks compare against,
# and runs a benchmark: `scripts/bench.sh agent`.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-agent}
scripts/build-release.sh -p warren-bench

peer_dir=.bench/peers
case "$which" in
  agent)
    if [ ! -x "$peer_dir/node_modules/@sandbox-agent/cli-linux-x64/bin/sandbox-agent" ]; then
      mkdir -p "$peer_dir"
      (cd "$peer_dir" && npm install --no-save --no-audit --no-fund --silent @sandbox-agent/cli-linux-x64@0.4.2)
    fi
    SANDBOX_AGENT_BIN="$PWD/$peer_dir/node_modules/@sandbox-agent/cli-linux-x64/bin/sandbox-agent" \
      target/release/bench-agent
    ;;
  preview)
    # A server of its own on network wb/10.215.0.0/24; the first run builds `base`.
    target/release/bench-preview
    ;;
  sandbox)
    # podman + runc from Debian are the peer (crun does not work on hybrid cgroups).
    command -v podman >/dev/null && command -v runc >/dev/null || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
    }
    target/release/bench-sandbox
    ;;
  timetravel)
    # The peers: podman (with runc) from Debian. A server of its own (cgroup
    # warren-bench-tt, network wtt/10.218.0.0/24) on the shared bench state dir.
    command -v podman >/dev/null && command -v runc >/dev/null || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
    }
    target/release/bench-timetravel
    ;;
  sessions)
    # A server of its own (cgroup warren-bench-sessions, no network); the
    # first run builds `base` and the `agents` template (npm, minutes).
    target/release/bench-sessions
    ;;
  e2b)
    # The official e2b SDK (npm, pinned in bench/e2b/package-lock.json) next
    # to Warren's TypeScript SDK (built from sdks/typescript), through a
    # server of its own (cgroup warren-bench-e2b, no network).
    (cd sdks/typescript && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; } && npm run build --silent)
    e2b_dir=$peer_dir/e2b
    if ! cmp -s bench/e2b/package-lock.json "$e2b_dir/package-lock.json"; then
      rm -rf "$e2b_dir"
      mkdir -p "$e2b_dir"
      cp bench/e2b/package.json bench/e2b/package-lock.json "$e2b_dir/"
      (cd "$e2b_dir" && npm ci --no-audit --no-fund --silent)
    fi
    ln -sfn "$PWD/$e2b_dir/node_modules" bench/e2b/node_modules
    WARREN_BIN=${WARREN_BIN:-$PWD/target/release/warren} node bench/e2b/bench.mjs
    ;;
  diff)
    # Checkpoint diffs of a 2 GB disk against walking both trees; a server
    # of its own (cgroup warren-bench-diff, no network, state
    # /var/lib/warren-bench-diff). BENCH_DIFF_MB, BENCH_N, BENCH_SLOW_N.
    target/release/bench-diff
    ;;
  desktop)
    # A server of its own (cgroup warren-bench-desktop, no network, state
    # /var/lib/warren-bench-desktop); the first run builds `desktop`. The
    # peer: Xvfb, ffmpeg, xdotool, xterm and x11vnc on the host, from Debian.
    for tool in Xvfb ffmpeg xdotool xterm x11vnc; do
      command -v "$tool" >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb ffmpeg xdotool xterm x11vnc >/dev/null
        break
      }
    done
    target/release/bench-desktop
    ;;
  soak)
    # An hour of mixed load at a steady rate (SOAK_SECS to change it); a
    # server of its own (cgroup warren-bench-soak, no network).
    target/release/bench-soak
    ;;
  scale)
    # Thousands of sandboxes on a server of its own (cgroup warren-bench-scale,
    # network wsc/10.216.0.0/16, state /var/lib/warren-bench-scale), with
    # podman + runc from Debian as the peer. Sizes: SCALE_ALIVE=300,1000
    # SCALE_CONCURRENCY=1,10,50,100 SCALE_MAX=5000 SCALE_PHASES=burst,alive,max
    # (see bench/src/bin/bench-scale.rs for the rest).
    command -v podman >/dev/null && command -v runc >/dev/null || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
    }
    # Every sandbox holds a few descriptors of the server: as many as allowed.
    ulimit -n "$(ulimit -Hn)"
    target/release/bench-scale
    ;;
  *)
    echo "unknown benchmark: $which (known: agent, sandbox, preview, timetravel, diff, sessions, e2b, soak, scale)" >&2
    exit 2
    ;;
esac
