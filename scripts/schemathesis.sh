#!/usr/bin/env bash
# Property-based API test: schemathesis (from PyPI) against a running agent,
# with the committed docs/openapi/agent.json. Fails on any 5xx or any
# response that breaks the schema.
#
# The agent runs as `nobody` in a throwaway directory with a --root jail:
# schemathesis sends arbitrary generated commands and paths.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${WARREN_TEST_VENV:-/var/cache/warren-test/venv}
bin=target/debug/warren
[ -x "$bin" ] || cargo build -p warren

work=$(mktemp -d /tmp/warren-schemathesis.XXXXXX)
chown 65534:65534 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=schemathesis-$RANDOM$RANDOM
setpriv --reuid=65534 --regid=65534 --clear-groups \
  "$bin" agent --listen "127.0.0.1:$port" --token "$token" --workdir "$work" --root "$work" \
  --state-dir "$work/.state" --request-timeout-secs 2 \
  --max-timeout-ms 5000 >"$work.log" 2>&1 &
agent=$!
cleanup() { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; rm -rf "$work" "$work.log"; }
trap cleanup EXIT

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done

"$venv/bin/schemathesis" run docs/openapi/agent.json \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance \
  --exclude-path-regex '/(ws|watch)$' \
  --exclude-path /v1/processes/{id}/logs \
  --exclude-path /v1/sessions/{id}/events \
  --exclude-path /v1/agents/{agent}/install \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --request-timeout 15 \
  --no-color
echo "schemathesis: agent API passed"
