#!/usr/bin/env python3
"""GET /ready near a quota (issue 11): 503 with the reason once 90 % of
total-quota is in use or the relayed rate reaches 90 % of bps-capacity, 200
again when it falls back.  Real server ($TURNSTONE_BIN), its admin listener
and this test's own UDP peer, all on 127.0.0.1.  Speaks TAP.
"""

import os
import socket
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
servers = []


def start(extra):
    srv = ah.admin_server(allow_loopback=True, extra=extra)
    servers.append(srv)
    srv.start()
    ah.wait_admin(srv.admin_port)
    return srv


def ready(srv):
    st, _, body = ah.request(srv.admin_port, "GET", "/ready")
    return st, body


def wait_ready_status(srv, want, secs=4.0):
    end = time.monotonic() + secs
    st, body = ready(srv)
    while st != want and time.monotonic() < end:
        time.sleep(0.2)
        st, body = ready(srv)
    return st, body


@tap.case("total-quota 3: /ready 200 with 2 allocations, 503 'total-quota' with 3, 200 after one ends")
def t_total_quota():
    srv = start(["--total-quota=3"])
    clients = [srv.client("alice") for _ in range(3)]
    try:
        for c in clients[:2]:
            check(c.allocate().is_success(), "Allocate")
        st, body = ready(srv)
        check_eq(st, 200, "/ready with 2 of 3 (%r)" % body)
        check(clients[2].allocate().is_success(), "third Allocate")
        st, body = wait_ready_status(srv, 503)
        check_eq(st, 503, "/ready with 3 of 3")
        check("total-quota: 3 of 3" in body, "reason in %r" % body)
        check(clients[2].refresh(0).is_success(), "Refresh 0")
        st, body = wait_ready_status(srv, 200)
        check_eq((st, body), (200, "ready\n"), "/ready after one ended")
    finally:
        for c in clients:
            c.close()
        check_eq(srv.stop(), 0, "server exit status")


@tap.case("bps-capacity: /ready 503 'bps-capacity' while relaying above it, 200 once idle")
def t_bps_capacity():
    cap = 50000  # bytes/s; one worker, so it holds the whole capacity
    srv = start(["--bps-capacity=%d" % cap, "--relay-threads=1"])
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    c = srv.client("alice")
    try:
        check(c.allocate().is_success(), "Allocate")
        check(c.create_permission(peer.getsockname()).is_success(), "CreatePermission")
        # about 4x the capacity for 3.5 s: what gets through is about the
        # capacity, so the relayed rate /ready samples is above 90 % of it.
        worst = None
        end = time.monotonic() + 3.5
        nxt = time.monotonic()
        seen = None
        while time.monotonic() < end:
            c.send_indication(peer.getsockname(), b"x" * 1000)
            nxt += 1000.0 / (4 * cap)
            try:
                while True:
                    peer.recv(65535)
            except BlockingIOError:
                pass
            if seen is None and time.monotonic() > end - 2.0:
                st, body = ready(srv)
                worst = (st, body)
                if st == 503:
                    seen = body
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
        check(seen is not None, "/ready never 503 while relaying above capacity: %r" % (worst,))
        check("bps-capacity" in (seen or ""), "reason in %r" % seen)
        st, body = wait_ready_status(srv, 200, secs=5.0)
        check_eq((st, body), (200, "ready\n"), "/ready once idle")
    finally:
        c.close()
        peer.close()
        check_eq(srv.stop(), 0, "server exit status")


def main():
    return tc.run_with_servers(tap, servers)


if __name__ == "__main__":
    sys.exit(main())
