#!/usr/bin/env bash
# Who gets TURN credentials, and the signaling limits (TAP): starts four
# turnstone servers on 127.0.0.1 (see secure.mjs): A from etc/turnstone.conf
# as shipped plus use-auth-secret and a static-auth-secret (no token secret,
# no open credentials: STUN only), B the same plus signaling-auth-secret
# (join tokens), C with signaling-open-credentials and small limits, D with a
# coturn-style command line (no signaling key: no signaling at all); has
# turnstone-admin signaling-token print a token from a configuration file
# holding B's secret, and runs secure.mjs against A, B and C.
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
trap cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP
workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-sigsec.XXXXXX") || exit 1
admin_bin=${TURNSTONE_ADMIN_BIN:-$build/src/turnstone-admin}

pre=("${pre_common[@]}"
     "server A starts from etc/turnstone.conf with use-auth-secret and a static-auth-secret"
     "server B starts from etc/turnstone.conf with the same and signaling-auth-secret"
     "server C starts with small signaling limits"
     "turnstone-admin -c FILE signaling-token ROOM carol prints a token"
     "server D with a coturn-style command line (no signaling key) answers STUN and opens no signaling port")
post="every server is still running after the tests"

tap_begin secure.mjs
tap_prereqs

ports=()
for _ in 1 2 3 4 5 6 7; do
  p=$(node "$util" free-port udp,tcp 0 0 "${ports[@]}")
  [[ "$p" =~ ^[0-9]+$ ]] || { not_ok "${pre[3]}"; fail_rest "could not pick free ports"; }
  ports+=("$p")
done
secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')
token_secret=$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')
ttl=900
# No signaling-root: A must find the page itself (installed, or the source tree's share/www).
common=(--listening-ip=127.0.0.1 --no-tls --relay-threads=1 --use-auth-secret --static-auth-secret="$secret"
        --signaling-credential-ttl=$ttl)

# start NAME LOG ARGS...: start_server, keeping earlier servers for cleanup.
start() {
  local name=$1; server_log="$workdir/$2"; shift 2
  [ -n "$server_pid" ] && extra_pids+=("$server_pid")
  server_pid=""
  if start_server "$@"; then ok "$name"; else not_ok "$name"; diag <"$server_log"; fail_rest "server did not start"; fi
}

sig_port=${ports[1]}
start "${pre[3]}" a.log -c "$top/etc/turnstone.conf" "${common[@]}" --listening-port="${ports[0]}" \
  --signaling-port="$sig_port"
sig_port=${ports[3]}
start "${pre[4]}" b.log -c "$top/etc/turnstone.conf" "${common[@]}" --listening-port="${ports[2]}" --signaling-port="$sig_port" \
  --signaling-auth-secret="$token_secret" --signaling-open-credentials
sig_port=${ports[5]}
start "${pre[5]}" c.log "${common[@]}" --listening-port="${ports[4]}" --signaling-port="$sig_port" \
  --signaling-open-credentials --signaling-max-conns-per-ip=4 --signaling-max-rooms=2 \
  --signaling-output-limit=65536 --signaling-max-json-depth=8 --signaling-rate=1000

admin_room="admin room: $RANDOM"
printf 'signaling-auth-secret = "%s";\n' "$token_secret" >"$workdir/admin.conf"
admin_token=$("$admin_bin" -c "$workdir/admin.conf" signaling-token "$admin_room" carol 2>"$workdir/admin.err")
if [[ "$admin_token" =~ ^[0-9]+:carol:.+:[A-Za-z0-9_-]{43}$ ]]; then
  ok "${pre[6]}"; say "# $admin_token"
else
  not_ok "${pre[6]}"; say "# got '$admin_token'"; diag <"$workdir/admin.err"
fi

# D: TURN only, as a coturn user would start it; the log must not show a
# signaling listener (and nothing may answer HTTP on the default port
# through it: the log is the check, port 8080 may belong to someone else).
server_log="$workdir/d.log"
"$server_bin" --listening-ip=127.0.0.1 --listening-port="${ports[6]}" --no-tls --relay-threads=1 \
  --lt-cred-mech --user=u:p --realm=turnstone.test --pidfile="$workdir/d.pid" -v >"$server_log" 2>&1 </dev/null &
extra_pids+=("$!")
# The pidfile is written once start-up (signaling included) is done.
for _ in $(seq 1 50); do [ -s "$workdir/d.pid" ] && break; sleep 0.1; done
if [ -s "$workdir/d.pid" ] && node "$util" stun-ping 127.0.0.1 "${ports[6]}" 5000 >"$workdir/d.ping" 2>&1 &&
   ! grep -q 'signaling' "$server_log"; then
  ok "${pre[7]}"
else
  not_ok "${pre[7]}"; diag <"$workdir/d.ping"; diag <"$server_log"
fi

export PORT_A=${ports[1]} PORT_B=${ports[3]} PORT_C=${ports[5]} SECRET=$secret TOKEN_SECRET=$token_secret \
  TTL=$ttl ADMIN_TOKEN=$admin_token ADMIN_ROOM=$admin_room
(cd "$node_dir" && exec timeout -k 5 150 node secure.mjs) >"$workdir/js.out" 2>&1 &
node_pid=$!
wait "$node_pid"
node_rc=$?
node_pid=""
renumber <"$workdir/js.out"
t=$((t + n_js))
[ "$node_rc" = 0 ] || { failed=1; say "# secure.mjs exited with status $node_rc"; }
if [ "$(grep -cE '^(ok|not ok) ' "$workdir/js.out")" != "$n_js" ]; then
  failed=1; say "# secure.mjs printed the wrong number of results"
fi

alive=1
for p in "${extra_pids[@]}" "$server_pid"; do kill -0 "$p" 2>/dev/null || alive=0; done
if [ "$alive" = 1 ]; then ok "$post"; else not_ok "$post"; fi
if [ "$failed" != 0 ]; then
  for l in a b c d; do say "# ---- server $l log (last 40 lines) ----"; tail -n 40 "$workdir/$l.log" | diag; done
fi
[ "$failed" = 0 ]
