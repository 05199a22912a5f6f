#!/bin/bash
# tests/integration/process.sh -- the process around the server (issue 11):
# pidfile written safely and removed at exit, SIGHUP reopens the log file,
# client strings cannot inject log lines, syslog, and proc-user dropping root
# after binding a port below 1024. Speaks TAP; loopback only. The privilege
# tests need root (CI runs as root); without it they fail, saying so.
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 26

TMP=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-process.XXXXXX")
register_tmp "$TMP"
BASE=$(free_port_range 100) || die "no free relay port range"
COMMON=(--listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --min-port="$BASE" --max-port=$((BASE + 99))
	--user=alice:secret --realm=turnstone.test --relay-threads=2)

# wait_exit PID SECS : waits for PID to exit; sets EXIT_STATUS. Returns 1 if
# it is still running after SECS.
wait_exit() {
	local i
	for i in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && return 1
	wait "$1" 2>/dev/null
	EXIT_STATUS=$?
	return 0
}

# wait_grep PATTERN FILE SECS : polls until FILE has a line matching PATTERN.
wait_grep() {
	local i
	for i in $(seq $(($3 * 10))); do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- pidfile: written while running, removed after SIGTERM --------------
PORT=$(free_udp_port) || die "no free port"
PIDFILE=$TMP/turnstone.pid
if start_turnstone "${COMMON[@]}" --listening-port="$PORT" --pidfile="$PIDFILE" && wait_stun_ready "$PORT"; then
	if [ -f "$PIDFILE" ] && [ "$(cat "$PIDFILE")" = "$TS_PID" ]; then
		tap_ok "pidfile holds the server's pid while it runs"
	else
		tap_fail "pidfile holds the server's pid while it runs" "pidfile: '$(cat "$PIDFILE" 2>&1)', pid $TS_PID"
	fi
	perm=$(stat -c %a "$PIDFILE" 2>/dev/null)
	if [ "$perm" = 644 ]; then tap_ok "pidfile mode is 0644"; else tap_fail "pidfile mode is 0644" "mode '$perm'"; fi
	if stop_turnstone_checked "$TS_PID" "$TS_LOG" && [ ! -e "$PIDFILE" ]; then
		tap_ok "SIGTERM: clean exit and the pidfile is gone"
	else
		tap_fail "SIGTERM: clean exit and the pidfile is gone" "pidfile exists: $([ -e "$PIDFILE" ] && echo yes || echo no)"
	fi
else
	tap_fail "pidfile holds the server's pid while it runs" "server did not start" "$(cat "$TS_LOG")"
	tap_fail "pidfile mode is 0644" "server did not start"
	tap_fail "SIGTERM: clean exit and the pidfile is gone" "server did not start"
fi

# ---- pidfile: a symlink planted at the path is refused ------------------
echo precious >"$TMP/target"
ln -s "$TMP/target" "$TMP/link.pid"
PORT=$(free_udp_port) || die "no free port"
start_turnstone "${COMMON[@]}" --listening-port="$PORT" --pidfile="$TMP/link.pid"
if wait_exit "$TS_PID" 5 && [ "$EXIT_STATUS" -ne 0 ]; then
	tap_ok "symlink at the pidfile path: server exits (status $EXIT_STATUS)"
else
	tap_fail "symlink at the pidfile path: server exits" "still running or status 0"
	kill "$TS_PID" 2>/dev/null
fi
if grep -q "pidfile '$TMP/link.pid'.*symbolic link: refused" "$TS_LOG"; then
	tap_ok "the error names the pidfile and the symlink"
else
	tap_fail "the error names the pidfile and the symlink" "$(cat "$TS_LOG")"
fi
if [ "$(cat "$TMP/target")" = precious ] && [ -L "$TMP/link.pid" ]; then
	tap_ok "the symlink and its target are untouched"
else
	tap_fail "the symlink and its target are untouched" "target: '$(cat "$TMP/target")'"
fi

# ---- log-file: SIGHUP reopens it; client strings cannot forge lines ------
PORT=$(free_udp_port) || die "no free port"
LOG=$TMP/turnstone.log
SERVER_UP=no
if start_turnstone "${COMMON[@]}" --listening-port="$PORT" --log-file="$LOG" && wait_stun_ready "$PORT" &&
	wait_grep "turnstone ready" "$LOG" 5; then
	SERVER_UP=yes
	LOGPID=$TS_PID
	tap_ok "the server logs to log-file"
else
	tap_fail "the server logs to log-file" "$(cat "$TS_LOG" "$LOG" 2>&1)"
fi
if [ "$SERVER_UP" = yes ]; then
	mv "$LOG" "$LOG.1"
	kill -HUP "$LOGPID"
	if wait_grep "log-file '$LOG' reopened" "$LOG" 5; then
		tap_ok "after rename + SIGHUP, new lines go to a new file at the original path"
	else
		tap_fail "after rename + SIGHUP, new lines go to a new file at the original path" \
			"$(ls -l "$TMP")" "$(cat "$LOG.1")"
	fi
	if grep -q "turnstone ready" "$LOG.1" && ! grep -q "reopened" "$LOG.1"; then
		tap_ok "the renamed file keeps the old lines and gets no new ones"
	else
		tap_fail "the renamed file keeps the old lines and gets no new ones" "$(cat "$LOG.1")"
	fi
	# An Allocate whose USERNAME tries to start a forged line, and carries
	# other control bytes (ESC, BEL, DEL): answered 401, logged escaped.
	out=$(python3 - "$PORT" <<'EOF' 2>&1
import os, sys
sys.path.insert(0, os.path.join(os.environ["TOP_SRCDIR"], "tests", "lib"))
sys.dont_write_bytecode = True
import turnclient as tc
evil = "evil\r\n2031-01-01T00:00:00Z error: injected\x01\x1b[31m\x07\x7f\\x41"
c = tc.TurnClient(("127.0.0.1", int(sys.argv[1])), evil, "wrong")
r = c.probe_401()
c.key = tc.long_term_key(evil, c.realm, "wrong")
r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport()])
print("code", r.error_code())
EOF
)
	if [ "$out" = "code 401" ] && wait_grep "unknown user 'evil" "$LOG" 5; then
		tap_ok "Allocate with CR/LF and control bytes in USERNAME: 401, logged"
	else
		tap_fail "Allocate with CR/LF and control bytes in USERNAME: 401, logged" "$out" "$(cat "$LOG")"
	fi
	if grep -q '^2031-01-01' "$LOG" || LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]' "$LOG"; then
		tap_fail "the log file has no injected line and no control byte" "$(cat -A "$LOG")"
	else
		tap_ok "the log file has no injected line and no control byte"
	fi
	bad=$(LC_ALL=C grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z (error|warning|info|debug): ' "$LOG")
	if [ "$bad" -eq 0 ]; then
		tap_ok "every log line starts with the server's own time stamp and level"
	else
		tap_fail "every log line starts with the server's own time stamp and level" "$bad lines do not" "$(cat -A "$LOG")"
	fi
	# \x5c is the backslash the client sent: escaped too, so "\x41" it sent
	# cannot pass for an escape of ours.
	if grep -qF "unknown user 'evil\\x0d\\x0a2031-01-01T00:00:00Z error: injected\\x01\\x1b[31m\\x07\\x7f\\x5cx41'" "$LOG"; then
		tap_ok "the username is logged with every special byte as \\xHH"
	else
		tap_fail "the username is logged with every special byte as \\xHH" "$(grep "unknown user" "$LOG")"
	fi
	if stop_turnstone_checked "$LOGPID" "$TS_LOG"; then tap_ok "log-file server exits cleanly"; else tap_fail "log-file server exits cleanly"; fi
else
	for t in "SIGHUP reopen" "old file" "evil Allocate" "no injected line" "time stamps" "escaped username" "clean exit"; do
		tap_fail "$t" "not run: server not up"
	done
fi

# ---- syslog: lines reach /dev/log with facility daemon, ident turnstone ---
# In a private mount namespace, /dev/log is this test's own socket.
PORT=$(free_udp_port) || die "no free port"
SYSLOG_OUT=$TMP/syslog.out
python3 - "$TMP/log.sock" "$SYSLOG_OUT" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
with open(sys.argv[2], "wb", buffering=0) as f:
    end = time.time() + 20
    while time.time() < end:
        try:
            f.write(s.recv(4096) + b"\n")
        except socket.timeout:
            break
EOF
register_pid $!
sleep 0.3
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	TS_LOG=$TMP/syslog-server.out
	with_pdeathsig unshare -m --propagation private sh -c \
		'mount -t tmpfs tmpfs /dev && ln -s "$0" /dev/log && exec "$@"' "$TMP/log.sock" \
		"$TURNSTONE_BIN" --no-signaling "${COMMON[@]}" --listening-port="$PORT" --syslog \
		--log-file="$TMP/not-used.log" </dev/null >"$TS_LOG" 2>&1 &
	TS_PID=$!
	register_pid "$TS_PID"
	if wait_stun_ready "$PORT" && wait_grep "turnstone ready" "$SYSLOG_OUT" 5; then
		# <30> = facility daemon (3) * 8 + info (6)
		if grep -qE '^<30>.* turnstone\[[0-9]+\]: info: turnstone ready' "$SYSLOG_OUT"; then
			tap_ok "syslog: lines arrive as daemon.info with ident turnstone[pid]"
		else
			tap_fail "syslog: lines arrive as daemon.info with ident turnstone[pid]" "$(cat "$SYSLOG_OUT")"
		fi
	else
		tap_fail "syslog: lines arrive as daemon.info with ident turnstone[pid]" \
			"$(cat "$TS_LOG" "$SYSLOG_OUT" 2>&1)"
	fi
	if [ ! -s "$TMP/not-used.log" ]; then
		tap_ok "syslog: nothing goes to log-file as well"
	else
		tap_fail "syslog: nothing goes to log-file as well" "$(cat "$TMP/not-used.log")"
	fi
	kill "$TS_PID" 2>/dev/null
	wait_exit "$TS_PID" 5
else
	tap_fail "syslog: lines arrive as daemon.info with ident turnstone[pid]" "needs root and unshare(1)"
	tap_fail "syslog: nothing goes to log-file as well" "needs root and unshare(1)"
fi

# ---- proc-user: root binds a port below 1024, then runs as nobody --------
LOW=$(python3 - <<'EOF'
import random, socket, sys
for _ in range(200):
    p = random.randint(900, 1023)
    ok = True
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p); sys.exit(0)
sys.exit(1)
EOF
) || LOW=
NOBODY_UID=$(id -u nobody 2>/dev/null)
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)
SERVER_UP=no
if [ "$(id -u)" -ne 0 ]; then
	tap_fail "proc-user: started as root on port $LOW, answers Binding there" "this test must run as root (id -u: $(id -u))"
