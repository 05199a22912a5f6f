#!/bin/bash
# Integration test: TURN over TCP and TLS with coturn's turnutils_uclient
# relaying through turnstone to turnutils_peer (UDP echo), all on loopback;
# and start-up errors for bad TLS certificate/key files.  TAP output.
#
# turnutils_stunclient has no TCP or TLS mode (its options are -p, -L, -f),
# so Binding over TCP/TLS is covered by stream.py instead.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 39

for t in turnutils_uclient turnutils_peer openssl timeout python3; do
    require_tool "$t" || die "$t missing (turnutils_* come with Debian package coturn)"
done
check_turnstone_bin 2>&1 | sed 's/^/# /'
check_turnstone_bin 2>/dev/null || die "TURNSTONE_BIN unusable: '${TURNSTONE_BIN:-}'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-stream.XXXXXX")
register_tmp "$WORK"
UC_OUT=$WORK/uclient.out
NMSG=100
NCLIENTS=4

# ---------------------------------------------------------------- peer
start_echo_peer

# ---------------------------------------------------------------- certificates
CERT=$WORK/cert.pem
KEY=$WORK/key.pem
OTHERKEY=$WORK/other-key.pem
if gen_cert "$CERT" "$KEY" && gen_key "$OTHERKEY" && [ -s "$CERT" ] && [ -s "$KEY" ] && [ -s "$OTHERKEY" ]; then
    tap_ok "openssl generates a self-signed certificate, its key and a second key"
else
    tap_fail "openssl generates a self-signed certificate, its key and a second key"
fi

# ---------------------------------------------------------------- server
# --rfc5766-channels: turnutils_uclient picks channel numbers up to 0x7FFF
# (see uclient.sh).
PORT=$(free_udp_port 127.0.0.1) || die "no free port"
TLSPORT=$(free_udp_port 127.0.0.1) || die "no free TLS port"
while [ "$TLSPORT" = "$PORT" ]; do TLSPORT=$(free_udp_port 127.0.0.1) || die "no free TLS port"; done
BASE=$(free_port_range 200) || die "no free relay range"
if start_turnstone --listening-ip=127.0.0.1 --listening-ip=::1 --listening-port="$PORT" --tls-listening-port="$TLSPORT" \
        --cert="$CERT" --pkey="$KEY" --relay-ip=127.0.0.1 \
        --min-port="$BASE" --max-port=$((BASE + 199)) --realm=turnstone.test \
        --user=alice:secret --user=bob:pw2 --relay-threads=2 --allow-loopback-peers \
        --rfc5766-channels &&
    wait_stun_ready "$PORT" 127.0.0.1 5 && wait_tcp_ready "$PORT" 127.0.0.1 5 &&
    wait_tcp_ready "$TLSPORT" 127.0.0.1 5; then
    tap_ok "server starts with TCP and TLS listeners (UDP Binding answered, TCP and TLS ports accept)"
    SERVER_UP=yes
else
    SERVER_UP=no
    tap_fail "server starts with TCP and TLS listeners (UDP Binding answered, TCP and TLS ports accept)"
fi
SERVER_PID=$TS_PID
SERVER_LOG=$TS_LOG

# run_uclient LABEL PORT TLS(yes|no) EXTRA_FLAGS... (see uclient_run in common.sh)
run_uclient() {
    local label=$1 port=$2 tls=$3
    shift 3
    uclient_run "$label" "$port" "$tls" "${SERVER_IP:-127.0.0.1}" "$@"
}

run_uclient "TCP, channels" "$PORT" no -t
run_uclient "TCP, send method (-s)" "$PORT" no -t -s
run_uclient "TCP, channels, odd length 101 (ChannelData padding)" "$PORT" no -t -l 101
run_uclient "TLS, channels" "$TLSPORT" yes -t -S
run_uclient "TLS, send method (-s)" "$TLSPORT" yes -t -S -s
run_uclient "TLS, channels, odd length 101 (ChannelData padding)" "$TLSPORT" yes -t -S -l 101
# IPv6 clients (server on ::1 too); the relay leg stays IPv4 to the peer
SERVER_IP=::1 run_uclient "TCP over IPv6 ([::1]), channels" "$PORT" no -t
SERVER_IP=::1 run_uclient "TLS over IPv6 ([::1]), channels" "$TLSPORT" yes -t -S

if kill -0 "$SERVER_PID" 2>/dev/null; then
    tap_ok "server still running after all client runs"
else
    tap_fail "server still running after all client runs"
fi

if stop_turnstone_checked "$SERVER_PID" "$SERVER_LOG"; then
    tap_ok "server exits cleanly on SIGTERM, no sanitizer report"
else
    tap_fail "server exits cleanly on SIGTERM, no sanitizer report"
fi

# ---------------------------------------------------------------- start-up errors
# start_expect_fail LABEL FILE ARGS... : the server must exit with status 2
# within 10 s and name FILE in its output.  2 TAP lines.
start_expect_fail() {
    local label=$1 file=$2 out=$WORK/startup.out pid rc p t b
    shift 2
    p=$(free_udp_port 127.0.0.1) || p=0
    t=$(free_udp_port 127.0.0.1) || t=0
    b=$(free_port_range 200) || b=50000
    with_pdeathsig timeout 10 "$TURNSTONE_BIN" --no-signaling --listening-ip=127.0.0.1 --listening-port="$p" \
        --tls-listening-port="$t" --relay-ip=127.0.0.1 --min-port="$b" --max-port=$((b + 199)) \
        --user=alice:secret "$@" </dev/null >"$out" 2>&1 &
    pid=$!
    register_pid "$pid"
    wait "$pid"
    rc=$?
    tap_diag "turnstone $* -> exit status $rc (124: still running after 10 s), output:"
    tap_diag "$(head -n 20 "$out")"
    if [ "$rc" -eq 2 ]; then
        tap_ok "$label: exit status 2"
    else
        tap_fail "$label: exit status 2 (got $rc)"
    fi
    if grep -qF -- "$file" "$out"; then
        tap_ok "$label: message names $(basename "$file")"
    else
        tap_fail "$label: message names $(basename "$file")" "'$file' not in the output"
    fi
}

start_expect_fail "pkey not matching cert" "$OTHERKEY" --cert="$CERT" --pkey="$OTHERKEY"
start_expect_fail "missing cert file" "$WORK/no-such-cert.pem" --cert="$WORK/no-such-cert.pem" --pkey="$KEY"
start_expect_fail "missing pkey file" "$WORK/no-such-key.pem" --cert="$CERT" --pkey="$WORK/no-such-key.pem"

tap_finish
