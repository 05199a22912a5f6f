#!/bin/bash
# Integration test: coturn's turnutils_uclient relays traffic through
# turnstone to turnutils_peer (UDP echo), all on loopback.  Two runs:
# with channels (uclient default: ChannelBind + ChannelData) and with
# Send/Data indications (-s, "use send method").  TAP output.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 10

for t in turnutils_uclient turnutils_peer timeout python3; do
    require_tool "$t" || die "$t missing (turnutils_* come with Debian package coturn)"
done
check_turnstone_bin 2>&1 | sed 's/^/# /'
check_turnstone_bin 2>/dev/null || die "TURNSTONE_BIN unusable: '${TURNSTONE_BIN:-}'"

UC_OUT=$(mktemp "${TMPDIR:-/tmp}/turnstone-uclient.XXXXXX")
register_tmp "$UC_OUT"
NMSG=100
NCLIENTS=4

# ---------------------------------------------------------------- peer
start_echo_peer

# ---------------------------------------------------------------- server
# turnutils_uclient (coturn 4.6) picks channel numbers from the RFC 5766 range
# 0x4000-0x7FFF; RFC 8656 narrowed it to 0x4000-0x4FFF, which turnstone
# enforces by default (see negative.py).  --rfc5766-channels is turnstone's
# documented interop switch for such clients.
PORT=$(free_udp_port 127.0.0.1) || die "no free port"
BASE=$(free_port_range 200) || die "no free relay range"
if start_turnstone --listening-ip=127.0.0.1 --listening-port="$PORT" --relay-ip=127.0.0.1 \
        --min-port="$BASE" --max-port=$((BASE + 199)) --realm=turnstone.test \
        --user=alice:secret --user=bob:pw2 --relay-threads=2 --allow-loopback-peers \
        --rfc5766-channels &&
    wait_stun_ready "$PORT" 127.0.0.1 5; then
    tap_ok "server starts with --allow-loopback-peers and answers Binding"
    SERVER_UP=yes
else
    SERVER_UP=no
    tap_fail "server starts with --allow-loopback-peers and answers Binding"
fi
SERVER_PID=$TS_PID
SERVER_LOG=$TS_LOG

# run_uclient LABEL EXTRA_FLAGS... : 3 TAP lines (see uclient_run in common.sh)
run_uclient() {
    local label=$1
    shift
    uclient_run "$label" "$PORT" no 127.0.0.1 "$@" -l 100
}

run_uclient "channels (ChannelBind/ChannelData)"
run_uclient "send method (Send/Data indications, -s)" -s

if kill -0 "$SERVER_PID" 2>/dev/null; then
    tap_ok "server still running after both client runs"
else
    tap_fail "server still running after both client runs"
fi

if stop_turnstone_checked "$SERVER_PID" "$SERVER_LOG"; then
    tap_ok "server exits cleanly on SIGTERM, no sanitizer report"
else
    tap_fail "server exits cleanly on SIGTERM, no sanitizer report"
fi

tap_finish
