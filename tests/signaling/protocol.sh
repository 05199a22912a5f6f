#!/usr/bin/env bash
# Signaling protocol tests (TAP): starts turnstone with the signaling
# endpoint on a random free 127.0.0.1 port (signaling-open-credentials, as
# the local demo; small room size, rate and idle
# timeout so the limits are quick to reach) and runs protocol.mjs against it
# with the npm "ws" client (installed by npm ci from package-lock.json).
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
trap cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP
workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-signaling.XXXXXX") || exit 1

pre=("${pre_common[@]}" "server starts and serves GET /ice-servers on 127.0.0.1")
post="server is still running after the protocol tests"

tap_begin protocol.mjs
tap_prereqs

turn_port=$(node "$util" free-port udp,tcp 0 0)
sig_port=$(node "$util" free-port tcp 0 0 "$turn_port")
if ! [[ "${turn_port:-}" =~ ^[0-9]+$ && "${sig_port:-}" =~ ^[0-9]+$ ]]; then
  not_ok "${pre[3]}"; fail_rest "could not pick free ports"
fi
secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')
origin="http://allowed.test"
room_size=3 rate=20 idle=5 ttl=600 max_message=65536
if start_server --listening-ip=127.0.0.1 --listening-port="$turn_port" --no-tls --realm=turnstone.test \
     --relay-threads=1 --use-auth-secret --static-auth-secret="$secret" \
     --signaling-port="$sig_port" --signaling-root="$top/share/www" --signaling-origin="$origin" \
     --signaling-room-size=$room_size --signaling-rate=$rate --signaling-idle-timeout=$idle \
     --signaling-credential-ttl=$ttl --signaling-max-message=$max_message --signaling-open-credentials; then
  ok "${pre[3]}"
else
  not_ok "${pre[3]}"; fail_rest "server did not start"
fi

export SIG_PORT=$sig_port SIG_ORIGIN=$origin TURN_PORT=$turn_port SECRET=$secret TTL=$ttl \
  ROOM_SIZE=$room_size RATE=$rate IDLE=$idle MAX_MESSAGE=$max_message INDEX_HTML="$top/share/www/index.html"
(cd "$node_dir" && exec timeout -k 5 120 node protocol.mjs) >"$workdir/js.out" 2>&1 &
node_pid=$!
wait "$node_pid"
node_rc=$?
node_pid=""
renumber <"$workdir/js.out"
t=$((t + n_js))
[ "$node_rc" = 0 ] || { failed=1; say "# protocol.mjs exited with status $node_rc"; }
if [ "$(grep -cE '^(ok|not ok) ' "$workdir/js.out")" != "$n_js" ]; then
  failed=1; say "# protocol.mjs printed the wrong number of results"
fi

if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then ok "$post"; else not_ok "$post"; fi
[ "$failed" = 0 ]
