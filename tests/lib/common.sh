# tests/lib/common.sh -- helpers for turnstone's shell integration tests.
# Source it from bash:  . "$TOP_SRCDIR/tests/lib/common.sh"
#
# TAP:      tap_plan N; tap_ok NAME; tap_fail NAME [DIAG...]; tap_diag TEXT;
#           tap_check NAME CMD...; tap_finish (exit status: 1 if any failed)
# Ports:    free_udp_port [IP]; free_port_range LEN  (prints base)
# Server:   start_turnstone ARGS...  (sets TS_PID, TS_LOG); wait_stun_ready PORT [IP]
# Cleanup:  register_pid PID  -- killed on EXIT (with process group if leader)
#
# Everything talks to loopback only.

TAP_N=0
TAP_FAILED=0
TAP_PLANNED=0
_TS_PIDS=()
_TS_LOGS=()
_TS_TMPFILES=()

: "${TOP_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export TOP_SRCDIR

tap_plan() {
    TAP_PLANNED=$1
    echo "1..$1"
}

tap_diag() {
    local line
    while IFS= read -r line; do
        printf '# %s\n' "$line"
    done <<<"$*"
}

tap_ok() {
    TAP_N=$((TAP_N + 1))
    echo "ok $TAP_N - $1"
}

tap_fail() {
    TAP_N=$((TAP_N + 1))
    TAP_FAILED=$((TAP_FAILED + 1))
    echo "not ok $TAP_N - $1"
    shift
    local d
    for d in "$@"; do
        tap_diag "$d"
    done
    return 0
}

# tap_check NAME CMD... : ok if CMD succeeds
tap_check() {
    local name=$1
    shift
    if "$@"; then tap_ok "$name"; else tap_fail "$name" "command failed: $*"; fi
}

# Emit 'not ok' for every planned test not yet reported (e.g. after a fatal
# setup error), so the plan always matches.
tap_bail_rest() {
    local why=$1
    while [ "$TAP_N" -lt "$TAP_PLANNED" ]; do
        tap_fail "skipped after fatal error: $why"
    done
}

tap_finish() {
    if [ "$TAP_N" -lt "$TAP_PLANNED" ]; then
        tap_bail_rest "test script ended early"
    fi
    [ "$TAP_FAILED" -eq 0 ]
}

die() {
    tap_fail "fatal: $*"
    tap_bail_rest "$*"
    exit 1
}

# ------------------------------------------------------------------ cleanup

register_pid() {
    _TS_PIDS+=("$1")
}

register_tmp() {
    _TS_TMPFILES+=("$1")
}

_kill_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

