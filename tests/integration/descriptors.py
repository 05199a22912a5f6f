#!/usr/bin/env python3
"""Running out of file descriptors (issue 11) against the real server on
loopback, started under a descriptor limit of 256 (prlimit, soft = hard).

Filled with TCP connections, the TCP and signaling listeners must pause
instead of spinning on accept(2) (the server stays below 10 % of a core), UDP
Binding must still be answered, an Allocate gets 508, the log says so in a
rate-limited line, and once the connections close the listeners accept again.
Speaks TAP.
"""

import os
import resource
import socket
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()
LIMIT = 256
NCONN = 400           # more than LIMIT, fewer than the listen backlog (1024)
NSIGNAL = 10          # connections to the signaling port on top

# This process holds NCONN + NSIGNAL sockets itself.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft < _hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))

sigport = tc.free_udp_port()
srv = tc.Server(range_len=100, extra=[
    "--no-signaling=false", "--signaling-port=%d" % sigport,
    "--signaling-root=%s" % os.path.join(_top, "share", "www"), "--idle-timeout=300"])
srv.args = ["prlimit", "--nofile=%d:%d" % (LIMIT, LIMIT), "--"] + srv.args
conns = []
state = {}


def cpu_seconds():
    """utime + stime of the server so far, from /proc/PID/stat."""
    with open("/proc/%d/stat" % srv.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    conns.append(s)


@tap.case("server starts under RLIMIT_NOFILE 256, logs the figure and warns it is too low")
def t_start():
    srv.start()
    text = srv.log_text()
    check("descriptors: RLIMIT_NOFILE is %d" % LIMIT in text, "no RLIMIT_NOFILE line:\n" + text)
    check("RLIMIT_NOFILE %d is below" % LIMIT in text, "no warning about the low limit:\n" + text)


@tap.case("%d TCP + %d signaling connections: the server runs out of descriptors and says so"
          % (NCONN, NSIGNAL))
def t_fill():
    for _ in range(NCONN):
        open_conn(srv.port)
    for _ in range(NSIGNAL):
        open_conn(sigport)
    state["filled"] = True
    end = time.monotonic() + 10
    while time.monotonic() < end:
        text = srv.log_text()
        if "cannot accept TCP/TLS connections" in text:
            break
        time.sleep(0.2)
    check("cannot accept TCP/TLS connections" in text, "no out-of-descriptors line:\n" + text[-3000:])
    check(srv.alive(), "server died")


@tap.case("while full, the server uses < 10 % of a core (listeners paused, not spinning)")
def t_cpu():
    check(state.get("filled"), "not filled")
    time.sleep(1.0)  # let the accepts of the backlog settle
    c0, t0 = cpu_seconds(), time.monotonic()
    time.sleep(4.0)
    used, wall = cpu_seconds() - c0, time.monotonic() - t0
    tap.diag("server CPU while full: %.2f s in %.1f s (%.1f %%)" % (used, wall, 100 * used / wall))
    check(used / wall < 0.10, "server used %.0f %% of a core" % (100 * used / wall))


@tap.case("while full, UDP Binding is answered")
def t_binding():
    check(state.get("filled"), "not filled")
    with srv.client() as c:
        r = c.binding()
        check(r.is_success(), "Binding: %r" % r)


@tap.case("while full, an Allocate gets 508, logged (rate-limited) as out of descriptors")
def t_allocate_508():
    check(state.get("filled"), "not filled")
    with srv.client() as c:
        r = c.allocate()
        check(r.cls == tc.ERROR and r.error_code() == 508, "Allocate: expected 508, got %r" % r)
    with srv.client() as c:
        r = c.allocate()
        check(r.cls == tc.ERROR and r.error_code() == 508, "second Allocate: expected 508, got %r" % r)
    text = srv.log_text()
    n = text.count("no relay socket for an Allocate")
    check(n == 1, "expected one 'no relay socket' line for two Allocates, got %d" % n)
    check("no free relay port" not in text, "logged as 'no free relay port' as well")


@tap.case("the out-of-descriptors lines are rate-limited (a few lines, not one per accept)")
def t_log_rate():
    text = srv.log_text()
    tcp = text.count("cannot accept TCP/TLS connections")
    sig = text.count("signaling: accept failed")
    tap.diag("%d TCP and %d signaling accept lines" % (tcp, sig))
    # one line per 10 s each; the test has run for well under 30 s
    check(1 <= tcp <= 3, "%d TCP accept-failure lines" % tcp)
    check(sig <= 3, "%d signaling accept-failure lines" % sig)


@tap.case("once the connections close, TCP and signaling accept again and Allocate works")
def t_recover():
    for s in conns:
        s.close()
    del conns[:]
    srv.wait_stream_ready(timeout=15)
    end = time.monotonic() + 15
    answer = b""
    while time.monotonic() < end and not answer.startswith(b"HTTP/1.1 "):
        try:
            with socket.create_connection(("127.0.0.1", sigport), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answer = s.recv(64)
        except OSError:
            time.sleep(0.3)
    check(answer.startswith(b"HTTP/1.1 "), "signaling port does not answer HTTP: %r" % answer)
    with srv.client() as c:
        r = c.allocate()
        check(r.is_success(), "Allocate after recovery: %r" % r)


@tap.case("server exits cleanly on SIGTERM, no sanitizer report")
def t_stop():
    for s in conns:
        s.close()
    rc = srv.stop()
    check(rc in (0, -15), "exit status %r" % rc)
    check(not srv.needed_kill, "needed SIGKILL")
    check_eq(srv.sanitizer_report(), [], "sanitizer report")


if __name__ == "__main__":
    rc = tap.run()
    if rc:
        tap.diag("---- server log ----\n" + srv.log_text()[-6000:])
    srv.stop()
    sys.exit(rc)
