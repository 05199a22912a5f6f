#!/usr/bin/env bash
# Browser test (TAP): like relay.sh over UDP, but the credential Chromium uses
# is a TURN REST API credential.  A private redis-server (random loopback
# port, no persistence) holds the only shared secret (added with
# 'turnstone-admin secret add'); turnstone runs with --use-auth-secret and
# --redis-userdb and no static users or secrets; 'turnstone-admin credential'
# prints the username/password given to relay.mjs as TURN_USER/TURN_PASS.
# relay.mjs then does its usual checks (relay-only candidates, messages both
# ways, selected pair relay<->relay inside the relay window).
# Everything stays on 127.0.0.1.
#
# Environment: as relay.sh (TURNSTONE_BIN, TOP_SRCDIR, TOP_BUILDDIR,
# CHROMIUM_BIN, RELAY_TIMEOUT_MS, RELAY_MESSAGES, RELAY_VERBOSE), plus
# TURNSTONE_ADMIN_BIN (default: $TOP_BUILDDIR/src/turnstone-admin).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
top=$(cd "$top" && pwd)
build=${TOP_BUILDDIR:-$top}
browser_dir="$top/tests/browser"
server_bin=${TURNSTONE_BIN:-$build/src/turnstone}
admin_bin=${TURNSTONE_ADMIN_BIN:-$build/src/turnstone-admin}
transport=udp
export RELAY_TRANSPORT=udp

t=0
failed=0
server_pid=""
redis_pid=""
node_pid=""
workdir=""

say()  { printf '%s\n' "$*"; }
diag() { sed -e 's/^/# /'; }
ok()     { t=$((t + 1)); say "ok $t - $1"; }
not_ok() { t=$((t + 1)); say "not ok $t - $1"; failed=1; }

