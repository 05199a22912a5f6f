#!/usr/bin/env bash
# socket.io protocol tests (TAP): starts turnstone with the signaling
# endpoint on a random free 127.0.0.1 port with signaling-auth-secret (join
# tokens required) and a short idle timeout (pingInterval 2.5 s), and runs
# sio.mjs against /socket.io/ with raw HTTP, the npm "ws" client and the npm
# socket.io-client v4 (installed by npm ci from package-lock.json).
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
trap cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP
workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-sio.XXXXXX") || exit 1

pre=("${pre_common[@]}" "with signaling-socketio = false, /socket.io/ answers 404 (and /ice-servers 200)"
     "server starts with signaling-auth-secret and answers on 127.0.0.1")
post="server is still running after the socket.io tests"

tap_begin sio.mjs
tap_prereqs

turn_port=$(node "$util" free-port udp,tcp 0 0)
sig_port=$(node "$util" free-port tcp 0 0 "$turn_port")
if ! [[ "${turn_port:-}" =~ ^[0-9]+$ && "${sig_port:-}" =~ ^[0-9]+$ ]]; then
  not_ok "${pre[3]}"; fail_rest "could not pick free ports"
fi
secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')
token_secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')
idle=5 max_message=65536
# First a server with socket.io off on the same ports, stopped before the real one starts.
if start_server --listening-ip=127.0.0.1 --listening-port="$turn_port" --no-tls --realm=turnstone.test \
     --relay-threads=1 --use-auth-secret --static-auth-secret="$secret" --signaling-port="$sig_port" \
     --signaling-root="$top/share/www" --signaling-socketio=false &&
   [ "$(node -e 'fetch(process.argv[1]).then(r => console.log(r.status), () => console.log("error"))' \
          "http://127.0.0.1:$sig_port/socket.io/?EIO=4&transport=polling")" = 404 ]; then
  ok "${pre[3]}"
else
  not_ok "${pre[3]}"
fi
if [ -n "$server_pid" ]; then
  kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""
fi
if start_server --listening-ip=127.0.0.1 --listening-port="$turn_port" --no-tls --realm=turnstone.test \
     --relay-threads=1 --use-auth-secret --static-auth-secret="$secret" \
     --signaling-port="$sig_port" --signaling-root="$top/share/www" --signaling-auth-secret="$token_secret" \
     --signaling-idle-timeout=$idle --signaling-max-message=$max_message --signaling-max-conns-per-ip=200 \
     --verbose; then
  ok "${pre[4]}"
else
  not_ok "${pre[4]}"; fail_rest "server did not start"
fi

export SIG_PORT=$sig_port TOKEN_SECRET=$token_secret SECRET=$secret IDLE=$idle MAX_MESSAGE=$max_message
(cd "$node_dir" && exec timeout -k 5 150 node sio.mjs) >"$workdir/js.out" 2>&1 &
node_pid=$!
wait "$node_pid"
node_rc=$?
node_pid=""
renumber <"$workdir/js.out"
t=$((t + n_js))
[ "$node_rc" = 0 ] || { failed=1; say "# sio.mjs exited with status $node_rc"; }
if [ "$(grep -cE '^(ok|not ok) ' "$workdir/js.out")" != "$n_js" ]; then
  failed=1; say "# sio.mjs printed the wrong number of results"
fi

if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then ok "$post"; else not_ok "$post"; fi
[ "$failed" = 0 ]
