#!/usr/bin/env python3
"""Live metrics and health (issue 11) against the real turnstone server
($TURNSTONE_BIN) with its admin listener on loopback.  Speaks TAP.

/metrics is checked with promtool from Debian's prometheus package (a missing
promtool is a failure, not a skip).  Traffic is relayed between this test's
TURN client and its own UDP peer socket, all on 127.0.0.1.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import adminhttp as ah  # noqa: E402
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()
srv = None
REST_SECRET = "metrics-rest-secret"
# (control characters such as TAB are refused in USERNAME: RFC 8265 OpaqueString)
ODD_USERS = (("zo\u00eb-\u6771\u4eac-\U0001f600", "pw3"), ('q"uo\\te x', "pw4"))


def peer_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def eventually(fn, timeout=5.0):
    """fn() until it returns a true value or timeout seconds pass; its last value.
    The server answers a Refresh with lifetime 0 before it frees the allocation."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.05)


def relay_both_ways(c, peer, n, size=300):
    """n datagrams client -> peer (Send indications) and n back; checks each arrives."""
    for i in range(n):
        c.send_indication(peer.getsockname(), b"c" * size)
        peer.settimeout(2.0)
        data, frm = peer.recvfrom(65535)
        check_eq(len(data), size, "payload at the peer")
        peer.sendto(b"p" * size, frm)
        got = c.recv_data(timeout=2.0)
        check(got is not None and len(got[2]) == size, "datagram %d back at the client: %r" % (i, got))


@tap.case("GET /metrics passes promtool check metrics")
def t_promtool():
    promtool = shutil.which("promtool")
    check(promtool is not None, "promtool not on PATH (Debian package prometheus)")
    m, body, headers = ah.scrape(srv.admin_port)
    check(headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
          "content type %r" % headers.get("content-type"))
    p = subprocess.run([promtool, "check", "metrics"], input=body.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check(p.returncode == 0, "promtool check metrics failed:\n%s" % p.stdout.decode())
    for name in ("turnstone_allocations{transport=\"udp\",family=\"ipv4\"}",
                 "turnstone_relayed_bytes_total{direction=\"client_to_peer\"}",
                 "turnstone_allocate_responses_total{code=\"508\"}",
                 "turnstone_auth_failures_total{reason=\"stale_nonce\"}",
                 "turnstone_refused_total{reason=\"draining\"}",
                 "turnstone_redis_connected", "turnstone_worker_loop_ticks_total{worker=\"1\"}"):
        check(name in m, "%s missing from /metrics" % name)


@tap.case("counters move between two scrapes while an allocation is alive")
def t_counters_move():
    peer = peer_socket()
    with srv.client("alice") as c:
        check(c.allocate(lifetime=600).is_success(), "Allocate")
        check(c.create_permission(peer.getsockname()).is_success(), "CreatePermission")
        relay_both_ways(c, peer, 5)
        m1, _, _ = ah.scrape(srv.admin_port)
        relay_both_ways(c, peer, 7, size=500)
        m2, _, _ = ah.scrape(srv.admin_port)
        for d in ("client_to_peer", "peer_to_client"):
            b = 'turnstone_relayed_bytes_total{direction="%s"}' % d
            p = 'turnstone_relayed_packets_total{direction="%s"}' % d
            check(m2[b] - m1[b] >= 7 * 500, "%s moved by %s, expected >= 3500" % (b, m2[b] - m1[b]))
            check(m2[p] - m1[p] >= 7, "%s moved by %s, expected >= 7" % (p, m2[p] - m1[p]))
        live = 'turnstone_allocations{transport="udp",family="ipv4"}'
        check(m2[live] >= 1, "allocation gauge %s while alive" % m2[live])
        check(c.refresh(0).is_success(), "Refresh 0")
        dropped = eventually(lambda: ah.scrape(srv.admin_port)[0][live] == m2[live] - 1)
        check(dropped, "allocation gauge did not drop to %s after delete" % (m2[live] - 1))
    peer.close()


@tap.case("Allocate results and auth failures are counted by code and reason")
def t_codes_and_reasons():
    m1, _, _ = ah.scrape(srv.admin_port)
    with srv.client("alice") as c:
        check_eq(c.probe_401().error_code(), 401, "first Allocate")     # missing credentials
        check(c.allocate().is_success(), "Allocate")                      # 200
        check_eq(c.allocate().error_code(), 437, "second Allocate, same 5-tuple")
        c.refresh(0)
    with srv.client("alice", password="wrong") as c:
        check_eq(c.allocate().error_code(), 401, "wrong password")       # bad integrity
    with srv.client("nobody", password="x") as c:
        check_eq(c.allocate().error_code(), 401, "unknown user")         # unknown user
    with srv.client("alice") as c:
        c.probe_401()
        resp, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport()],
                            nonce="0000000000000000000000000000")     # bad nonce: 438
        check_eq(resp.error_code(), 438, "stale nonce")
    expired = "%d:carol" % (int(time.time()) - 60)   # TURN REST name that expired a minute ago
    pw = base64.b64encode(hmac.new(REST_SECRET.encode(), expired.encode(), hashlib.sha1).digest())
    with srv.client(expired, password=pw.decode()) as c:
        check_eq(c.allocate().error_code(), 401, "expired REST credential")
    m2, _, _ = ah.scrape(srv.admin_port)

    def moved(name):
        return m2[name] - m1[name]
    check(moved('turnstone_allocate_responses_total{code="200"}') >= 1, "200 not counted")
    check(moved('turnstone_allocate_responses_total{code="401"}') >= 4, "401 not counted")
    check(moved('turnstone_allocate_responses_total{code="437"}') >= 1, "437 not counted")
    check(moved('turnstone_allocate_responses_total{code="438"}') >= 1, "438 not counted")
    for reason in ("missing_credentials", "bad_integrity", "unknown_user", "stale_nonce",
                   "expired_rest_credential"):
        check(moved('turnstone_auth_failures_total{reason="%s"}' % reason) >= 1,
              "auth failure %s not counted" % reason)
    check(moved("turnstone_requests_total") >= 7, "requests not counted")


