#!/bin/bash
# Integration test: coturn's turnutils_stunclient against turnstone over
# IPv4 and IPv6 loopback.  TAP output.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 8

require_tool turnutils_stunclient || die "turnutils_stunclient missing (Debian package coturn)"
require_tool python3 || die "python3 missing"
check_turnstone_bin 2>&1 | sed 's/^/# /'
check_turnstone_bin 2>/dev/null || die "TURNSTONE_BIN unusable: '${TURNSTONE_BIN:-}'"

SC_FILE=$(mktemp "${TMPDIR:-/tmp}/turnstone-stunclient.XXXXXX")
register_tmp "$SC_FILE"

# run_stunclient IP PORT -> sets SC_OUT, SC_RC (skipped if no server: rc 99)
run_stunclient() {
    if [ "$SERVER_UP" != yes ]; then
        SC_OUT="(not run: server not up)"
        SC_RC=99
        tap_diag "$SC_OUT"
        return
    fi
    local scpid
    timeout 20 turnutils_stunclient -p "$2" "$1" >"$SC_FILE" 2>&1 </dev/null &
    scpid=$!
    register_pid "$scpid"
    wait "$scpid"
    SC_RC=$?
    SC_OUT=$(cat "$SC_FILE")
    tap_diag "turnutils_stunclient -p $2 $1 (rc $SC_RC):"
    tap_diag "$SC_OUT"
}

# reflexive_addr OUTPUT -> first "UDP reflexive addr: A:P" value (A:P)
reflexive_addr() {
    printf '%s\n' "$1" | sed -n 's/.*UDP reflexive addr: *\([^ ]*\).*/\1/p' | head -n 1
}

# check_mapped ADDR:PORT EXPECTED_IP -> ok if the ip part equals and port>0
check_mapped() {
    local a=$1 want=$2 ip port
    [ -n "$a" ] || { echo "# no 'UDP reflexive addr' line in output"; return 1; }
    ip=${a%:*}
    port=${a##*:}
    ip=${ip#[}
    ip=${ip%]}
    if [ "$ip" != "$want" ]; then
        echo "# mapped address ip '$ip' != '$want'"
        return 1
    fi
    case "$port" in
        '' | *[!0-9]*) echo "# bad mapped port '$port'"; return 1 ;;
    esac
    if [ "$port" -le 0 ] || [ "$port" -gt 65535 ]; then
        echo "# bad mapped port $port"
        return 1
    fi
}

# ---------------------------------------------------------------- IPv4
PORT=$(free_udp_port 127.0.0.1) || die "no free port"
BASE=$(free_port_range 200) || die "no free relay range"
if start_turnstone --listening-ip=127.0.0.1 --listening-port="$PORT" --relay-ip=127.0.0.1 \
        --min-port="$BASE" --max-port=$((BASE + 199)) --realm=turnstone.test \
        --user=alice:secret --relay-threads=2 &&
    wait_stun_ready "$PORT" 127.0.0.1 5; then
    tap_ok "IPv4 server starts and answers Binding on 127.0.0.1"
    SERVER_UP=yes
else
    SERVER_UP=no
    tap_fail "IPv4 server starts and answers Binding on 127.0.0.1"
fi
PID4=$TS_PID
LOG4=$TS_LOG

run_stunclient 127.0.0.1 "$PORT"
if [ "$SC_RC" -eq 0 ]; then
    tap_ok "turnutils_stunclient 127.0.0.1 exits 0"
else
    tap_fail "turnutils_stunclient 127.0.0.1 exits 0" "exit status $SC_RC"
fi
MAPPED=$(reflexive_addr "$SC_OUT")
if check_mapped "$MAPPED" 127.0.0.1; then
    echo "# mapped: $MAPPED"
    tap_ok "turnutils_stunclient reports mapped address 127.0.0.1"
else
    tap_fail "turnutils_stunclient reports mapped address 127.0.0.1 (got '$MAPPED')"
fi

# ---------------------------------------------------------------- IPv6
if ! python3 -c 'import socket; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::1", 0))' 2>/dev/null; then
    echo "# this host has no usable ::1 (IPv6 loopback)"
fi
PORT6=$(free_udp_port 127.0.0.1 ::1) || die "no free port on 127.0.0.1 and ::1"
BASE6=$(free_port_range 200) || die "no free relay range"
if start_turnstone --listening-ip=127.0.0.1 --listening-ip=::1 --listening-port="$PORT6" \
        --relay-ip=127.0.0.1 --min-port="$BASE6" --max-port=$((BASE6 + 199)) \
        --realm=turnstone.test --user=alice:secret --relay-threads=2 &&
    wait_stun_ready "$PORT6" ::1 5; then
    tap_ok "dual-stack server answers Binding on ::1"
    SERVER_UP=yes
else
    SERVER_UP=no
    tap_fail "dual-stack server answers Binding on ::1"
fi
PID6=$TS_PID
LOG6=$TS_LOG

run_stunclient ::1 "$PORT6"
MAPPED6=$(reflexive_addr "$SC_OUT")
if [ "$SC_RC" -eq 0 ] && check_mapped "$MAPPED6" ::1; then
    echo "# mapped: $MAPPED6"
    tap_ok "turnutils_stunclient ::1 reports mapped address ::1"
else
    tap_fail "turnutils_stunclient ::1 reports mapped address ::1 (rc $SC_RC, got '$MAPPED6')"
fi

# the dual-stack server must still serve IPv4 too
M4=$(stun_binding "$PORT6" 127.0.0.1 1)
if check_mapped "$M4" 127.0.0.1; then
    echo "# mapped: $M4"
    tap_ok "dual-stack server answers IPv4 Binding with mapped 127.0.0.1"
else
    tap_fail "dual-stack server answers IPv4 Binding with mapped 127.0.0.1 (got '$M4')"
fi

if kill -0 "$PID4" 2>/dev/null && kill -0 "$PID6" 2>/dev/null; then
    tap_ok "both servers still running after the clients"
else
    tap_fail "both servers still running after the clients"
fi

STOP_OK=yes
stop_turnstone_checked "$PID4" "$LOG4" || STOP_OK=no
stop_turnstone_checked "$PID6" "$LOG6" || STOP_OK=no
if [ "$STOP_OK" = yes ]; then
    tap_ok "both servers exit cleanly on SIGTERM, no sanitizer report"
else
    tap_fail "both servers exit cleanly on SIGTERM, no sanitizer report"
fi

tap_finish
