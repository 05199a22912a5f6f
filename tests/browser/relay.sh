#!/usr/bin/env bash
# Browser test (TAP): two WebRTC peers in headless Chromium exchange
# data-channel messages relayed through turnstone on 127.0.0.1.
#
# Starts $TURNSTONE_BIN on a random free UDP port with a random 200-port relay
# window, waits until it answers a STUN Binding request, then runs relay.mjs
# (which launches Chromium).  Everything stays on loopback.
#
# Usage: relay.sh [--transport udp|tcp|tls]   (default: $RELAY_TRANSPORT or udp)
#   udp  Chromium reaches the server with turn:127.0.0.1:PORT?transport=udp
#        (server started with --no-tcp --no-tls).
#   tcp  turn:127.0.0.1:PORT?transport=tcp; the server listens on UDP+TCP PORT
#        (--no-tls), readiness is checked with a STUN Binding over TCP.
#   tls  turns:127.0.0.1:TLSPORT?transport=tcp; a self-signed certificate for
#        127.0.0.1 is made with openssl in the temp dir, the server gets
#        --tls-listening-port/--cert/--pkey (--no-tcp), readiness is checked
#        with a STUN Binding over TLS verified against that certificate, and
#        Chromium gets --ignore-certificate-errors (this run only).
# relay_tcp.sh and relay_tls.sh run this script with --transport tcp / tls.
#
# Environment:
#   TURNSTONE_BIN  server binary (default: $TOP_BUILDDIR/src/turnstone)
#   TOP_SRCDIR     source tree root (default: derived from this script)
#   TOP_BUILDDIR   build tree root  (default: $TOP_SRCDIR)
#   CHROMIUM_BIN   default /usr/lib/chromium/chromium
#   RELAY_TRANSPORT udp (default), tcp or tls; --transport wins
#   RELAY_TIMEOUT_MS, RELAY_MESSAGES, RELAY_VERBOSE: passed to relay.mjs
set -u

transport=${RELAY_TRANSPORT:-udp}
while [ $# -gt 0 ]; do
  case $1 in
    --transport) transport=${2:-}; shift 2 || shift ;;
    --transport=*) transport=${1#--transport=}; shift ;;
    *) printf '1..1\nnot ok 1 - relay.sh arguments\n# unknown argument: %s\n' "$1"; exit 2 ;;
  esac
done
case $transport in
  udp|tcp|tls) ;;
  *) printf '1..1\nnot ok 1 - relay.sh arguments\n# --transport must be udp, tcp or tls, not "%s"\n' "$transport"; exit 2 ;;
esac
export RELAY_TRANSPORT=$transport

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
top=$(cd "$top" && pwd)
build=${TOP_BUILDDIR:-$top}
browser_dir="$top/tests/browser"
server_bin=${TURNSTONE_BIN:-$build/src/turnstone}

t=0
failed=0
server_pid=""
node_pid=""
workdir=""

say()  { printf '%s\n' "$*"; }
diag() { sed -e 's/^/# /'; }
ok()     { t=$((t + 1)); say "ok $t - $1"; }
not_ok() { t=$((t + 1)); say "not ok $t - $1"; failed=1; }

