#!/usr/bin/env bash
# migrate_coturn.sh -- a coturn deployment moves to turnstone with its
# turnserver.conf unchanged. tests/data/turnserver-production.conf.in (REST
# API secret, users in Redis, a static user as coturn's MD5 key, TLS,
# quotas, denied ranges, fingerprint, no-software-attribute, pidfile,
# log-file) is filled in with free loopback ports and temp files; Debian's
# coturn (`turnserver -c FILE`) runs on it, then turnstone (`turnstone -c
# FILE`), and the same clients relay through each in turn: coturn's
# turnutils_uclient over UDP, TCP and TLS with REST credentials, and two
# headless Chromium peers relay-only (tests/browser/relay.mjs). Both servers
# are started and stopped by PID, on 127.0.0.1 only. TAP output.
#
# Only on turnstone's command line: --rfc5766-channels, because
# turnutils_uclient binds channel numbers up to 0x7FFF (RFC 5766) where
# RFC 8656 stops at 0x4FFF; browsers need nothing of the kind.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$TOP_SRCDIR/tests/lib/common.sh"
. "$TOP_SRCDIR/tests/lib/redis.sh"

browser_dir=$TOP_SRCDIR/tests/browser
N_JS=$(node "$browser_dir/relay.mjs" --transport udp --count 2>/dev/null) || N_JS=0
[[ "$N_JS" =~ ^[1-9][0-9]*$ ]] || N_JS=1
# setup 5; per server 1 start + 1 Binding + 3 UDP + 3 TCP + 4 TLS + N_JS + 1 pidfile + 1 statsdb
# + 1 stop; turnstone only: static user, warnings
tap_plan $((5 + 2 * (15 + N_JS) + 2))

for t in turnserver turnutils_uclient turnutils_peer redis-server openssl node python3 timeout; do
    require_tool "$t" || die "$t missing (scripts/deps.sh --test installs it)"
done
check_turnstone_bin 2>/dev/null || die "TURNSTONE_BIN unusable: '${TURNSTONE_BIN:-}'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-migrate.XXXXXX")
register_tmp "$WORK"
UC_OUT=$WORK/uclient.out
NMSG=20  # coturn 4.6.1 stalls over TLS with turnutils_uclient -n 30 or more (seen here)
NCLIENTS=2

# ---------------------------------------------------------------- setup
start_echo_peer

CERT=$WORK/cert.pem
KEY=$WORK/key.pem
if gen_cert "$CERT" "$KEY" && [ -s "$CERT" ] && [ -s "$KEY" ]; then
    tap_ok "openssl makes a certificate for 127.0.0.1"
else
    tap_fail "openssl makes a certificate for 127.0.0.1"
fi

if start_redis; then
    tap_ok "redis-server runs on 127.0.0.1:$REDIS_PORT"
else
    tap_fail "redis-server runs on 127.0.0.1"
fi

