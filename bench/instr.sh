#!/bin/bash
# bench/instr.sh [--baseline BIN] -- user-space instructions per relayed
# packet, counted by valgrind's callgrind: repeatable on a noisy machine,
# where bench/run.sh's CPU seconds are not. Variants: turnstone with no
# limits set, turnstone with every quota, rate limit and the metrics listener
# on (limits far above the load), and optionally a baseline binary (e.g. one
# built from before issue 11). Only what runs inside the two receive
# callbacks is counted (--toggle-collect: the whole path of a datagram from
# recvmmsg to the send toward the other side), at a low rate (20 allocations
# x 20 msg/s, echoed) so that each datagram is its own receive batch and the
# count does not depend on timing. Each variant runs twice, 3 s and 11 s,
# and the figure is (Ir_long - Ir_short) / (packets_long - packets_short),
# so the Allocates cancel. Kernel time is not counted: it is the same work
# for every variant. All traffic is on 127.0.0.1. Installs nothing.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
: "${TURNSTONE_BIN:=$TOP/build/src/turnstone}"
: "${BENCH_BUILD:=$TOP/build/bench}"
BASELINE=""
[ "${1:-}" = "--baseline" ] && BASELINE=$2
for t in valgrind callgrind_annotate python3; do
	command -v $t >/dev/null || { echo "bench/instr.sh: missing $t (apt-get install -y valgrind)" >&2; exit 2; }
done
make -s -C "$HERE" OUT="$BENCH_BUILD" >&2
TMP=$(mktemp -d /tmp/turnstone-instr.XXXXXX)
VP=""
trap '[ -n "$VP" ] && kill -KILL "$VP" 2>/dev/null; rm -rf "$TMP"' EXIT
LIM="--user-quota=1000000 --total-quota=10000000 --max-bps=100000000 --bps-capacity=2000000000
--allocate-rate-per-ip=65535 --unauthorized-rate-per-ip=65535 --prometheus --prometheus-ip=127.0.0.1"

free_port() {
	python3 -c 'import socket
while True:
    u, t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket()
    u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    try:
        t.bind(("127.0.0.1", p))
        print(p)
        break
    except OSError:
        pass
    finally:
        u.close()
        t.close()'
}

# one_run BIN SECONDS EXTRA... -> "Ir packets"
one_run() {
	local bin=$1 secs=$2 port peer out res
	shift 2
	port=$(free_port); peer=$(free_port)
	out=$TMP/cg.$$.$RANDOM
	# shellcheck disable=SC2068
	valgrind --tool=callgrind --callgrind-out-file="$out" \
		--toggle-collect=listener_read --toggle-collect=relay_read "$bin" --listening-ip=127.0.0.1 \
		--listening-port="$port" --relay-ip=127.0.0.1 --min-port=40000 --max-port=40999 \
		--realm=bench --user=bench:benchpw --relay-threads=1 --allow-loopback-peers \
		--rfc5766-channels --no-tls --no-signaling --log-file="$TMP/server.log" $@ 2>"$TMP/vg.log" &
	VP=$!
	sleep 3
	res=$("$BENCH_BUILD/tsload" --server "127.0.0.1:$port" --peer "127.0.0.1:$peer" --mode turn \
		--case data --allocs 20 --rate 20 --duration "$secs" --user bench --pass benchpw | tail -n 1)
	kill -TERM "$VP"
	wait "$VP" || true
	VP=""
	python3 - "$out" "$res" <<'PY'
import json, subprocess, sys
ir = None
for line in subprocess.run(["callgrind_annotate", sys.argv[1]], stdout=subprocess.PIPE,
                           universal_newlines=True).stdout.splitlines():
    if "PROGRAM TOTALS" in line:
        ir = int(line.split()[0].replace(",", ""))
r = json.loads(sys.argv[2])
print(ir, r["peer_rx"] + r["recv"])
PY
}

# variant NAME BIN EXTRA... -> prints its line
variant() {
	local name=$1 bin=$2 a b
	shift 2
	a=$(one_run "$bin" 3 $@ --prometheus-port="$(free_port)")
	b=$(one_run "$bin" 11 $@ --prometheus-port="$(free_port)")
	python3 - "$name" "$a" "$b" <<'PY'
import sys
name, (i1, p1), (i2, p2) = sys.argv[1], map(int, sys.argv[2].split()), map(int, sys.argv[3].split())
print("%-15s %8.0f instructions/packet  (%d packets in the longer run)" % (name, (i2 - i1) / max(p2 - p1, 1), p2))
PY
}

echo "user-space instructions per relayed packet (callgrind, 1 relay thread):"
# --prometheus-port is ignored without --prometheus, so every variant takes it
if [ -n "$BASELINE" ]; then
	# the baseline may predate --prometheus-port: run it without
	a=$(one_run "$BASELINE" 3); b=$(one_run "$BASELINE" 11)
	python3 - "$a" "$b" <<'PY'
import sys
(i1, p1), (i2, p2) = map(int, sys.argv[1].split()), map(int, sys.argv[2].split())
print("%-15s %8.0f instructions/packet  (%d packets in the longer run)" % ("turnstone-base", (i2 - i1) / max(p2 - p1, 1), p2))
PY
fi
variant turnstone "$TURNSTONE_BIN"
# shellcheck disable=SC2086
variant turnstone+lim "$TURNSTONE_BIN" $LIM
