#!/usr/bin/env python3
"""Draining (issue 11) and turnstone-admin sessions/drain, against the real
turnstone server ($TURNSTONE_BIN) and turnstone-admin on loopback.  Speaks TAP.

Drain: SIGUSR1 or POST /drain (turnstone-admin drain) stops new allocations
(508) while live ones keep relaying; the server exits when the last one is
deleted, or after drain-timeout with one still alive.
"""

import json
import os
import signal
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
servers = []


def admin_bin():
    b = os.path.join(os.path.dirname(tc.turnstone_bin()), "turnstone-admin")
    check(os.access(b, os.X_OK), "%s is not executable" % b)
    return b


def start(**kw):
    s = ah.admin_server(allow_loopback=True, **kw)
    servers.append(s)
    s.start()
    ah.wait_admin(s.admin_port)
    return s


def peer_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def relays(c, peer):
    """One datagram each way through c's allocation to peer."""
    c.send_indication(peer.getsockname(), b"to-peer")
    peer.settimeout(2.0)
    data, frm = peer.recvfrom(2048)
    check_eq(data, b"to-peer", "client -> peer")
    peer.sendto(b"to-client", frm)
    got = c.recv_data(timeout=2.0)
    check(got is not None and got[2] == b"to-client", "peer -> client: %r" % (got,))


def live_allocation(s, user="alice"):
    c = s.client(user)
    check(c.allocate(lifetime=600).is_success(), "Allocate")
    peer = peer_socket()
    check(c.create_permission(peer.getsockname()).is_success(), "CreatePermission")
    relays(c, peer)
    return c, peer


def wait_exit(s, timeout):
    try:
        return s.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def expect_508(s):
    with s.client("bob") as n:
        resp = n.allocate()
        check_eq(resp.error_code(), 508, "new Allocate while draining")


def admin(s, *args):
    p = subprocess.run([admin_bin(), "--admin-url=http://127.0.0.1:%d" % s.admin_port] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@tap.case("SIGUSR1: new Allocate 508, live allocation relays, exit once it is deleted")
def t_drain_until_empty():
    s = start()
    c, peer = live_allocation(s)
    s.proc.send_signal(signal.SIGUSR1)
    end = time.monotonic() + 5
    while time.monotonic() < end and ah.scrape(s.admin_port)[0]["turnstone_draining"] != 1:
        time.sleep(0.05)
    expect_508(s)
    m, _, _ = ah.scrape(s.admin_port)
    check(m['turnstone_refused_total{reason="draining"}'] >= 1, "draining refusal not counted")
    check(m['turnstone_allocate_responses_total{code="508"}'] >= 1, "508 not counted")
    st, _, body = ah.request(s.admin_port, "GET", "/ready")
    check(st == 503 and "draining" in body, "/ready while draining: %d %r" % (st, body))
    relays(c, peer)
    time.sleep(1.5)
    check(s.alive(), "server exited with an allocation still alive")
    relays(c, peer)
    check(c.refresh(0).is_success(), "delete the allocation")
    st = wait_exit(s, 15)
    check_eq(st, 0, "exit status after the last allocation ended")
    check("drained" in s.log_text(), "log does not say drained")
    c.close()
    peer.close()


@tap.case("SIGUSR1 with drain-timeout: exits with the allocation still alive")
def t_drain_timeout():
    s = start(extra=["--drain-timeout=2"])
    c, peer = live_allocation(s)
    s.proc.send_signal(signal.SIGUSR1)
    st = wait_exit(s, 20)
    check_eq(st, 0, "exit status after drain-timeout")
    check("drain-timeout (2 s) passed with 1 allocation(s) left" in s.log_text(),
          "log does not name the drain-timeout")
    c.close()
    peer.close()


@tap.case("turnstone-admin sessions prints a table and --json")
def t_admin_sessions():
    s = start()
    c, peer = live_allocation(s, user="bob")
    rc, out, err = admin(s, "sessions")
    check_eq(rc, 0, "exit status (stderr %r)" % err)
    lines = out.splitlines()
    check(lines and lines[0].split()[:4] == ["USER", "CLIENT", "RELAY", "PROTO"], "header %r" % lines[:1])
    row = [l for l in lines[1:] if ("%s:%d" % c.local) in l]
    check_eq(len(row), 1, "table rows for this client in %r" % out)
    f = row[0].split()
    check_eq((f[0], f[2], f[3]), ("bob", "%s:%d" % c.relayed, "udp"), "row")
    check(int(f[5]) > 0 and int(f[6]) > 0, "bytes in row %r" % row[0])
    rc, out, err = admin(s, "--json", "sessions")
    check_eq(rc, 0, "exit status with --json (stderr %r)" % err)
    arr = json.loads(out)
    mine = [x for x in arr if x["client"] == "%s:%d" % c.local]
    check(len(mine) == 1 and mine[0]["user"] == "bob" and mine[0]["bytes_to_client"] > 0,
          "JSON %r" % arr)
    c.refresh(0)
    c.close()
    peer.close()
    s.stop()


@tap.case("turnstone-admin drain: 508 for new allocations, exit when the last ends")
def t_admin_drain():
    s = start()
    c, peer = live_allocation(s)
    rc, out, err = admin(s, "drain")
    check_eq(rc, 0, "exit status (stderr %r)" % err)
    check("draining" in out, "output %r" % out)
    end = time.monotonic() + 5
    while time.monotonic() < end and ah.scrape(s.admin_port)[0]["turnstone_draining"] != 1:
        time.sleep(0.05)
    expect_508(s)
    relays(c, peer)
    check(c.refresh(0).is_success(), "delete the allocation")
    check_eq(wait_exit(s, 15), 0, "exit status")
    c.close()
    peer.close()


@tap.case("turnstone-admin sessions without a listener fails with exit 1")
def t_admin_no_listener():
    port = tc.free_udp_port()
    p = subprocess.run([admin_bin(), "--admin-url=http://127.0.0.1:%d" % port, "sessions"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check_eq(p.returncode, 1, "exit status")
    check("cannot connect" in p.stderr.decode(), "stderr %r" % p.stderr)


def main():
    rc = 1
    try:
        rc = tap.run()
    finally:
        for s in servers:
            alive = s.alive()
            s.stop()
            if tap.failed:
                tap.diag("---- server log (%s), alive at end: %s ----" % (" ".join(s.args), alive))
                tap.diag(s.log_text()[-4000:])
            s.cleanup_log()
    return rc


if __name__ == "__main__":
    sys.exit(main())
