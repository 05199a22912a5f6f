#!/usr/bin/env python3
"""RFC 6062 TCP allocations against the real turnstone server ($TURNSTONE_BIN)
on loopback: Allocate with REQUESTED-TRANSPORT=TCP, Connect (active), an
inbound peer connection announced by ConnectionAttempt (passive),
ConnectionBind on a new client data connection, raw bytes both ways, the
peer policy and permissions, 446/447/400/403/442, the pending limits, the
30 s bind timeout, and connections closing together.  Speaks TAP.

The client is the suite's own (tests/lib/turnclient.py), written from the
RFC text; coturn's turnutils_uclient -T drives the same server in
tcp_uclient.sh.  Peers are this test's own TCP sockets on 127.0.0.1.
"""

import os
import shutil
import socket
import sys
import tempfile
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()
_servers = {}
_tmpdir = None


def tmpdir():
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="turnstone-tcprelay-")
    return _tmpdir


def server(kind):
    if kind not in _servers:
        if kind == "main":
            # 4 workers: data connections often land on another worker than
            # their allocation (the hand-over path)
            opts = dict(allow_loopback=True, tls=tc.gen_cert(tmpdir(), "srv"),
                        extra=["--tcp-relay", "--relay-threads=4", "--tcp-relay-max-pending=3"])
        elif kind == "strict":   # default peer policy: loopback refused
            opts = dict(extra=["--tcp-relay"])
        elif kind == "bps":      # max-bps 100 kB/s per direction
            opts = dict(allow_loopback=True, extra=["--tcp-relay", "--max-bps=100000"])
        elif kind == "total":    # 2 pending peer connections in the whole server
            opts = dict(allow_loopback=True, extra=["--tcp-relay", "--tcp-relay-max-pending-total=2"])
        elif kind == "v6":       # also listens on ::1, so IPv6 relayed addresses exist
            opts = dict(allow_loopback=True, ipv6=True, extra=["--tcp-relay"])
        elif kind == "quota":    # one allocation per user
            opts = dict(allow_loopback=True, extra=["--tcp-relay", "--user-quota=1"])
        elif kind == "off":      # tcp-relay not set
            opts = dict(allow_loopback=True)
        else:
            raise KeyError(kind)
        s = tc.Server(**opts)
        _servers[kind] = s
        s.start()
        s.wait_stream_ready()
        if s.tls_port is not None:
            s.wait_stream_ready(tls=True)
    return _servers[kind]


def listener():
    """A TCP peer listening on 127.0.0.1 (the test accepts by hand)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(5)
    return s


def recv_exact(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    out = b""
    while len(out) < n:
        try:
            d = sock.recv(n - len(out))
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        out += d
    return out


def is_closed(sock, timeout=5.0):
    """True when the other side closes sock within timeout (data is discarded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, OSError):
            return True
    return False


def tcp_allocation(srv, tls=False):
    """A control connection with a TCP allocation."""
    c = srv.stream_client(tls=tls)
    r = c.allocate(transport=tc.PROTO_TCP)
    check(r.is_success(), "TCP Allocate: %r" % r)
    return c


def data_connection(srv, ctl, cid, tls=False):
    """A new client data connection bound to cid (checked)."""
    d = srv.stream_client(tls=tls)
    d.adopt_credentials(ctl)
    r = d.connection_bind(cid)
    check(r.is_success(), "ConnectionBind: %r" % r)
    return d


def active(srv, tls=False, early=b"peer spoke first"):
    """Connect to a fresh peer listener; returns (ctl, data, peer_sock)."""
    ctl = tcp_allocation(srv, tls)
    lst = listener()
    r = ctl.tcp_connect(lst.getsockname())
    check(r.is_success(), "Connect: %r" % r)
    cid = r.connection_id()
    check(cid is not None, "Connect success without CONNECTION-ID")
    peer, src = lst.accept()
    lst.close()
    check_eq(src[:2], ctl.relayed, "peer sees the relayed address as the source")
    if early:
        peer.sendall(early)  # before ConnectionBind: must wait for the bind
    d = data_connection(srv, ctl, cid, tls)
    if early:
        check_eq(d.data_recv(len(early)), early, "bytes the peer sent before ConnectionBind")
    return ctl, d, peer


def both_ways(d, peer, size=1000):
    up = os.urandom(size)
    d.data_send(up)
    check_eq(recv_exact(peer, len(up)), up, "client -> peer bytes")
    down = os.urandom(size)
    peer.sendall(down)
    check_eq(d.data_recv(len(down)), down, "peer -> client bytes")