@tap.case("TCP connections gauge follows a connection's life")
def t_conns():
    name = 'turnstone_connections{transport="tcp",family="ipv4"}'
    before = ah.scrape(srv.admin_port)[0][name]
    c = srv.stream_client("alice")
    check(c.binding().is_success(), "Binding over TCP")
    check_eq(ah.scrape(srv.admin_port)[0][name], before + 1, "gauge with the connection open")
    c.close()
    end = time.monotonic() + 5
    while time.monotonic() < end and ah.scrape(srv.admin_port)[0][name] != before:
        time.sleep(0.05)
    check_eq(ah.scrape(srv.admin_port)[0][name], before, "gauge after close")


@tap.case("a TCP allocation counts as transport tcp in the gauge and in /sessions")
def t_tcp_alloc():
    name = 'turnstone_allocations{transport="tcp",family="ipv4"}'
    before = ah.scrape(srv.admin_port)[0][name]
    c = srv.stream_client("alice")
    try:
        check(c.allocate().is_success(), "Allocate over TCP")
        check_eq(ah.scrape(srv.admin_port)[0][name], before + 1, "tcp allocation gauge")
        st, _, body = ah.request(srv.admin_port, "GET", "/sessions")
        mine = [x for x in json.loads(body) if x["client"] == "%s:%d" % c.sock.getsockname()[:2]]
        check(len(mine) == 1 and mine[0]["transport"] == "tcp", "sessions %r" % body)
    finally:
        c.close()
    end = time.monotonic() + 5
    while time.monotonic() < end and ah.scrape(srv.admin_port)[0][name] != before:
        time.sleep(0.05)
    check_eq(ah.scrape(srv.admin_port)[0][name], before, "gauge after the connection closed")


@tap.case("worker loop ticks and worker CPU seconds advance; /healthz and /ready answer 200")
def t_health():
    m1, _, _ = ah.scrape(srv.admin_port)
    time.sleep(2.2)
    m2, _, _ = ah.scrape(srv.admin_port)
    for w in ("0", "1"):
        k = 'turnstone_worker_loop_ticks_total{worker="%s"}' % w
        check(m2[k] > m1[k], "%s did not advance" % k)
        # the thread's CPU time, sampled by each tick: ticking costs some
        k = 'turnstone_worker_cpu_seconds_total{worker="%s"}' % w
        check(m2[k] > m1[k], "%s: %r then %r" % (k, m1[k], m2[k]))
    st, _, body = ah.request(srv.admin_port, "GET", "/healthz")
    check_eq((st, body), (200, "ok\n"), "/healthz")
    st, _, body = ah.request(srv.admin_port, "GET", "/ready")
    check_eq((st, body), (200, "ready\n"), "/ready")


@tap.case("GET /sessions lists a live allocation with its bytes, no secrets")
def t_sessions():
    peer = peer_socket()
    with srv.client("bob") as c:
        check(c.allocate().is_success(), "Allocate")
        check(c.create_permission(peer.getsockname()).is_success(), "CreatePermission")
        relay_both_ways(c, peer, 3, size=100)
        st, headers, body = ah.request(srv.admin_port, "GET", "/sessions")
        check_eq(st, 200, "status")
        check_eq(headers.get("content-type"), "application/json", "content type")
        mine = [s for s in json.loads(body) if s["client"] == "%s:%d" % c.local]
        check_eq(len(mine), 1, "sessions of this client in %s" % body)
        s = mine[0]
        check_eq(s["user"], "bob", "user")
        check_eq(s["relay"], "%s:%d" % c.relayed, "relayed address")
        check_eq(s["transport"], "udp", "transport")
        check(s["bytes_to_peer"] >= 300 and s["bytes_to_client"] >= 300, "bytes: %r" % s)
        check(0 <= s["age_seconds"] < 60, "age %r" % s["age_seconds"])
        check("pw2" not in body, "password in /sessions")
        c.refresh(0)
    peer.close()


