#!/bin/bash
# Integration test: pion/turn v2 (Debian's golang-github-pion-turn.v2-dev), an
# independent TURN client, against turnstone on loopback: Binding, Allocate,
# relaying both ways with Send/Data indications and then ChannelData, with
# the RFC 8489 nonce cookie and PASSWORD-ALGORITHMS in the 401. The client
# (tests/pion/turnclient.go) is built offline in GOPATH mode. TAP output.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 4

require_tool go || die "go missing (Debian package golang-go; scripts/deps.sh --test)"
[ -d /usr/share/gocode/src/github.com/pion/turn/v2 ] ||
    die "pion/turn v2 missing (Debian package golang-github-pion-turn.v2-dev)"
check_turnstone_bin 2>/dev/null || die "TURNSTONE_BIN unusable: '${TURNSTONE_BIN:-}'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-pion.XXXXXX")
register_tmp "$WORK"

# GOPATH mode with Debian's Go packages: no network, no module download
if OUT=$(cd "$WORK" && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$WORK/cache" GOFLAGS= \
        timeout 300 go build -o "$WORK/turnclient" "$TOP_SRCDIR/tests/pion/turnclient.go" 2>&1); then
    tap_ok "pion/turn client builds offline (GOPATH mode)"
else
    tap_diag "$OUT"
    die "pion/turn client does not build"
fi

PORT=$(free_udp_port 127.0.0.1) || die "no free port"
BASE=$(free_port_range 200) || die "no free relay range"
if start_turnstone --listening-ip=127.0.0.1 --listening-port="$PORT" --relay-ip=127.0.0.1 \
        --min-port="$BASE" --max-port=$((BASE + 199)) --realm=turnstone.test \
        --user=alice:secret --relay-threads=2 --allow-loopback-peers &&
    wait_stun_ready "$PORT" 127.0.0.1 5; then
    tap_ok "server starts"
else
    die "server does not start"
fi
PID=$TS_PID
LOG=$TS_LOG

OUT=$(timeout 60 "$WORK/turnclient" "127.0.0.1:$PORT" alice secret turnstone.test 2>&1)
RC=$?
tap_diag "$OUT"
if [ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^ok .*round 5: client got'; then
    tap_ok "pion/turn: Allocate and relay both ways, six rounds"
else
    tap_fail "pion/turn: Allocate and relay both ways, six rounds" "exit status $RC" "$(tail -n 30 "$LOG")"
fi

if stop_turnstone_checked "$PID" "$LOG"; then
    tap_ok "server stops cleanly"
else
    tap_fail "server stops cleanly"
fi
tap_finish