elif [ -z "$LOW" ] || [ -z "$NOBODY_UID" ] || [ -z "$NOGROUP_GID" ]; then
	tap_fail "proc-user: started as root on port $LOW, answers Binding there" "no free low port, or no nobody/nogroup"
elif start_turnstone "${COMMON[@]}" --listening-port="$LOW" --proc-user=nobody --proc-group=nogroup \
	--allow-loopback-peers --rfc5766-channels && wait_stun_ready "$LOW"; then
	SERVER_UP=yes
	PRIVPID=$TS_PID
	tap_ok "proc-user: started as root on port $LOW, answers Binding there"
else
	tap_fail "proc-user: started as root on port $LOW, answers Binding there" "$(cat "$TS_LOG")"
fi
if [ "$SERVER_UP" = yes ]; then
	st=$(grep -E '^(Uid|Gid|Groups):' "/proc/$PRIVPID/status")
	if echo "$st" | grep -qE "^Uid:\s+$NOBODY_UID\s+$NOBODY_UID\s+$NOBODY_UID\s+$NOBODY_UID\s*$" &&
		echo "$st" | grep -qE "^Gid:\s+$NOGROUP_GID\s+$NOGROUP_GID\s+$NOGROUP_GID\s+$NOGROUP_GID\s*$"; then
		tap_ok "/proc/PID/status: Uid and Gid are nobody/nogroup (real, effective, saved, fs)"
	else
		tap_fail "/proc/PID/status: Uid and Gid are nobody/nogroup (real, effective, saved, fs)" "$st"
	fi
	groups=$(echo "$st" | sed -n 's/^Groups:\s*//p' | xargs)
	if [ -z "$groups" ] || [ "$groups" = "$NOGROUP_GID" ]; then
		tap_ok "no supplementary group of root is kept (Groups: '$groups')"
	else
		tap_fail "no supplementary group of root is kept" "Groups: '$groups'"
	fi
	bad=0
	for t in /proc/"$PRIVPID"/task/*/status; do
		grep -qE "^Uid:\s+$NOBODY_UID\s" "$t" || bad=$((bad + 1))
	done
	if [ "$bad" -eq 0 ]; then tap_ok "every thread runs as nobody"; else tap_fail "every thread runs as nobody" "$bad threads do not"; fi
fi
if [ "$SERVER_UP" = yes ]; then
	start_echo_peer
	NMSG=20 NCLIENTS=2 UC_OUT=$TMP/uclient.out
	uclient_run "proc-user=nobody: relay through port $LOW" "$LOW" no 127.0.0.1
	if stop_turnstone_checked "$PRIVPID" "$TS_LOG"; then tap_ok "proc-user server exits cleanly"; else tap_fail "proc-user server exits cleanly"; fi
else
	for t in "Uid/Gid" "Groups" "threads" "echo peer" "uclient exit" "uclient counts" "uclient loss" "clean exit"; do
		tap_fail "$t" "not run: server not up"
	done
fi

# ---- proc-user that does not exist: the server does not run --------------
PORT=$(free_udp_port) || die "no free port"
start_turnstone "${COMMON[@]}" --listening-port="$PORT" --proc-user=no-such-user-turnstone
if wait_exit "$TS_PID" 5 && [ "$EXIT_STATUS" -ne 0 ] && grep -q "proc-user 'no-such-user-turnstone': no such user" "$TS_LOG"; then
	tap_ok "proc-user that does not exist: exits (status $EXIT_STATUS) naming it"
else
	tap_fail "proc-user that does not exist: exits naming it" "status ${EXIT_STATUS:-running}" "$(cat "$TS_LOG")"
	kill "$TS_PID" 2>/dev/null
fi

tap_finish
