#!/usr/bin/env bash
# The workspace's declared rust-version must be at least what every
# dependency built for this platform declares (clippy's incompatible_msrv
# lint checks our own code against it). Fails naming the packages that need
# more.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" |
  python3 -c '
import json, sys
meta = json.load(sys.stdin)
def show(v):
    return ".".join(map(str, v))
def version(v):
    return tuple(int(x) for x in (v or "0").split("."))
members = set(meta["workspace_members"])
packages = {p["id"]: p for p in meta["packages"]}
used = {n["id"] for n in meta["resolve"]["nodes"]}
declared = {version(packages[m]["rust_version"]) for m in members}
if len(declared) != 1:
    sys.exit(f"workspace members declare different rust-versions: {sorted(declared)}")
ours = declared.pop()
need = [(version(p["rust_version"]), p["name"], p["version"])
        for pid, p in packages.items() if pid in used and pid not in members]
too_new = sorted(n for n in need if n[0] > ours)
if too_new:
    for v, name, ver in too_new:
        print(f"{name} {ver} needs rust {show(v)}", file=sys.stderr)
    sys.exit(f"rust-version {show(ours)} in Cargo.toml is lower than the dependencies need")
print(f"rust-version {show(ours)} covers every dependency")
'