@tap.case("TCP Allocate over TCP: relayed address accepts TCP; no permission -> closed, no ConnectionAttempt")
def t_allocate():
    srv = server("main")
    ctl = tcp_allocation(srv)
    check(ctl.relayed is not None and ctl.relayed[0] == "127.0.0.1", "relayed %r" % (ctl.relayed,))
    p = socket.create_connection(tuple(ctl.relayed), timeout=5)
    check(is_closed(p), "a peer without permission is not closed")
    check(ctl.wait_connection_attempt(1.0) is None, "ConnectionAttempt for a peer without permission")
    p.close()
    ctl.close()


@tap.case("Connect (active): peer sees the relayed address, early peer bytes wait for the bind, both ways")
def t_active():
    srv = server("main")
    ctl, d, peer = active(srv)
    both_ways(d, peer)
    both_ways(d, peer, 3)
    for x in (ctl, d, peer):
        x.close()


@tap.case("Connect: 2 MB each way at once (flow control, no loss, no reordering)")
def t_bulk():
    srv = server("main")
    ctl, d, peer = active(srv, early=None)
    up, down = os.urandom(2 << 20), os.urandom(2 << 20)
    import threading
    got = {}

    def peer_side():
        peer.sendall(down)

    def peer_read():
        got["up"] = recv_exact(peer, len(up), timeout=30)

    ts = [threading.Thread(target=peer_side), threading.Thread(target=peer_read)]
    for t in ts:
        t.start()
    d.data_send(up)
    got_down = d.data_recv(len(down), timeout=30)
    for t in ts:
        t.join(30)
    check(got.get("up") == up, "client -> peer: %d of %d bytes intact" % (len(got.get("up", b"")), len(up)))
    check(got_down == down, "peer -> client: %d of %d bytes intact" % (len(got_down), len(down)))
    for x in (ctl, d, peer):
        x.close()


@tap.case("inbound (passive): CreatePermission, peer connects, ConnectionAttempt, ConnectionBind, both ways")
def t_passive():
    srv = server("main")
    ctl = tcp_allocation(srv)
    check(ctl.create_permission(("127.0.0.1", 0)).is_success(), "CreatePermission")
    peer = socket.create_connection(tuple(ctl.relayed), timeout=5)
    peer.sendall(b"hello before bind")
    ca = ctl.wait_connection_attempt(5.0)
    check(ca is not None, "no ConnectionAttempt")
    cid, paddr = ca
    check_eq(paddr, peer.getsockname()[:2], "ConnectionAttempt XOR-PEER-ADDRESS")
    d = data_connection(srv, ctl, cid)
    check_eq(d.data_recv(17), b"hello before bind", "peer bytes sent before the bind")
    both_ways(d, peer)
    for x in (ctl, d, peer):
        x.close()


@tap.case("TLS control and TLS data connections: Connect and inbound, both ways")
def t_tls():
    srv = server("main")
    ctl, d, peer = active(srv, tls=True)
    both_ways(d, peer, 5000)
    check(ctl.create_permission(("127.0.0.1", 0)).is_success(), "CreatePermission")
    p2 = socket.create_connection(tuple(ctl.relayed), timeout=5)
    ca = ctl.wait_connection_attempt(5.0)
    check(ca is not None, "no ConnectionAttempt over TLS")
    d2 = data_connection(srv, ctl, ca[0], tls=True)
    both_ways(d2, p2, 5000)
    for x in (ctl, d, peer, d2, p2):
        x.close()


@tap.case("12 data connections of one allocation (any worker accepts them), each relays its own bytes")
def t_many():
    srv = server("main")
    ctl = tcp_allocation(srv)
    pairs = []
    for i in range(12):
        lst = listener()
        r = ctl.tcp_connect(lst.getsockname())
        check(r.is_success(), "Connect %d: %r" % (i, r))
        peer, _ = lst.accept()
        lst.close()
        pairs.append((data_connection(srv, ctl, r.connection_id()), peer))
    for i, (d, peer) in enumerate(pairs):
        msg = ("connection %d" % i).encode() * 10
        d.data_send(msg)
        check_eq(recv_exact(peer, len(msg)), msg, "connection %d up" % i)
        peer.sendall(msg[::-1])
        check_eq(d.data_recv(len(msg)), msg[::-1], "connection %d down" % i)
    for d, peer in pairs:
        d.close()
        peer.close()
    ctl.close()