@tap.case("/ready answers 503 naming descriptors above 90 % of RLIMIT_NOFILE, 200 again below")
def t_ready_fds():
    limit = 64
    s = ah.admin_server(allow_loopback=True)
    s.args = ["prlimit", "--nofile=%d:%d" % (limit, limit)] + s.args  # prlimit execs the server
    clients = []
    try:
        s.start()
        ah.wait_admin(s.admin_port)
        m, _, _ = ah.scrape(s.admin_port)
        check_eq(m["process_max_fds"], limit, "process_max_fds")
        check(m["process_open_fds"] * 100 <= limit * 90, "too many descriptors at start: %r"
              % m["process_open_fds"])
        st, _, body = ah.request(s.admin_port, "GET", "/ready")
        check_eq((st, body), (200, "ready\n"), "/ready at start")
        # each UDP allocation holds one relay socket
        while len(clients) < limit:
            c = s.client("alice")
            clients.append(c)
            check(c.allocate().is_success(), "Allocate %d" % len(clients))
            if ah.scrape(s.admin_port)[0]["process_open_fds"] * 100 > limit * 90:
                break
        st, _, body = ah.request(s.admin_port, "GET", "/ready")
        check(st == 503 and body.startswith("descriptors: "), "/ready near the limit: %d %r" % (st, body))
        for c in clients[:10]:
            c.refresh(0)
        ready = eventually(lambda: ah.request(s.admin_port, "GET", "/ready")[2] == "ready\n")
        check(ready, "/ready not 200 after freeing 10 allocations: %r"
              % (ah.request(s.admin_port, "GET", "/ready")[2],))
    except Exception:
        tap.diag(s.log_text()[-3000:])
        raise
    finally:
        for c in clients:
            c.close()
        s.stop()
        s.cleanup_log()


@tap.case("prometheus-port already in use: exit 1 with a message naming prometheus")
def t_port_taken():
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    s = tc.Server(extra=["--prometheus", "--prometheus-port=%d" % taken.getsockname()[1]])
    try:
        p = subprocess.run(s.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace")
        check_eq(p.returncode, 1, "exit status (output %r)" % out)
        check("prometheus: cannot listen on 127.0.0.1 port %d" % taken.getsockname()[1] in out,
              "message: %r" % out)
    finally:
        taken.close()
        s.cleanup_log()


@tap.case("/sessions is valid JSON for user names with UTF-8, quotes, backslashes and spaces")
def t_sessions_names():
    names = [u for u, _ in ODD_USERS]
    clients = [srv.client(u) for u in names]
    try:
        for c in clients:
            check(c.allocate().is_success(), "Allocate as %r" % c.username)
        st, _, body = ah.request(srv.admin_port, "GET", "/sessions")
        check_eq(st, 200, "status")
        got = {x["client"]: x["user"] for x in json.loads(body)}
        for c in clients:
            check_eq(got.get("%s:%d" % c.local), c.username, "user name in /sessions")
        rc = subprocess.run([os.path.join(os.path.dirname(tc.turnstone_bin()), "turnstone-admin"),
                             "--admin-url=http://127.0.0.1:%d" % srv.admin_port, "--json", "sessions"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check_eq(rc.returncode, 0, "turnstone-admin --json sessions (stderr %r)" % rc.stderr)
        users = {x["user"] for x in json.loads(rc.stdout.decode("utf-8"))}
        check(set(names) <= users, "turnstone-admin users %r" % users)
    finally:
        for c in clients:
            c.refresh(0)
            c.close()


@tap.case("unknown paths get 404, wrong methods 405")
def t_errors():
    check_eq(ah.request(srv.admin_port, "GET", "/nope")[0], 404, "GET /nope")
    check_eq(ah.request(srv.admin_port, "POST", "/metrics")[0], 405, "POST /metrics")
    check_eq(ah.request(srv.admin_port, "GET", "/drain")[0], 405, "GET /drain")
    check(srv.alive(), "server died")


def main():
    global srv
    srv = ah.admin_server(allow_loopback=True,
                          users=(("alice", "secret"), ("bob", "pw2")) + ODD_USERS,
                          extra=["--use-auth-secret", "--static-auth-secret=%s" % REST_SECRET])
    try:
        srv.start()
        ah.wait_admin(srv.admin_port)
        rc = tap.run()
        st = srv.stop()
        if st != 0:
            tap.diag("server exit status %s" % st)
            rc = 1
    except Exception as e:
        tap.plan(1)
        tap.result(False, "start the server with its admin listener", str(e))
        rc = 1
    finally:
        alive = srv.alive()
        srv.stop()
        if tap.failed or rc:
            tap.diag("---- server log (%s), alive at end: %s ----" % (" ".join(srv.args), alive))
            tap.diag(srv.log_text()[-6000:])
        srv.cleanup_log()
    return rc


if __name__ == "__main__":
    sys.exit(main())
