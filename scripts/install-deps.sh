#!/usr/bin/env bash
# Installs what Warren needs on a fresh Debian 12 machine (run as root).
# Idempotent: a second run installs nothing new.
set -euo pipefail

need_apt=()
# nodejs and npm build the web console (scripts/build-ui.sh), never run Warren.
for pkg in btrfs-progs debootstrap util-linux iproute2 nftables ca-certificates curl binutils; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  need_apt+=(nodejs npm)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: this machine kind ships the Rust toolchain through rustup" >&2
  exit 1
fi