@tap.case("closing: peer EOF closes the client data connection, client EOF closes the peer, "
          "Refresh 0 closes them all")
def t_close():
    srv = server("main")
    ctl, d, peer = active(srv, early=None)
    peer.sendall(b"last words")
    peer.close()
    check_eq(d.data_recv(10), b"last words", "bytes queued before the peer closed")
    check(d.wait_closed(5.0), "client data connection still open after the peer closed")
    d.close()
    lst = listener()
    r = ctl.tcp_connect(lst.getsockname())
    check(r.is_success(), "second Connect to a new peer: %r" % r)
    peer2, _ = lst.accept()
    lst.close()
    d2 = data_connection(srv, ctl, r.connection_id())
    d2.close()
    check(is_closed(peer2), "peer still connected after the client data connection closed")
    peer2.close()
    lst = listener()
    r = ctl.tcp_connect(lst.getsockname())
    check(r.is_success(), "third Connect: %r" % r)
    peer3, _ = lst.accept()
    lst.close()
    d3 = data_connection(srv, ctl, r.connection_id())
    check(ctl.refresh(0).is_success(), "Refresh lifetime 0")
    check(is_closed(peer3), "peer still connected after the allocation ended")
    check(d3.wait_closed(5.0), "data connection still open after the allocation ended")
    for x in (ctl, d3, peer3):
        x.close()


@tap.case("IPv6 TCP allocation (REQUESTED-ADDRESS-FAMILY): Connect to [::1] and inbound from [::1], both ways")
def t_ipv6():
    srv = server("v6")
    ctl = srv.stream_client()
    r = ctl.allocate(transport=tc.PROTO_TCP,
                     extra=[tc.Attr.raw(tc.REQUESTED_ADDRESS_FAMILY, b"\x02\x00\x00\x00")])
    check(r.is_success(), "IPv6 TCP Allocate: %r" % r)
    check(":" in ctl.relayed[0], "relayed address %r is not IPv6" % (ctl.relayed,))
    lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lst.bind(("::1", 0))
    lst.listen(4)
    lst.settimeout(5)
    r = ctl.tcp_connect(lst.getsockname()[:2])
    check(r.is_success(), "Connect to [::1]: %r" % r)
    peer, src = lst.accept()
    lst.close()
    check_eq(src[:2], ctl.relayed, "peer sees the relayed address")
    d = data_connection(srv, ctl, r.connection_id())
    both_ways(d, peer)
    check_eq(ctl.tcp_connect(("127.0.0.1", 9)).error_code(), 443, "Connect to an IPv4 peer")
    check(ctl.create_permission(("::1", 0)).is_success(), "CreatePermission [::1]")
    p2 = socket.create_connection(tuple(ctl.relayed), timeout=5)
    ca = ctl.wait_connection_attempt(5.0)
    check(ca is not None, "no ConnectionAttempt")
    check_eq(ca[1], p2.getsockname()[:2], "ConnectionAttempt XOR-PEER-ADDRESS")
    d2 = data_connection(srv, ctl, ca[0])
    both_ways(d2, p2)
    for x in (ctl, d, peer, d2, p2):
        x.close()


@tap.case("errors: 446 same peer twice, 447 refused port, 400 unknown CONNECTION-ID, "
          "400 ConnectionBind on the control connection, 400 ChannelBind on a TCP allocation")
def t_errors():
    srv = server("main")
    ctl = tcp_allocation(srv)
    lst = listener()
    r = ctl.tcp_connect(lst.getsockname())
    check(r.is_success(), "Connect: %r" % r)
    check_eq(ctl.tcp_connect(lst.getsockname()).error_code(), 446, "second Connect to the same peer")
    # a port nobody listens on: bind one, close it
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()
    s.close()
    check_eq(ctl.tcp_connect(closed).error_code(), 447, "Connect to a closed port")
    d = srv.stream_client()
    d.adopt_credentials(ctl)
    # low 10 bits: the owning worker; 0x345 names no worker (refused where it arrives)
    check_eq(d.connection_bind(0x12345).error_code(), 400, "ConnectionBind with an id naming no worker")
    d.close()
    d = srv.stream_client()
    d.adopt_credentials(ctl)
    # worker 0 exists but has no such connection: refused by the owner, connection closed
    check_eq(d.connection_bind(0x12345 << 10).error_code(), 400, "ConnectionBind with an unknown id")
    check(d.wait_closed(5.0), "connection left open after a refused ConnectionBind")
    d.close()
    check_eq(ctl.connection_bind(r.connection_id()).error_code(), 400, "ConnectionBind on the control connection")
    check_eq(ctl.channel_bind(0x4000, ("127.0.0.1", 9)).error_code(), 400, "ChannelBind on a TCP allocation")
    lst.close()
    ctl.close()