node_dir=$browser_dir
if [ ! -f "$browser_dir/node_modules/playwright-core/package.json" ] && [ ! -w "$browser_dir" ]; then
    node_dir=${TOP_BUILDDIR:-$WORK}/tests/browser
    mkdir -p "$node_dir" && cp "$browser_dir"/package.json "$browser_dir"/package-lock.json \
        "$browser_dir"/relay.mjs "$browser_dir"/util.mjs "$node_dir/" && chmod u+w "$node_dir"/*
fi
if "$TOP_SRCDIR/tests/lib/npm_ci.sh" "$node_dir" playwright-core >"$WORK/npm.log" 2>&1; then
    tap_ok "playwright-core is installed for the Chromium peers"
else
    tap_fail "playwright-core is installed for the Chromium peers" "$(tail -n 20 "$WORK/npm.log")"
fi

PORT=$(free_udp_port 127.0.0.1) || die "no free port"
TLS_PORT=$(free_udp_port 127.0.0.1) || die "no free TLS port"
while [ "$TLS_PORT" = "$PORT" ]; do TLS_PORT=$(free_udp_port 127.0.0.1) || die "no free TLS port"; done
BASE=$(free_port_range 200) || die "no free relay range"
SECRET=$(openssl rand -hex 16)
REALM=example.org
OPS_KEY=0x$(printf '%s' "ops:$REALM:opspass" | md5sum | cut -c1-32)
CONF=$WORK/turnserver.conf
sed -e "s|@PORT@|$PORT|; s|@TLS_PORT@|$TLS_PORT|; s|@MIN_PORT@|$BASE|; s|@MAX_PORT@|$((BASE + 199))|" \
    -e "s|@SECRET@|$SECRET|; s|@REALM@|$REALM|; s|@OPS_KEY@|$OPS_KEY|; s|@REDIS_PORT@|${REDIS_PORT:-6379}|" \
    -e "s|@CERT@|$CERT|; s|@PKEY@|$KEY|; s|@LOG_FILE@|$WORK/server.log|; s|@PID_FILE@|$WORK/server.pid|" \
    "$TOP_SRCDIR/tests/data/turnserver-production.conf.in" >"$CONF"
if ! grep -qE '@[A-Z_]+@' "$CONF" && grep -q "^listening-port=$PORT\$" "$CONF"; then
    tap_ok "the production file is generated from its template"
else
    tap_fail "the production file is generated from its template" "$(grep -E '@[A-Z_]+@' "$CONF")"
fi

# A Binding request without FINGERPRINT: 'fingerprint' adds one to the
# answer and 'no-software-attribute' leaves SOFTWARE out.
binding_attrs() {
    python3 - "$PORT" <<'EOF'
import os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(2)
tid = os.urandom(12)
s.sendto(struct.pack("!HHI", 1, 0, 0x2112A442) + tid, ("127.0.0.1", int(sys.argv[1])))
d, _ = s.recvfrom(2048)
off, seen = 20, []
while off + 4 <= len(d):
    t, l = struct.unpack("!HH", d[off:off + 4])
    seen.append("0x%04x" % t)
    off += 4 + l + (-l % 4)
print(" ".join(seen))
EOF
}

# rest_credential: a TURN REST API user name and password for alice
rest_credential() {
    python3 - "$SECRET" <<'EOF'
import base64, hashlib, hmac, sys, time
user = "%d:alice" % (int(time.time()) + 3600)
print(user, base64.b64encode(hmac.new(sys.argv[1].encode(), user.encode(), hashlib.sha1).digest()).decode())
EOF
}

# coturn_tls: the TLS client run against coturn. coturn 4.6.1 here often
# stalls after the TLS handshakes with turnutils_uclient (both runs time
# out); that is coturn's side of the comparison, so a timed-out run is
# reported as skipped rather than failed. Anything else fails as usual.
coturn_tls() {
    local f0=$TAP_FAILED
    uclient_run "coturn: TLS, REST credential" "$TLS_PORT" yes 127.0.0.1 -t -S -W "$SECRET" >"$WORK/tls.tap"
    if grep -q '^not ok' "$WORK/tls.tap" && grep -q 'exit status 124' "$WORK/tls.tap"; then
        sed -E 's/^not ok ([0-9]+ - .*)$/ok \1 # SKIP coturn stalled over TLS (timed out)/' "$WORK/tls.tap"
        TAP_FAILED=$f0
    else
        cat "$WORK/tls.tap"
    fi
}

# statsdb_start NAME / statsdb_check NAME: redis-cli PSUBSCRIBE turn/* while
# NAME runs; it must have published coturn's allocation status messages
# (redis-statsdb) for the clients' allocations.
statsdb_start() {
    with_pdeathsig redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --csv PSUBSCRIBE 'turn/*' >"$WORK/statsdb.$1" 2>&1 </dev/null &
    SUB_PID=$!
    register_pid "$SUB_PID"
    sleep 0.3
}
statsdb_check() {
    local re="\"turn/realm/$REALM/user/[0-9]+:alice/allocation/[0-9]{18}/status\",\"new lifetime=[0-9]+, type=(UDP|TCP|TLS), "
    kill -TERM "$SUB_PID" 2>/dev/null
    wait "$SUB_PID" 2>/dev/null
    if grep -qE "$re" "$WORK/statsdb.$1"; then
        tap_ok "$1: redis-statsdb gets coturn's status messages ($(grep -cE "$re" "$WORK/statsdb.$1") \"new\")"
    else
        tap_fail "$1: redis-statsdb gets coturn's status messages" "$(head -n 10 "$WORK/statsdb.$1")"
    fi
}

# run_clients NAME: the same clients against whichever server runs now
run_clients() {
    local name=$1 attrs user pass out rc fails
    attrs=$(binding_attrs 2>&1)
    if grep -qw 0x8028 <<<"$attrs" && ! grep -qw 0x8022 <<<"$attrs"; then
        tap_ok "$name: Binding answer has FINGERPRINT, no SOFTWARE ($attrs)"
    else
        tap_fail "$name: Binding answer has FINGERPRINT, no SOFTWARE" "attributes: $attrs"
    fi
    uclient_run "$name: UDP, REST credential" "$PORT" no 127.0.0.1 -W "$SECRET"
    uclient_run "$name: TCP, REST credential" "$PORT" no 127.0.0.1 -t -W "$SECRET"
    if [ "$name" = coturn ]; then
        coturn_tls
    else
        uclient_run "$name: TLS, REST credential" "$TLS_PORT" yes 127.0.0.1 -t -S -W "$SECRET"
    fi
    read -r user pass < <(rest_credential)
    out=$(cd "$node_dir" && TURN_URL="turn:127.0.0.1:$PORT?transport=udp" TURN_USER="$user" TURN_PASS="$pass" \
        RELAY_MIN=$BASE RELAY_MAX=$((BASE + 199)) TAP_START=$((TAP_N + 1)) TAP_NO_PLAN=1 \
        timeout -k 10 150 node relay.mjs --transport udp 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed -E "s/^((not )?ok [0-9]+ - )/\1$name: Chromium: /"
    fails=$(grep -c '^not ok' <<<"$out")
    TAP_N=$((TAP_N + N_JS))
    TAP_FAILED=$((TAP_FAILED + fails))
    [ "$rc" -eq 0 ] || [ "$fails" -gt 0 ] || { TAP_FAILED=$((TAP_FAILED + 1)); echo "# relay.mjs exit status $rc"; }
    if [ -s "$WORK/server.pid" ] && [ "$(tr -d ' \n' <"$WORK/server.pid")" = "$SERVER_PID" ]; then
        tap_ok "$name: pidfile holds its PID"
    else
        tap_fail "$name: pidfile holds its PID $SERVER_PID" "pidfile: $(cat "$WORK/server.pid" 2>&1)"
    fi
}

# stop_by_pid NAME PID: SIGTERM, then it must be gone within 10 s
stop_by_pid() {
    local i
    kill -TERM "$2" 2>/dev/null
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$2" 2>/dev/null; then
        tap_fail "$1: stops on SIGTERM (pid $2)"
        kill -KILL "$2" 2>/dev/null
    else
        tap_ok "$1: stops on SIGTERM (pid $2)"
    fi
    wait "$2" 2>/dev/null
}

# ---------------------------------------------------------------- coturn
statsdb_start coturn
with_pdeathsig turnserver -c "$CONF" </dev/null >"$WORK/coturn.out" 2>&1 &
SERVER_PID=$!
TS_PID=$SERVER_PID
register_pid "$SERVER_PID"
if wait_stun_ready "$PORT" 127.0.0.1 10 && wait_tcp_ready "$TLS_PORT" 127.0.0.1 5; then
    SERVER_UP=yes
    tap_ok "coturn: turnserver -c FILE starts (pid $SERVER_PID)"
else
    SERVER_UP=no
    tap_fail "coturn: turnserver -c FILE starts" "$(tail -n 30 "$WORK/coturn.out" "$WORK"/server*.log 2>/dev/null)"
fi
run_clients coturn
statsdb_check coturn
stop_by_pid coturn "$SERVER_PID"
rm -f "$WORK/server.pid"

# ---------------------------------------------------------------- turnstone
mv "$WORK/server.log" "$WORK/coturn.log" 2>/dev/null
statsdb_start turnstone
if start_turnstone -c "$CONF" --rfc5766-channels && wait_stun_ready "$PORT" 127.0.0.1 10 &&
    wait_tcp_ready "$TLS_PORT" 127.0.0.1 5; then
    SERVER_UP=yes
    tap_ok "turnstone: turnstone -c FILE starts (pid $TS_PID)"
else
    SERVER_UP=no
    tap_fail "turnstone: turnstone -c FILE starts" "$(cat "$TS_LOG"; tail -n 30 "$WORK/server.log" 2>/dev/null)"
fi
SERVER_PID=$TS_PID
_TS_LOGS+=("$WORK/server.log")
run_clients turnstone
statsdb_check turnstone

# The static user stored as coturn's MD5 key (coturn itself ignores static
# users once use-auth-secret is on; turnstone takes both).
timeout 60 turnutils_uclient -u ops -w opspass -r "$PEERPORT" -e 127.0.0.1 -p "$PORT" -n 20 -m 1 127.0.0.1 \
    >"$UC_OUT" 2>&1 </dev/null
if grep -qE 'start_mclient: tot_send_msgs=([1-9][0-9]*), tot_recv_msgs=\1$' "$UC_OUT"; then
    tap_ok "turnstone: user=ops:0x<MD5 key> relays (turnutils_uclient -u ops -w PASSWORD)"
else
    tap_fail "turnstone: user=ops:0x<MD5 key> relays" "$(tail -n 10 "$UC_OUT")"
fi

want="no-dtls no-rfc5780 no-stun-backward-compatibility response-origin-only-with-rfc5780 server-name simple-log no-stdout-log no-cli"
missing=
for k in $want; do
    [ "$(grep -c "key '$k' accepted without effect in turnstone" "$WORK/server.log")" = 1 ] || missing="$missing $k"
done
if [ -z "$missing" ]; then
    tap_ok "turnstone: its log-file has one warning line for each of the 8 keys without effect"
else
    tap_fail "turnstone: its log-file has one warning line for each of the 8 keys without effect" \
        "missing or repeated:$missing" "$(grep -i warn "$WORK/server.log" | head -n 20)"
fi
if stop_turnstone_checked "$SERVER_PID" "$TS_LOG"; then
    tap_ok "turnstone: stops on SIGTERM (pid $SERVER_PID), exit 0, no sanitizer report"
else
    tap_fail "turnstone: stops on SIGTERM (pid $SERVER_PID), exit 0, no sanitizer report"
fi

tap_finish