dump_server_log() {
  if [ -n "$workdir" ] && [ -s "$workdir/server.log" ]; then
    say "# ---- server log (last 200 lines): $server_bin ----"
    tail -n 200 "$workdir/server.log" | diag
    say "# ---- end of server log ----"
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null
    wait "$node_pid" 2>/dev/null
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 30); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      say "# server pid $server_pid ignored SIGTERM for 3 s; sending SIGKILL"
      kill -KILL "$server_pid" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
    say "# server pid $server_pid exit status after SIGTERM: $?"
    if [ -n "${TOP_BUILDDIR:-}" ] && compgen -G "$TOP_BUILDDIR/sanitizer/*san.$server_pid*" >/dev/null; then
      for f in "$TOP_BUILDDIR"/sanitizer/*san."$server_pid"*; do
        say "# ---- sanitizer report $f ----"
        diag <"$f"
      done
    fi
  fi
  if [ "$failed" != 0 ] || [ "$rc" != 0 ]; then
    dump_server_log
    [ "$rc" != 0 ] || rc=1
  fi
  [ -n "$workdir" ] && rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP

workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-browser-$transport.XXXXXX") || exit 1

# The plan comes first, so we need relay.mjs's test count up front.
if ! command -v node >/dev/null 2>&1; then
  say "1..1"
  not_ok "node is installed (needed for the browser test)"
  exit 1
fi
n_js=$(node "$browser_dir/relay.mjs" --transport "$transport" --count 2>"$workdir/count.err")
if ! [[ "$n_js" =~ ^[0-9]+$ ]]; then
  say "1..1"
  not_ok "relay.mjs --count works"
  diag <"$workdir/count.err"
  exit 1
fi

# Our own tests: pre_names before relay.mjs, post_name after it.  The last
# pre test is always the server start; TLS adds the certificate before it.
case $transport in
  udp) ping_what="a STUN Binding request on 127.0.0.1" ;;
  tcp) ping_what="a STUN Binding request over TCP on 127.0.0.1" ;;
  tls) ping_what="a STUN Binding request over TLS on 127.0.0.1 (certificate verified)" ;;
esac
pre_names=(
  "playwright-core is installed in tests/browser/node_modules"
  "server binary exists and is executable"
)
[ "$transport" = tls ] && pre_names+=("openssl makes a self-signed certificate for 127.0.0.1")
pre_names+=("server answers $ping_what")
post_name="server is still running after the browser test"
n_sh=$((${#pre_names[@]} + 1))
say "1..$((n_sh + n_js))"

# Emit every remaining test as failed (we cannot get that far) and exit.
fail_rest() {
  local reason=$1
  while [ "$t" -lt "${#pre_names[@]}" ]; do
    not_ok "${pre_names[$t]}"
    say "# not reached: $reason"
  done
  TAP_START=$((t + 1)) TAP_NO_PLAN=1 node "$browser_dir/relay.mjs" --transport "$transport" --fail-all "$reason"
  t=$((t + n_js))
  not_ok "$post_name"
  say "# not reached: $reason"
  exit 1
}

# ---- 1: playwright-core installed (npm ci from the lock file if needed) ---
# Normally node_modules lives in the source tests/browser.  If that is not
# writable (e.g. make distcheck's read-only source tree) and has no
# node_modules, the scripts and lock file are copied to the build tree's
# tests/browser and installed and run there.
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

# ---- 2: the server binary exists ------------------------------------------
if [ -x "$server_bin" ] && [ -f "$server_bin" ]; then
  ok "${pre_names[1]}"
  say "# $server_bin"
else
  not_ok "${pre_names[1]}"
  say "# TURNSTONE_BIN=$server_bin does not exist or is not executable (build it first)"
  fail_rest "no server binary"
fi

# ---- tls only: a self-signed certificate for 127.0.0.1 ----------------------
if [ "$transport" = tls ]; then
  cert_name=${pre_names[$t]}
  cert="$workdir/cert.pem" key="$workdir/key.pem"
  if ! command -v openssl >/dev/null 2>&1; then
    not_ok "$cert_name"
    say "# openssl is not installed (needed to make the TLS test certificate)"
    fail_rest "no openssl"
  fi
  if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
       -keyout "$key" -out "$cert" -days 2 -subj "/CN=127.0.0.1" \
       -addext "subjectAltName=IP:127.0.0.1" >"$workdir/openssl.log" 2>&1 &&
     [ -s "$cert" ] && [ -s "$key" ]; then
    ok "$cert_name"
    openssl x509 -in "$cert" -noout -subject -ext subjectAltName -enddate 2>&1 | diag
  else
    not_ok "$cert_name"
    diag <"$workdir/openssl.log"
    fail_rest "could not make a TLS certificate"
  fi
fi

# ---- the server starts and answers a STUN Binding request -----------------
start_name=${pre_names[$t]}
read -r relay_min relay_max < <(node "$browser_dir/util.mjs" relay-window 200)
tls_port=""
if [ "$transport" = udp ]; then
  port=$(node "$browser_dir/util.mjs" free-udp-port "${relay_min:-0}" "${relay_max:-0}")
else
  # TCP (and the UDP listener, which shares the port) must be free too.
  port=$(node "$browser_dir/util.mjs" free-port udp,tcp "${relay_min:-0}" "${relay_max:-0}")
  if [ "$transport" = tls ]; then
    tls_port=$(node "$browser_dir/util.mjs" free-port tcp "${relay_min:-0}" "${relay_max:-0}" "${port:-0}")
  fi
fi
if ! [[ "${relay_min:-}" =~ ^[0-9]+$ && "${relay_max:-}" =~ ^[0-9]+$ && "${port:-}" =~ ^[0-9]+$ ]] ||
   { [ "$transport" = tls ] && ! [[ "${tls_port:-}" =~ ^[0-9]+$ ]]; }; then
  not_ok "$start_name"
  say "# could not pick free ports (relay window '${relay_min:-}'..'${relay_max:-}', port '${port:-}', TLS port '${tls_port:-}')"
  fail_rest "could not pick free ports"
fi
realm=turnstone.test
user=alice
pass=secret
server_args=(
  --listening-ip=127.0.0.1 --listening-port="$port"
  --relay-ip=127.0.0.1 --min-port="$relay_min" --max-port="$relay_max"
  --realm="$realm" --user="$user:$pass" --relay-threads=2
  --allow-loopback-peers
)
case $transport in
  udp) server_args+=(--no-tcp --no-tls)
       ping_args=(127.0.0.1 "$port" 1000)
       turn_url="turn:127.0.0.1:$port?transport=udp" ;;
  tcp) server_args+=(--no-tls)
       ping_args=(127.0.0.1 "$port" 1000 tcp)
       turn_url="turn:127.0.0.1:$port?transport=tcp" ;;
  tls) server_args+=(--no-tcp --tls-listening-port="$tls_port" --cert="$cert" --pkey="$key")
       ping_args=(127.0.0.1 "$tls_port" 1000 tls "$cert")
       turn_url="turns:127.0.0.1:$tls_port?transport=tcp" ;;
esac
say "# starting: $server_bin ${server_args[*]}"
"$server_bin" --no-signaling "${server_args[@]}" >"$workdir/server.log" 2>&1 </dev/null &
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
  if node "$browser_dir/util.mjs" stun-ping "${ping_args[@]}" >"$workdir/ping.out" 2>&1; then
    ping_ok=1
    break
  fi
done
if [ "$ping_ok" = 1 ]; then
  ok "$start_name"
  diag <"$workdir/ping.out"
else
  not_ok "$start_name"
  diag <"$workdir/ping.out"
  fail_rest "server never answered $ping_what (port ${tls_port:-$port})"
fi

# ---- then: Chromium through the relay (relay.mjs), numbered on from ours --
export TURN_URL="$turn_url"
export TURN_USER="$user" TURN_PASS="$pass"
export RELAY_MIN="$relay_min" RELAY_MAX="$relay_max"
export TAP_START=$((t + 1)) TAP_NO_PLAN=1
(cd "$node_dir" && exec timeout -k 10 150 node relay.mjs --transport "$transport") &
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