# pdeathsig CMD ARGS...: exec CMD so that the kernel kills it if this script
# dies without running its EXIT trap (as common.sh's with_pdeathsig)
pdeathsig() {
  exec python3 -c 'import ctypes, os, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
except Exception:
    pass
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# stop_pid PID NAME: SIGTERM, SIGKILL after 3 s; prints the exit status
stop_pid() {
  local pid=$1 name=$2
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "# $name pid $pid ignored SIGTERM for 3 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  say "# $name pid $pid exit status after SIGTERM: $?"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null
    wait "$node_pid" 2>/dev/null
  fi
  if [ -n "$server_pid" ]; then
    stop_pid "$server_pid" server
    if [ -n "${TOP_BUILDDIR:-}" ] && compgen -G "$TOP_BUILDDIR/sanitizer/*san.$server_pid*" >/dev/null; then
      for f in "$TOP_BUILDDIR"/sanitizer/*san."$server_pid"*; do
        say "# ---- sanitizer report $f ----"
        diag <"$f"
      done
      failed=1
    fi
  fi
  [ -n "$redis_pid" ] && stop_pid "$redis_pid" redis-server
  if [ "$failed" != 0 ] || [ "$rc" != 0 ]; then
    if [ -n "$workdir" ] && [ -s "$workdir/server.log" ]; then
      say "# ---- server log (last 200 lines): $server_bin ----"
      tail -n 200 "$workdir/server.log" | diag
    fi
    if [ -n "$workdir" ] && [ -s "$workdir/redis/redis.log" ]; then
      say "# ---- redis log (last 20 lines) ----"
      tail -n 20 "$workdir/redis/redis.log" | diag
    fi
    [ "$rc" != 0 ] || rc=1
  fi
  [ -n "$workdir" ] && rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP

workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-browser-rest.XXXXXX") || exit 1

if ! command -v node >/dev/null 2>&1; then
  say "1..1"
  not_ok "node is installed (needed for the browser test)"
  exit 1
fi
n_js=$(node "$browser_dir/relay.mjs" --transport udp --count 2>"$workdir/count.err")
if ! [[ "$n_js" =~ ^[0-9]+$ ]]; then
  say "1..1"
  not_ok "relay.mjs --count works"
  diag <"$workdir/count.err"
  exit 1
fi

pre_names=(
  "playwright-core is installed in tests/browser/node_modules"
  "server and turnstone-admin binaries exist and are executable"
  "redis-server starts on 127.0.0.1 (no persistence)"
  "turnstone-admin secret add stores the REST API secret in Redis"
  "server with --use-auth-secret and the secret only in Redis answers a STUN Binding request on 127.0.0.1"
  "turnstone-admin credential prints a REST API credential signed with that secret"
)
post_name="server is still running after the browser test"
n_sh=$((${#pre_names[@]} + 1))
say "1..$((n_sh + n_js))"

fail_rest() {
  local reason=$1
  while [ "$t" -lt "${#pre_names[@]}" ]; do
    not_ok "${pre_names[$t]}"
    say "# not reached: $reason"
  done
  TAP_START=$((t + 1)) TAP_NO_PLAN=1 node "$browser_dir/relay.mjs" --transport udp --fail-all "$reason"
  t=$((t + n_js))
  not_ok "$post_name"
  say "# not reached: $reason"
  exit 1
}

# ---- playwright-core (npm ci from the lock file if needed; see relay.sh) ---
node_dir=$browser_dir
if [ ! -f "$browser_dir/node_modules/playwright-core/package.json" ] && [ ! -w "$browser_dir" ]; then
  node_dir="$build/tests/browser"
  mkdir -p "$node_dir" &&
    cp "$browser_dir/package.json" "$browser_dir/package-lock.json" \
       "$browser_dir/relay.mjs" "$browser_dir/util.mjs" "$node_dir/" &&
    chmod u+w "$node_dir"/package.json "$node_dir"/package-lock.json "$node_dir"/*.mjs
fi
if "$top/tests/lib/npm_ci.sh" "$node_dir" playwright-core; then
  ok "${pre_names[0]}"
else
  not_ok "${pre_names[0]}"
  fail_rest "playwright-core missing (npm ci failed?)"
fi

# ---- binaries ----------------------------------------------------------------
if [ -f "$server_bin" ] && [ -x "$server_bin" ] && [ -f "$admin_bin" ] && [ -x "$admin_bin" ]; then
  ok "${pre_names[1]}"
  say "# $server_bin, $admin_bin"
else
  not_ok "${pre_names[1]}"
  say "# missing or not executable: $server_bin or $admin_bin (build them first)"
  fail_rest "no server or turnstone-admin binary"
fi

# ---- ports: relay window, server port, redis port (all distinct) --------------
read -r relay_min relay_max < <(node "$browser_dir/util.mjs" relay-window 200)
port=$(node "$browser_dir/util.mjs" free-udp-port "${relay_min:-0}" "${relay_max:-0}")
redis_port=$(node "$browser_dir/util.mjs" free-port tcp "${relay_min:-0}" "${relay_max:-0}" "${port:-0}")
if ! [[ "${relay_min:-}" =~ ^[0-9]+$ && "${relay_max:-}" =~ ^[0-9]+$ && "${port:-}" =~ ^[0-9]+$ &&
        "${redis_port:-}" =~ ^[0-9]+$ ]]; then
  not_ok "${pre_names[2]}"
  say "# could not pick free ports (relay window '${relay_min:-}'..'${relay_max:-}', port '${port:-}', redis '${redis_port:-}')"
  fail_rest "could not pick free ports"
fi

# ---- redis-server --------------------------------------------------------------
redis_up=0
if command -v redis-server >/dev/null 2>&1; then
  mkdir -p "$workdir/redis"
  pdeathsig redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$workdir/redis" --daemonize no --logfile "$workdir/redis/redis.log" \
    </dev/null >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 50); do
    kill -0 "$redis_pid" 2>/dev/null || break
    if python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)' "$redis_port" 2>/dev/null; then
      redis_up=1
      break
    fi
    sleep 0.1
  done
else
  say "# redis-server is not installed"
fi
if [ "$redis_up" = 1 ]; then
  ok "${pre_names[2]}"
  say "# redis-server pid $redis_pid on 127.0.0.1:$redis_port"
else
  not_ok "${pre_names[2]}"
  fail_rest "redis-server did not start"
fi

# ---- the secret, in Redis only ---------------------------------------------------
realm=turnstone.test
secret="browser-rest-$RANDOM$RANDOM"
redis_url="redis://127.0.0.1:$redis_port/0"
admin() { "$admin_bin" --redis "$redis_url" --realm "$realm" "$@"; }
if admin secret add "$secret" >"$workdir/admin.out" 2>&1 &&
   admin secret list >"$workdir/secrets.out" 2>>"$workdir/admin.out" &&
   [ "$(cat "$workdir/secrets.out")" = "$secret" ]; then
  ok "${pre_names[3]}"
else
  not_ok "${pre_names[3]}"
  diag <"$workdir/admin.out"
  say "# secret list: $(tr '\n' ' ' <"$workdir/secrets.out" 2>/dev/null)"
  fail_rest "could not store the secret"
fi

# ---- the server --------------------------------------------------------------------
server_args=(
  --listening-ip=127.0.0.1 --listening-port="$port"
  --relay-ip=127.0.0.1 --min-port="$relay_min" --max-port="$relay_max"
  --realm="$realm" --relay-threads=2 --allow-loopback-peers
  --no-tcp --no-tls
  --use-auth-secret --redis-userdb="ip=127.0.0.1 port=$redis_port dbname=0"
)
say "# starting: $server_bin ${server_args[*]}"
pdeathsig "$server_bin" --no-signaling "${server_args[@]}" >"$workdir/server.log" 2>&1 </dev/null &
server_pid=$!
ping_ok=0
deadline=$((SECONDS + 15))
while [ "$SECONDS" -lt "$deadline" ]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid"
    say "# server exited early with status $?"
    server_pid=""
    break
  fi
  if node "$browser_dir/util.mjs" stun-ping 127.0.0.1 "$port" 1000 >"$workdir/ping.out" 2>&1; then
    ping_ok=1
    break
  fi
done
if [ "$ping_ok" = 1 ]; then
  ok "${pre_names[4]}"
  diag <"$workdir/ping.out"
else
  not_ok "${pre_names[4]}"
  diag <"$workdir/ping.out"
  fail_rest "server never answered a STUN Binding request (port $port)"
fi

# ---- the credential ------------------------------------------------------------------
now=$(date +%s)
admin --json credential browser-user --ttl 600 --host 127.0.0.1 >"$workdir/cred.json" 2>"$workdir/cred.err"
cred_rc=$?
# prints: username US password US problems (empty when fine); US = \x1f
cred=$(python3 - "$workdir/cred.json" "$secret" "$now" <<'EOF'
import base64, hashlib, hmac, json, sys
path, secret, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
problems = []
try:
    j = json.load(open(path))
except (OSError, ValueError) as e:
    print("\x1f\x1fnot JSON: %s" % e)
    sys.exit(0)
u, p = j.get("username") or "", j.get("password") or ""
exp, _, uid = u.partition(":")
if uid != "browser-user" or not exp.isdigit() or not now + 595 <= int(exp) <= now + 610:
    problems.append("username %r is not <now+600>:browser-user" % u)
want = base64.b64encode(hmac.new(secret.encode(), u.encode(), hashlib.sha1).digest()).decode()
if p != want:
    problems.append("password %r is not base64(HMAC-SHA1(secret, username)) = %r" % (p, want))
print("%s\x1f%s\x1f%s" % (u, p, "; ".join(problems)))
EOF
)
IFS=$'\x1f' read -r turn_user turn_pass cred_problems <<<"$cred"
if [ "$cred_rc" = 0 ] && [ -n "$turn_user" ] && [ -n "$turn_pass" ] && [ -z "$cred_problems" ]; then
  ok "${pre_names[5]}"
  say "# TURN_USER=$turn_user"
else
  not_ok "${pre_names[5]}"
  say "# turnstone-admin credential: exit $cred_rc; ${cred_problems:-}"
  diag <"$workdir/cred.json"
  diag <"$workdir/cred.err"
  fail_rest "no usable REST API credential"
fi

# ---- Chromium through the relay (relay.mjs), numbered on from ours ------------------
export TURN_URL="turn:127.0.0.1:$port?transport=udp"
export TURN_USER="$turn_user" TURN_PASS="$turn_pass"
export RELAY_MIN="$relay_min" RELAY_MAX="$relay_max"
export TAP_START=$((t + 1)) TAP_NO_PLAN=1
(cd "$node_dir" && exec timeout -k 10 150 node relay.mjs --transport udp) &
node_pid=$!
wait "$node_pid"
node_rc=$?
node_pid=""
t=$((t + n_js))
if [ "$node_rc" != 0 ]; then
  failed=1
  say "# relay.mjs exited with status $node_rc"
fi

if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
  ok "$post_name"
else
  not_ok "$post_name"
  if [ -n "$server_pid" ]; then
    wait "$server_pid"
    say "# server exited with status $?"
    server_pid=""
  fi
fi

[ "$failed" = 0 ]
