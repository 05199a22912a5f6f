#!/usr/bin/env bash
# Rooms across a fleet (TAP): starts a private redis-server and two
# turnstone servers on 127.0.0.1 sharing it (signaling-redis, a short
# signaling-redis-ttl so that a dead server is noticed quickly), checks
# both registered their liveness key, and runs fleet.mjs against them with
# the npm "ws" client. fleet.mjs stops and restarts Redis and kills server 2
# with SIGKILL.
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
source "$top/tests/lib/common.sh"   # the helpers tests/lib/redis.sh needs
source "$top/tests/lib/redis.sh"
workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-fleet.XXXXXX") || exit 1
redis_pid_file="$workdir/redis2.pid"

# Our cleanup, then common.sh's (which exits): the Redis fleet.mjs restarted
# (pid in a file), the first one, and both servers.
fleet_cleanup() {
  local rc=$? p
  p=$(cat "$redis_pid_file" 2>/dev/null)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; fi
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
     "server 1 starts with signaling-redis" "server 2 starts with the same signaling-redis"
     "both servers put their liveness key turnstone/signal/server/<id> in Redis")
post="server 1 is still running after the tests"

tap_begin fleet.mjs
tap_prereqs

if start_redis >"$workdir/redis.out" 2>&1; then ok "${pre[3]}"; else
  not_ok "${pre[3]}"; diag <"$workdir/redis.out"; fail_rest "no redis-server"; fi

ports=()
for _ in 1 2 3 4; do
  p=$(node "$util" free-port udp,tcp 0 0 "$REDIS_PORT" "${ports[@]}")
  [[ "$p" =~ ^[0-9]+$ ]] || { not_ok "${pre[4]}"; fail_rest "could not pick free ports"; }
  ports+=("$p")
done
secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')
ttl=6
common=(--listening-ip=127.0.0.1 --no-tls --relay-threads=1 --realm=turnstone.test --use-auth-secret
        --static-auth-secret="$secret" --signaling-open-credentials --signaling-room-size=3
        --signaling-redis="redis://127.0.0.1:$REDIS_PORT/0" --signaling-redis-ttl=$ttl)

sig_port=${ports[1]}; server_log="$workdir/s1.log"
if start_server "${common[@]}" --listening-port="${ports[0]}" --signaling-port="$sig_port"; then
  ok "${pre[4]}"; pid1=$server_pid
else
  not_ok "${pre[4]}"; fail_rest "server 1 did not start"
fi
server_pid=""
sig_port=${ports[3]}; server_log="$workdir/s2.log"
if start_server "${common[@]}" --listening-port="${ports[2]}" --signaling-port="$sig_port"; then
  ok "${pre[5]}"; pid2=$server_pid
else
  not_ok "${pre[5]}"; fail_rest "server 2 did not start"
fi
extra_pids+=("$pid2"); server_pid=$pid1   # cleanup stops both, reports server 1's exit status

n_keys=0
for _ in $(seq 1 50); do
  n_keys=$(rcli --scan --pattern 'turnstone/signal/server/*' 2>/dev/null | wc -l)
  [ "$n_keys" = 2 ] && break
  sleep 0.2
done
if [ "$n_keys" = 2 ]; then ok "${pre[6]}"; else not_ok "${pre[6]}"; say "# $n_keys liveness keys"; fi

export SIG_PORT_1=${ports[1]} SIG_PORT_2=${ports[3]} SERVER_PID_2=$pid2 ROOM_SIZE=3 FLEET_TTL=$ttl \
  REDIS_PID=$REDIS_PID REDIS_PORT=$REDIS_PORT REDIS_DIR=$REDIS_DIR REDIS_PID_FILE=$redis_pid_file
(cd "$node_dir" && exec timeout -k 5 200 node fleet.mjs) >"$workdir/js.out" 2>&1 &
node_pid=$!
wait "$node_pid"
node_rc=$?
node_pid=""
wait "$REDIS_PID" 2>/dev/null; REDIS_PID=   # fleet.mjs stopped it
renumber <"$workdir/js.out"
t=$((t + n_js))
[ "$node_rc" = 0 ] || { failed=1; say "# fleet.mjs exited with status $node_rc"; }
if [ "$(grep -cE '^(ok|not ok) ' "$workdir/js.out")" != "$n_js" ]; then
  failed=1; say "# fleet.mjs printed the wrong number of results"
fi

if kill -0 "$pid1" 2>/dev/null; then ok "$post"; else not_ok "$post"; fi
[ "$failed" = 0 ]