_common_cleanup() {
    local rc=$? pid log
    trap - EXIT INT TERM HUP
    for pid in "${_TS_PIDS[@]}"; do
        _kill_pid "$pid"
    done
    if [ "$TAP_FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
        for log in "${_TS_LOGS[@]}"; do
            [ -f "$log" ] || continue
            echo "# ---- server log $log (last 200 lines) ----"
            tail -n 200 "$log" | sed 's/^/# /'
        done
    fi
    for log in "${_TS_LOGS[@]}" "${_TS_TMPFILES[@]}"; do
        rm -rf "$log"
    done
    exit "$rc"
}

trap _common_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------------ ports

# _port_free PROTO IP PORT -> 0 if bindable
_port_free() {
    python3 - "$1" "$2" "$3" <<'EOF'
import socket, sys
proto, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
s = socket.socket(fam, kind)
try:
    s.bind((ip, port))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# free_udp_port [IP...] : random port in 10000..19999 free for UDP and TCP on
# all given IPs (default 127.0.0.1)
free_udp_port() {
    python3 - "${@:-127.0.0.1}" <<'EOF'
import random, socket, sys
ips = sys.argv[1:]
def free(ip, port, kind):
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(fam, kind)
    try:
        s.bind((ip, port)); return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(500):
    p = random.randint(10000, 19999)
    if all(free(ip, p, k) for ip in ips for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM)):
        print(p); sys.exit(0)
sys.exit(1)
EOF
}

# free_port_range LEN : random base in 20000..59000 with a sample of
# [base, base+LEN) free for UDP on 127.0.0.1
free_port_range() {
    python3 - "${1:-200}" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
def free(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(500):
    b = random.randint(20000, 59000 - n)
    sample = {b, b + 1, b + n // 2, b + n - 1} | {random.randint(b, b + n - 1) for _ in range(6)}
    if all(free(p) for p in sample):
        print(b); sys.exit(0)
sys.exit(1)
EOF
}

# ------------------------------------------------------------------ server

check_turnstone_bin() {
    if [ -z "${TURNSTONE_BIN:-}" ]; then
        echo "TURNSTONE_BIN is not set" >&2
        return 1
    fi
    if [ ! -f "$TURNSTONE_BIN" ] || [ ! -x "$TURNSTONE_BIN" ]; then
        echo "TURNSTONE_BIN=$TURNSTONE_BIN is not an executable file" >&2
        return 1
    fi
}

# with_pdeathsig CMD ARGS... : exec CMD so that the kernel kills it if this
# shell dies without running its EXIT trap (e.g. SIGKILL).  Only for use in
# the background ("with_pdeathsig cmd ... &"): the subshell execs, so $! is
# the PID of CMD itself.
with_pdeathsig() {
    exec python3 -c 'import ctypes, os, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
except Exception:
    pass
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# start_turnstone ARGS... : start $TURNSTONE_BIN in the background, stdout and
# stderr to a temp log.  Sets TS_PID and TS_LOG.  Returns 1 if the binary is
# missing or the process dies immediately.
start_turnstone() {
    check_turnstone_bin || return 1
    TS_LOG=$(mktemp "${TMPDIR:-/tmp}/turnstone-test.XXXXXX")
    _TS_LOGS+=("$TS_LOG")
    # --no-signaling first: tests run in parallel and the endpoint's default
    # port is fixed; a test that wants signaling passes its own options after.
    with_pdeathsig "$TURNSTONE_BIN" --no-signaling "$@" </dev/null >"$TS_LOG" 2>&1 &
    TS_PID=$!
    register_pid "$TS_PID"
    echo "# started $TURNSTONE_BIN $* (pid $TS_PID, log $TS_LOG)"
    sleep 0.1
    if ! kill -0 "$TS_PID" 2>/dev/null; then
        echo "# server exited immediately"
        return 1
    fi
}

# stun_binding_ok PORT [IP] : one Binding request (python, no external tool);
# prints the XOR-MAPPED-ADDRESS as IP:PORT ([IP]:PORT for IPv6) on success.
stun_binding() {
    python3 - "$1" "${2:-127.0.0.1}" "${3:-0.3}" <<'EOF'
import os, socket, struct, sys
port, ip, tmo = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
tid = os.urandom(12)
s.sendto(struct.pack("!HHI", 1, 0, 0x2112A442) + tid, (ip, port))
s.settimeout(tmo)
try:
    d, _ = s.recvfrom(2048)
except (socket.timeout, ConnectionRefusedError):
    sys.exit(1)
if len(d) < 20 or d[8:20] != tid or struct.unpack("!H", d[:2])[0] != 0x0101:
    sys.exit(2)
off = 20
magic = struct.pack("!I", 0x2112A442)
while off + 4 <= len(d):
    t, l = struct.unpack("!HH", d[off:off + 4])
    v = d[off + 4:off + 4 + l]
    if t == 0x0020:
        p = struct.unpack("!H", v[2:4])[0] ^ 0x2112
        if v[1] == 1:
            print("%s:%d" % (socket.inet_ntoa(bytes(a ^ b for a, b in zip(v[4:8], magic))), p))
        else:
            raw = bytes(a ^ b for a, b in zip(v[4:20], magic + tid))
            print("[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, raw), p))
        sys.exit(0)
    off += 4 + l + (-l % 4)
sys.exit(3)
EOF
}

# wait_stun_ready PORT [IP] [TIMEOUT_S=5] : poll with Binding requests until
# the server answers.  Fails early if the last started server died.
wait_stun_ready() {
    local port=$1 ip=${2:-127.0.0.1} secs=${3:-5}
    local end=$((SECONDS + secs))
    while [ "$SECONDS" -le "$end" ]; do
        if [ -n "${TS_PID:-}" ] && ! kill -0 "$TS_PID" 2>/dev/null; then
            echo "# server (pid $TS_PID) died while waiting for readiness"
            return 1
        fi
        if stun_binding "$port" "$ip" 0.2 >/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "# server not answering STUN Binding on $ip port $port after ${secs}s"
    return 1
}

# stop_turnstone_checked PID LOG : SIGTERM the server and check that it
# exits within 5 s with status 0 (or by SIGTERM) and that LOG holds no
# sanitizer report.  Returns 1 (with '# ' diagnostics) otherwise.
stop_turnstone_checked() {
    local pid=$1 log=$2 st bad=0
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        echo "# server pid $pid had already exited (status $?)"
        bad=1
    else
        kill -TERM "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "# server pid $pid still running 5 s after SIGTERM; killing"
            kill -KILL "$pid" 2>/dev/null
            bad=1
        fi
        wait "$pid" 2>/dev/null
        st=$?
        if [ "$st" -ne 0 ] && [ "$st" -ne 143 ]; then
            echo "# server pid $pid exit status $st after SIGTERM"
            bad=1
        fi
    fi
    if grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$log" >/dev/null 2>&1; then
        echo "# sanitizer report in $log:"
        grep -E -A3 'ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY:' "$log" | head -n 40 | sed 's/^/#   /'
        bad=1
    fi
    [ "$bad" -eq 0 ]
}

# require_tool NAME : fails (return 1, diag) if NAME is not on PATH
require_tool() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "# required tool '$1' not found on PATH"
        return 1
    fi
}

# ------------------------------------------------------------------ TCP/TLS

# gen_cert CERT KEY : self-signed EC (P-256) certificate for CN=127.0.0.1,
# valid 2 days, written to CERT and KEY with openssl(1).
gen_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj /CN=127.0.0.1 -days 2 -keyout "$2" -out "$1" </dev/null >/dev/null 2>&1
}

# gen_key KEY : a lone EC (P-256) private key (e.g. one not matching a cert).
gen_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" \
        </dev/null >/dev/null 2>&1
}

# wait_tcp_ready PORT [IP] [TIMEOUT_S=5] : poll until a TCP connect to
# IP:PORT succeeds.  Fails early if the last started server died.
wait_tcp_ready() {
    local port=$1 ip=${2:-127.0.0.1} secs=${3:-5}
    local end=$((SECONDS + secs))
    while [ "$SECONDS" -le "$end" ]; do
        if [ -n "${TS_PID:-}" ] && ! kill -0 "$TS_PID" 2>/dev/null; then
            echo "# server (pid $TS_PID) died while waiting for TCP port $port"
            return 1
        fi
        if python3 -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()' "$ip" "$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "# nothing accepting TCP connections on $ip port $port after ${secs}s"
    return 1
}

# uclient_run LABEL PORT TLS(yes|no) SERVER_IP UCLIENT_FLAGS... : runs
# turnutils_uclient as alice/secret against SERVER_IP:PORT, relaying to the
# echo peer 127.0.0.1:$PEERPORT, $NMSG messages from each of $NCLIENTS
# clients (output in $UC_OUT). 3 TAP lines (exit status, counts, loss),
# plus one for TLS runs (a TLS session was set up). Needs SERVER_UP=yes.
uclient_run() {
    local label=$1 port=$2 tls=$3 ip=$4 out rc sent recv lost try ucpid
    shift 4
    if [ "${SERVER_UP:-no}" != yes ]; then
        tap_fail "$label: turnutils_uclient exits 0" "not run: server not up"
        tap_fail "$label: received == sent > 0" "not run: server not up"
        tap_fail "$label: no messages lost" "not run: server not up"
        [ "$tls" = yes ] && tap_fail "$label: uclient reports a TLS session" "not run: server not up"
        return
    fi
    for try in 1 2 3; do
        # in the background + wait, so a signal to the script is handled at once
        timeout 60 turnutils_uclient "$@" -u alice -w secret -r "$PEERPORT" -e 127.0.0.1 \
            -p "$port" -n "$NMSG" -m "$NCLIENTS" "$ip" >"$UC_OUT" 2>&1 </dev/null &
        ucpid=$!
        register_pid "$ucpid"
        wait "$ucpid"
        rc=$?
        out=$(cat "$UC_OUT")
        # uclient counts an echo that arrives after its deadline as lost; on a
        # loaded machine (make -j2 check of the sanitizer build, TLS) that
        # happens now and then, so a loss earns up to two retries (a relay
        # that really loses packets fails all three runs)
        [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q 'Total lost packets 0 ' && break
        [ "$rc" -ne 0 ] && [ "$try" = 2 ] && break # a failed run (not a loss): one retry only
        [ "$try" != 3 ] && tap_diag "$label: run $try (rc $rc) lost or failed; retrying:" \
            "$(printf '%s\n' "$out" | grep -E 'Total lost|tot_send_msgs=[0-9]+, tot_recv' | tail -n 2)"
    done
    tap_diag "turnutils_uclient $* -p $port $ip ... (rc $rc), last lines:"
    tap_diag "$(printf '%s\n' "$out" | tail -n 6)"
    if [ "$rc" -eq 0 ]; then
        tap_ok "$label: turnutils_uclient exits 0"
    else
        tap_fail "$label: turnutils_uclient exits 0" "exit status $rc (124 = timed out)" \
            "$(printf '%s\n' "$out" | tail -n 40)"
    fi
    # summary: "start_mclient: tot_send_msgs=400, tot_recv_msgs=400"
    sent=$(printf '%s\n' "$out" | sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\1/p' | tail -n 1)
    recv=$(printf '%s\n' "$out" | sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\2/p' | tail -n 1)
    # "Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)"
    lost=$(printf '%s\n' "$out" | sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' | tail -n 1)
    if [ -n "$sent" ] && [ -n "$recv" ] && [ "$sent" -eq $((NMSG * NCLIENTS)) ] && [ "$recv" -eq "$sent" ]; then
        echo "# $label: received $recv of $sent"
        tap_ok "$label: received == sent > 0"
    else
        tap_fail "$label: received == sent > 0 (recv='$recv' sent='$sent', expected $((NMSG * NCLIENTS)))"
    fi
    if [ -n "$lost" ] && [ "$lost" -eq 0 ]; then
        tap_ok "$label: no messages lost"
    else
        tap_fail "$label: no messages lost (lost='$lost')"
    fi
    if [ "$tls" = yes ]; then
        # "tls_connect: client session connected with cipher ..., method=TLSv1.2"
        if printf '%s\n' "$out" | grep -q 'tls_connect: client session connected'; then
            tap_diag "$(printf '%s\n' "$out" | grep 'tls_connect: client session connected' | head -n 1)"
            tap_ok "$label: uclient reports a TLS session"
        else
            tap_fail "$label: uclient reports a TLS session" "no 'tls_connect: client session connected' line"
        fi
    fi
}

# start_echo_peer: starts turnutils_peer (an echo server) on a free
# 127.0.0.1 UDP port, sets PEERPORT and PEER_PID, and emits one TAP line
# saying whether it echoes a probe datagram within 5 s (loopback only).
start_echo_peer() {
    local log
    PEERPORT=$(free_udp_port 127.0.0.1) || die "no free peer port"
    log=$(mktemp "${TMPDIR:-/tmp}/turnstone-peer.XXXXXX")
    register_tmp "$log"
    with_pdeathsig turnutils_peer -L 127.0.0.1 -p "$PEERPORT" </dev/null >"$log" 2>&1 &
    PEER_PID=$!
    register_pid "$PEER_PID"
    if python3 - "$PEERPORT" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.2)
end = time.time() + 5
while time.time() < end:
    s.sendto(b"echo-probe", ("127.0.0.1", int(sys.argv[1])))
    try:
        d, _ = s.recvfrom(2048)
        if d == b"echo-probe":
            sys.exit(0)
    except (socket.timeout, ConnectionRefusedError):
        time.sleep(0.1)
sys.exit(1)
EOF
    then
        tap_ok "turnutils_peer echoes on 127.0.0.1"
    else
        tap_fail "turnutils_peer echoes on 127.0.0.1 (port $PEERPORT)" "$(cat "$log")"
    fi
}