@tap.case("Allocate: 400 for TCP over UDP and with EVEN-PORT; Connect on a UDP allocation 400")
def t_allocate_errors():
    srv = server("main")
    with srv.client() as u:
        check_eq(u.allocate(transport=tc.PROTO_TCP).error_code(), 400, "TCP allocation over UDP")
        check(u.allocate().is_success(), "UDP allocation")
        check_eq(u.auth_request(tc.CONNECT, [tc.Attr.xor_peer("127.0.0.1", 9)])[0].error_code(), 400,
                 "Connect on a UDP allocation")
    c = srv.stream_client()
    check_eq(c.allocate(transport=tc.PROTO_TCP, extra=[tc.Attr.raw(tc.EVEN_PORT, b"\x00")]).error_code(),
             400, "TCP allocation with EVEN-PORT")
    c.close()
    c = srv.stream_client()
    check(c.allocate().is_success(), "UDP allocation over TCP")
    check_eq(c.tcp_connect(("127.0.0.1", 9)).error_code(), 400, "Connect on a UDP allocation (TCP control)")
    c.close()


@tap.case("user-quota=1: a TCP allocation counts (a second Allocate 486, allowed again once it ends)")
def t_quota():
    srv = server("quota")
    ctl = tcp_allocation(srv)
    with srv.client() as u:
        check_eq(u.allocate().error_code(), 486, "UDP Allocate while the TCP allocation lives")
        c2 = srv.stream_client()
        check_eq(c2.allocate(transport=tc.PROTO_TCP).error_code(), 486, "second TCP Allocate")
        c2.close()
        ctl.close()  # the control connection closing ends the allocation
        end = time.monotonic() + 5
        while True:
            r = u.allocate()
            if r.is_success() or time.monotonic() > end:
                break
            time.sleep(0.1)
        check(r.is_success(), "Allocate after the TCP allocation ended: %r" % r)


@tap.case("tcp-relay off: TCP Allocate 442")
def t_off():
    srv = server("off")
    c = srv.stream_client()
    check_eq(c.allocate(transport=tc.PROTO_TCP).error_code(), 442, "TCP Allocate without tcp-relay")
    c.close()


@tap.case("peer policy: Connect to a refused (loopback) peer 403, nothing connects to it")
def t_policy():
    srv = server("strict")
    c = srv.stream_client()
    check(c.allocate(transport=tc.PROTO_TCP).is_success(), "TCP Allocate")
    lst = listener()
    check_eq(c.tcp_connect(lst.getsockname()).error_code(), 403, "Connect to 127.0.0.1")
    lst.settimeout(0.5)
    try:
        lst.accept()
        check(False, "the server connected to a refused peer")
    except socket.timeout:
        pass
    check_eq(c.create_permission(("127.0.0.1", 0)).error_code(), 403, "CreatePermission for 127.0.0.1")
    lst.close()
    c.close()


@tap.case("Connect to the server's own listening port 403 even with allow-loopback-peers")
def t_own_port():
    srv = server("main")
    c = srv.stream_client()
    check(c.allocate(transport=tc.PROTO_TCP).is_success(), "TCP Allocate")
    check_eq(c.tcp_connect(srv.addr).error_code(), 403, "Connect to our own TCP listening port")
    c.close()


@tap.case("tcp-relay-max-pending=3: a 4th unbound Connect 508, a 4th inbound peer closed; bind frees a slot")
def t_pending_limit():
    srv = server("main")
    ctl = tcp_allocation(srv)
    lsts = [listener() for _ in range(5)]
    rs = [ctl.tcp_connect(l.getsockname()) for l in lsts[:3]]
    check(all(r.is_success() for r in rs), "3 Connects: %r" % rs)
    check_eq(ctl.tcp_connect(lsts[3].getsockname()).error_code(), 508, "4th pending Connect")
    check(ctl.create_permission(("127.0.0.1", 0)).is_success(), "CreatePermission")
    p = socket.create_connection(tuple(ctl.relayed), timeout=5)
    check(is_closed(p), "inbound peer over the pending limit not closed")
    check(ctl.wait_connection_attempt(0.5) is None, "ConnectionAttempt over the pending limit")
    p.close()
    d = data_connection(srv, ctl, rs[0].connection_id())
    check(ctl.tcp_connect(lsts[4].getsockname()).is_success(), "Connect after a bind freed a slot")
    d.close()
    for l in lsts:
        l.close()
    ctl.close()


