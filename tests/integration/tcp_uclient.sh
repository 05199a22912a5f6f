#!/bin/bash
# Integration test: RFC 6062 TCP allocations driven by coturn's
# turnutils_uclient -T (an independent client) through turnstone, over TCP
# and TLS, all on loopback.  -T implies client-to-client (-y): clients are
# paired, one Connects to the other's relayed address (active, §4.3) and the
# other gets a ConnectionAttempt for it (passive, §4.4); both bind data
# connections with ConnectionBind and echo through them.  TAP output.
#
# coturn's turnutils_peer is a UDP echo peer only, so -P (passive with an
# active TCP peer) is not run here; tcp_relay.py covers a real TCP peer in
# both roles with the suite's own client.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 18

for t in turnutils_uclient openssl timeout python3; do
    require_tool "$t" || die "$t missing (turnutils_* come with Debian package coturn)"
done
check_turnstone_bin 2>/dev/null || die "TURNSTONE_BIN unusable: '${TURNSTONE_BIN:-}'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-tcpuc.XXXXXX")
register_tmp "$WORK"
UC_OUT=$WORK/uclient.out
NMSG=50
NCLIENTS=4
PEERPORT=9   # -T ignores -e/-r: peers are the paired clients' relayed addresses

CERT=$WORK/cert.pem
KEY=$WORK/key.pem
gen_cert "$CERT" "$KEY" || die "openssl cannot make a certificate"

PORT=$(free_udp_port 127.0.0.1) || die "no free port"
TLSPORT=$(free_udp_port 127.0.0.1) || die "no free TLS port"
while [ "$TLSPORT" = "$PORT" ]; do TLSPORT=$(free_udp_port 127.0.0.1) || die "no free TLS port"; done
BASE=$(free_port_range 200) || die "no free relay range"
# 4 workers: data connections often reach another worker than their allocation.
if start_turnstone --listening-ip=127.0.0.1 --listening-port="$PORT" --tls-listening-port="$TLSPORT" \
        --cert="$CERT" --pkey="$KEY" --relay-ip=127.0.0.1 \
        --min-port="$BASE" --max-port=$((BASE + 199)) --realm=turnstone.test \
        --user=alice:secret --relay-threads=4 --allow-loopback-peers --tcp-relay --verbose &&
    wait_stun_ready "$PORT" 127.0.0.1 5 && wait_tcp_ready "$PORT" 127.0.0.1 5 &&
    wait_tcp_ready "$TLSPORT" 127.0.0.1 5; then
    tap_ok "server starts with tcp-relay, TCP and TLS listeners"
    SERVER_UP=yes
else
    SERVER_UP=no
    tap_fail "server starts with tcp-relay, TCP and TLS listeners"
fi
SERVER_PID=$TS_PID
SERVER_LOG=$TS_LOG

run_uclient() {
    local label=$1 port=$2 tls=$3
    shift 3
    uclient_run "$label" "$port" "$tls" 127.0.0.1 "$@"
}

run_uclient "RFC 6062 over TCP (-T)" "$PORT" no -T
run_uclient "RFC 6062 over TCP (-T), odd length 101" "$PORT" no -T -l 101
run_uclient "RFC 6062 over TLS (-T -S)" "$TLSPORT" yes -T -S
run_uclient "RFC 6062 over TCP (-T), 1000-byte messages" "$PORT" no -T -l 1000

# Both roles ran: outgoing connections (Connect) and inbound ones
# (ConnectionAttempt), each bound.
for what in "tcp-relay: connected to" "tcp-relay: ConnectionAttempt from" "bound (user alice)"; do
    if grep -qF "$what" "$SERVER_LOG"; then
        tap_ok "server log shows '$what'"
    else
        tap_fail "server log shows '$what'" "$(tail -n 20 "$SERVER_LOG")"
    fi
done
tap_diag "data connections handed to another worker: $(grep -c 'handed from worker' "$SERVER_LOG")"

if stop_turnstone_checked "$SERVER_PID" "$SERVER_LOG"; then
    tap_ok "server exits cleanly on SIGTERM, no sanitizer report"
else
    tap_fail "server exits cleanly on SIGTERM, no sanitizer report"
fi

tap_finish
