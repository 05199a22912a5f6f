#!/usr/bin/env bash
# A video call across a fleet (TAP): a private redis-server and two
# turnstone servers on 127.0.0.1 sharing it (signaling-redis, one
# static-auth-secret, each its own TURN port and half of a 200-port relay
# window). call.mjs opens page A on server 1 and page B on server 2 in one
# room, relay only: each relays through its own server and both must decode
# the other's video. Then Redis is stopped and restarted, both servers must
# re-register, and a second call (a new room) must succeed the same way.
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
source "$top/tests/lib/common.sh"   # the helpers tests/lib/redis.sh needs
source "$top/tests/lib/redis.sh"
workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-fleetcall.XXXXXX") || exit 1

fleet_cleanup() {
  local rc=$?
  kill_redis
  [ -n "$REDIS_DIR" ] && rm -rf "$REDIS_DIR"
  if [ "$failed" != 0 ] || [ "$rc" != 0 ]; then
    for f in "$workdir"/s1.log "$workdir"/s2.log; do
      [ -s "$f" ] || continue
      say "# ---- $(basename "$f") (last 80 lines) ----"
      tail -n 80 "$f" | diag
    done
  fi
  (exit "$rc")
  cleanup
}
trap fleet_cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP

pre=("${pre_common[@]}" "redis-server starts on 127.0.0.1"
     "server 1 starts with signaling-redis and answers STUN" "server 2 starts with the same signaling-redis and answers STUN"
     "both servers put their liveness key in Redis")
mid=("Redis stopped and restarted on the same port" "both servers re-registered their liveness key")
post="both servers are still running after the calls"

# Like tap_begin, for two runs of call.mjs.
if ! command -v node >/dev/null 2>&1; then say "1..1"; not_ok "${pre[0]}"; exit 1; fi
js=call.mjs
n_js=$(node "$sig_dir/$js" --count 2>"$workdir/count.err")
if ! [[ "$n_js" =~ ^[0-9]+$ ]]; then say "1..1"; not_ok "$js --count works"; diag <"$workdir/count.err"; exit 1; fi
say "1..$((${#pre[@]} + 2 * n_js + ${#mid[@]} + 1))"

# Fails what is left of the plan and exits.
bail() {
  while [ "$t" -lt "${#pre[@]}" ]; do not_ok "${pre[$t]}"; say "# not reached: $1"; done
  local left=$((${#pre[@]} + 2 * n_js + ${#mid[@]} - t))
  while [ "$left" -gt 0 ]; do not_ok "not reached: $1"; left=$((left - 1)); done
  not_ok "$post"; exit 1
}
fail_rest() { bail "$@"; }
tap_prereqs

if start_redis >"$workdir/redis.out" 2>&1; then ok "${pre[3]}"; else
  not_ok "${pre[3]}"; diag <"$workdir/redis.out"; bail "no redis-server"; fi

read -r relay_min relay_max < <(node "$util" relay-window 200)
ports=()
for _ in 1 2 3 4; do
  p=$(node "$util" free-port udp,tcp "${relay_min:-0}" "${relay_max:-0}" "$REDIS_PORT" "${ports[@]}")
  [[ "$p" =~ ^[0-9]+$ ]] || bail "could not pick free ports"
  ports+=("$p")
done
[[ "${relay_min:-}" =~ ^[0-9]+$ && "${relay_max:-}" =~ ^[0-9]+$ ]] || bail "no relay window"
half=$(((relay_max - relay_min) / 2))
secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')
common=(--listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --allow-loopback-peers --no-tls --relay-threads=2
        --realm=turnstone.test --use-auth-secret --static-auth-secret="$secret" --signaling-open-credentials
        --signaling-root="$top/share/www" --signaling-redis="redis://127.0.0.1:$REDIS_PORT")

# start_one N TURN SIG MIN MAX: starts server N; sets pidN.
start_one() {
  local n=$1
  sig_port=$3; server_log="$workdir/s$n.log"; server_pid=""
  if start_server "${common[@]}" --listening-port="$2" --signaling-port="$3" --min-port="$4" --max-port="$5" &&
     node "$util" stun-ping 127.0.0.1 "$2" 3000 >"$workdir/ping$n.out" 2>&1; then
    ok "${pre[$((3 + n))]}"
  else
    not_ok "${pre[$((3 + n))]}"; diag <"$workdir/ping$n.out" 2>/dev/null; bail "server $n did not start"
  fi
  eval "pid$n=\$server_pid"
}
start_one 1 "${ports[0]}" "${ports[1]}" "$relay_min" "$((relay_min + half))"
start_one 2 "${ports[2]}" "${ports[3]}" "$((relay_min + half + 1))" "$relay_max"
extra_pids+=("$pid2"); server_pid=$pid1

# wait_keys: until both liveness keys are in Redis (10 s).
wait_keys() {
  local n=0
  for _ in $(seq 1 50); do
    n=$(rcli --scan --pattern 'turnstone/signal/server/*' 2>/dev/null | wc -l)
    [ "$n" = 2 ] && return 0
    sleep 0.2
  done
  say "# $n liveness keys"
  return 1
}
if wait_keys; then ok "${pre[6]}"; else not_ok "${pre[6]}"; fi

# call RUN: one run of call.mjs (A on server 1, B on server 2), numbered on.
call() {
  say "# ---- call $1: page A on port ${ports[1]}, page B on port ${ports[3]} ----"
  (cd "$node_dir" && SIG_PORT=${ports[1]} SIG_PORT_B=${ports[3]} TURN_PORT=${ports[0]} \
     exec timeout -k 10 150 node call.mjs) >"$workdir/js$1.out" 2>&1 &
  node_pid=$!
  wait "$node_pid"
  local rc=$?
  node_pid=""
  renumber <"$workdir/js$1.out"
  t=$((t + n_js))
  [ "$rc" = 0 ] || { failed=1; say "# call.mjs (call $1) exited with status $rc"; }
  if [ "$(grep -cE '^(ok|not ok) ' "$workdir/js$1.out")" != "$n_js" ]; then
    failed=1; say "# call.mjs (call $1) printed the wrong number of results"
  fi
}
call 1

port=$REDIS_PORT
kill_redis
if start_redis "$port" >"$workdir/redis2.out" 2>&1; then ok "${mid[0]}"; else
  not_ok "${mid[0]}"; diag <"$workdir/redis2.out"; bail "redis-server did not restart"; fi
if wait_keys; then ok "${mid[1]}"; else not_ok "${mid[1]}"; fi
call 2

if kill -0 "$pid1" 2>/dev/null && kill -0 "$pid2" 2>/dev/null; then ok "$post"; else not_ok "$post"; fi
[ "$failed" = 0 ]
