#!/usr/bin/env bash
# End-to-end video call test (TAP): starts turnstone on 127.0.0.1 (TURN on
# a random free port with a random 200-port relay window, REST secret,
# signaling on another random port serving share/www), checks it answers
# STUN and HTTP, then runs call.mjs: two headless Chromium contexts open the
# demo room relay-only and must see each other's video through turnstone.
#
# sio-call.sh runs the same with call_js=sio-call.mjs and a prepare_root
# function that builds the page directory (page_root) after npm ci.
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
trap cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP
workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-call.XXXXXX") || exit 1
call_js=${call_js:-call.mjs}
page_root=${page_root:-$top/share/www}

pre=("${pre_common[@]}" "server answers GET /ice-servers and a STUN Binding on 127.0.0.1")
post="server is still running after the browser test"

tap_begin "$call_js"
tap_prereqs
if declare -F prepare_root >/dev/null && ! prepare_root; then
  not_ok "${pre[3]}"; fail_rest "could not build the page directory"
fi

read -r relay_min relay_max < <(node "$util" relay-window 200)
turn_port=$(node "$util" free-port udp,tcp "${relay_min:-0}" "${relay_max:-0}")
sig_port=$(node "$util" free-port tcp "${relay_min:-0}" "${relay_max:-0}" "${turn_port:-0}")
if ! [[ "${relay_min:-}" =~ ^[0-9]+$ && "${relay_max:-}" =~ ^[0-9]+$ &&
        "${turn_port:-}" =~ ^[0-9]+$ && "${sig_port:-}" =~ ^[0-9]+$ ]]; then
  not_ok "${pre[3]}"; fail_rest "could not pick free ports"
fi
secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')
if start_server --listening-ip=127.0.0.1 --listening-port="$turn_port" --relay-ip=127.0.0.1 \
     --min-port="$relay_min" --max-port="$relay_max" --allow-loopback-peers --no-tls --relay-threads=2 \
     --realm=turnstone.test --use-auth-secret --static-auth-secret="$secret" \
     --signaling-port="$sig_port" --signaling-root="$page_root" --signaling-open-credentials &&
   node "$util" stun-ping 127.0.0.1 "$turn_port" 3000 >"$workdir/ping.out" 2>&1; then
  ok "${pre[3]}"
  diag <"$workdir/ping.out"
else
  not_ok "${pre[3]}"; diag <"$workdir/ping.out" 2>/dev/null; fail_rest "server did not start"
fi

export SIG_PORT=$sig_port TURN_PORT=$turn_port
(cd "$node_dir" && exec timeout -k 10 150 node "$call_js") >"$workdir/js.out" 2>&1 &
node_pid=$!
wait "$node_pid"
node_rc=$?
node_pid=""
renumber <"$workdir/js.out"
t=$((t + n_js))
[ "$node_rc" = 0 ] || { failed=1; say "# $call_js exited with status $node_rc"; }
if [ "$(grep -cE '^(ok|not ok) ' "$workdir/js.out")" != "$n_js" ]; then
  failed=1; say "# $call_js printed the wrong number of results"
fi

if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then ok "$post"; else not_ok "$post"; fi
[ "$failed" = 0 ]