@tap.case("tcp-relay-max-pending-total=2: a 3rd pending Connect on a 3rd allocation 508; a bind frees a slot")
def t_pending_total():
    srv = server("total")
    ctls = [tcp_allocation(srv) for _ in range(3)]
    lsts = [listener() for _ in range(3)]
    r0 = ctls[0].tcp_connect(lsts[0].getsockname())
    r1 = ctls[1].tcp_connect(lsts[1].getsockname())
    check(r0.is_success() and r1.is_success(), "2 Connects: %r %r" % (r0, r1))
    check_eq(ctls[2].tcp_connect(lsts[2].getsockname()).error_code(), 508, "3rd pending Connect in the server")
    d = data_connection(srv, ctls[0], r0.connection_id())
    check(ctls[2].tcp_connect(lsts[2].getsockname()).is_success(), "Connect after a bind freed a slot")
    for x in ctls + lsts + [d]:
        x.close()


@tap.case("a peer connection not bound within 30 s is closed; a late ConnectionBind gets 400")
def t_bind_timeout():
    srv = server("main")
    ctl = tcp_allocation(srv)
    lst = listener()
    r = ctl.tcp_connect(lst.getsockname())
    check(r.is_success(), "Connect: %r" % r)
    peer, _ = lst.accept()
    lst.close()
    t0 = time.monotonic()
    check(is_closed(peer, 45.0), "peer connection still open after 45 s without ConnectionBind")
    waited = time.monotonic() - t0
    check(waited >= 28, "closed after %.1f s, before the 30 s RFC 6062 requires" % waited)
    d = srv.stream_client()
    d.adopt_credentials(ctl)
    check_eq(d.connection_bind(r.connection_id()).error_code(), 400, "late ConnectionBind")
    for x in (d, peer, ctl):
        x.close()


@tap.case("max-bps=100000: 400 kB client -> peer arrive intact, held back (>= 1.5 s), not dropped")
def t_bps():
    srv = server("bps")
    ctl, d, peer = active(srv, early=None)
    up = os.urandom(400000)
    import threading
    got = {}

    def peer_read():
        got["up"] = recv_exact(peer, len(up), timeout=60)
        got["t"] = time.monotonic()

    t = threading.Thread(target=peer_read)
    t0 = time.monotonic()
    t.start()
    d.data_send(up)
    t.join(60)
    check(got.get("up") == up, "%d of %d bytes intact" % (len(got.get("up", b"")), len(up)))
    took = got["t"] - t0
    tap.diag("400 kB at max-bps 100 kB/s (1 s burst): %.1f s" % took)
    check(took >= 1.5, "400 kB took %.2f s: max-bps not applied to TCP relay bytes" % took)
    for x in (ctl, d, peer):
        x.close()


@tap.case("servers exit cleanly on SIGTERM, no sanitizer report")
def t_clean_exit():
    bad = []
    for kind, s in _servers.items():
        if not s.alive():
            bad.append("%s: died early (status %s)" % (kind, s.proc.returncode))
            continue
        rc = s.stop()
        if rc != 0:
            bad.append("%s: exit status %s" % (kind, rc))
        rep = s.sanitizer_report()
        if rep:
            bad.append("%s: sanitizer report:\n%s" % (kind, "\n".join(rep[:20])))
    check(_servers, "no server was started")
    check(not bad, "\n".join(bad))


def main():
    try:
        rc = tap.run()
    finally:
        for kind, s in list(_servers.items()):
            alive = s.alive()
            s.stop()
            if tap.failed:
                tap.diag("---- server %r log (%s), alive at end: %s ----" % (kind, " ".join(s.args), alive))
                log = s.log_text()
                if len(log) > 6000:
                    log = "[... %d bytes cut ...]\n" % (len(log) - 6000) + log[-6000:]
                tap.diag(log)
            s.cleanup_log()
        if _tmpdir is not None:
            shutil.rmtree(_tmpdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
