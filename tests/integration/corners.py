#!/usr/bin/env python3
"""Protocol corners of RFC 8656 (issue 12) against the real turnstone server
($TURNSTONE_BIN) on loopback.  Speaks TAP.

- peer data and client ChannelData need a live permission even while a
  channel is bound (section 9, 12): a channel outlives its permission;
- CreatePermission with several peers installs all or none (section 9.2);
- a peer datagram too large for a Data indication / ChannelData on the
  client's transport is dropped and counted, never sent with a wrapped length;
- the relay never sends to the server's own listening ports (a TURN loop
  through the server itself), even with allow-loopback-peers;
- dual allocation (ADDITIONAL-ADDRESS-FAMILY, section 7.2): an IPv4 and an
  IPv6 relayed address under one allocation, ADDRESS-ERROR-CODE when the
  IPv6 one fails, Refresh with REQUESTED-ADDRESS-FAMILY deleting one family.

Network rule: every datagram goes to 127.0.0.1 or ::1.
"""

import os
import socket
import struct
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
_servers = {}


def server(kind):
    if kind not in _servers:
        if kind == "admin6":
            s = ah.admin_server(allow_loopback=True, ipv6=True)
        elif kind in ("v6", "v6quota"):
            s = tc.Server(allow_loopback=True, ipv6=True,
                          extra=["--user-quota=1"] if kind == "v6quota" else [])
        else:
            s = tc.Server(**{
                "main": dict(allow_loopback=True),
                # a permission (2 s) that expires while its channel (600 s) lives on
                "permexp": dict(allow_loopback=True, extra=["--permission-lifetime=2"]),
            }[kind])
        _servers[kind] = s
        s.start()
        if kind == "admin6":
            ah.wait_admin(s.admin_port)
    return _servers[kind]


def peer_socket(ip="127.0.0.1"):
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def recv_from(sock, timeout=2.0):
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(65535)
    except socket.timeout:
        return None, None


def expect_success(resp, what):
    check(resp.cls == tc.SUCCESS, "%s: expected success, got %r" % (what, resp))


def expect_error(resp, code, what):
    check(resp.cls == tc.ERROR and resp.error_code() == code,
          "%s: expected error %d, got %r" % (what, code, resp))


def v6_family():
    return tc.Attr.raw(tc.REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", 2))


def refused(s, reason):
    m, _, _ = ah.scrape(s.admin_port)
    return m.get('turnstone_refused_total{reason="%s"}' % reason, 0)


def recv_all(sock, most, timeout):
    """Datagrams on sock until none comes within timeout s, at most most."""
    got = []
    while len(got) < most:
        data, _ = recv_from(sock, timeout=timeout)
        if data is None:
            break
        got.append(data)
    return got


def recv_chan_all(c, ch, most, timeout):
    """Payloads of the ChannelData on channel ch that c receives until none
    comes within timeout s, at most most; anything else fails the case."""
    got = []
    while len(got) < most:
        r = c.recv_data(timeout=timeout)
        if r is None:
            break
        check(r[:2] == ("chan", ch), "peer data as ChannelData on channel 0x%04x: %r" % (ch, r[:2]))
        got.append(r[2])
    return got


# ------------------------------------------------------------ batching

@tap.case("One receive batch: ChannelData and Send indications of two clients reach their peers "
          "in order, those before a Refresh(0) in the same batch too, none after it")
def t_batch_then_delete():
    import signal
    srv = server("main")
    with srv.client("alice") as c, srv.client("alice") as c2, peer_socket() as pa, peer_socket() as pb:
        expect_success(c.allocate(), "Allocate 1")
        expect_success(c2.allocate(), "Allocate 2")
        ch = 0x4444
        expect_success(c.channel_bind(ch, pa.getsockname()), "ChannelBind 1")
        expect_success(c2.channel_bind(ch, pb.getsockname()), "ChannelBind 2")
        refresh0, tid = tc.build(tc.REFRESH, tc.REQUEST,
                                 [tc.Attr.lifetime(0), tc.Attr.username(c.username), tc.Attr.realm(c.realm),
                                  tc.Attr.nonce(c.nonce)], key=c.key)
        # Stopped, the server finds everything below queued at once: one
        # recvmmsg per listening socket takes it in a single batch.
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            for i in range(10):
                c.send_channel(ch, b"a%d" % i)
                c2.send_channel(ch, b"b%d" % i)
            c.send_indication(pa.getsockname(), b"a-ind")
            c.sendraw(refresh0)
            c.send_channel(ch, b"a-after")
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        got_a = recv_all(pa, 1000, timeout=1.0)
        got_b = recv_all(pb, 10, timeout=2.0)
        check_eq(got_a, [b"a%d" % i for i in range(10)] + [b"a-ind"],
                 "peer 1: everything before the Refresh(0), in order, nothing after")
        check_eq(got_b, [b"b%d" % i for i in range(10)], "peer 2: all, in order")
        resp = c.transact(refresh0, tid)  # the retransmission cache answers again
        expect_success(resp, "Refresh(0) in the batch")


@tap.case("One receive batch of same-size datagrams each way (sent as UDP GSO runs): every datagram "
          "arrives whole, in order, as sent, a shorter one and an oversized one included")
def t_batch_gso_boundaries():
    import signal
    srv = server("main")
    with srv.client("alice") as c, peer_socket() as pa:
        expect_success(c.allocate(), "Allocate")
        ch = 0x4555
        expect_success(c.channel_bind(ch, pa.getsockname()), "ChannelBind")
        # client -> peer: runs of 100-byte datagrams broken by a shorter one,
        # one over the GSO size limit and one of another size
        to_peer = ([b"%03d" % i + b"p" * 97 for i in range(12)] + [b"short"] +
                   [b"%03d" % i + b"q" * 97 for i in range(12, 15)] + [b"L" * 1300] +
                   [b"%03d" % i + b"r" * 57 for i in range(15, 18)])
        # peer -> client: 80-byte datagrams, then a 20-byte one, then 80 again
        to_client = ([b"%03d" % i + b"c" * 77 for i in range(10)] + [b"t" * 20] +
                     [b"%03d" % i + b"d" * 77 for i in range(10, 13)])
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            for d in to_peer:
                c.send_channel(ch, d)
            for d in to_client:
                pa.sendto(d, tuple(c.relayed))
            time.sleep(0.2)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        got_p = recv_all(pa, len(to_peer) + 2, timeout=1.0)
        check_eq(got_p, to_peer, "peer: each datagram whole and in order")
        got_c = recv_chan_all(c, ch, len(to_client) + 2, timeout=1.0)
        check_eq(got_c, to_client, "client: each ChannelData whole and in order")


@tap.case("One loop pass over many ready sockets (datagrams of several relay sockets queued together, "
          "more than one receive batch holds): every datagram reaches its own client or peer, whole, in order")
def t_batch_across_sockets():
    import contextlib
    import signal
    srv = server("main")
    n, per_peer, per_client = 6, 12, 7
    with contextlib.ExitStack() as st:
        cs = [st.enter_context(srv.client("alice")) for _ in range(n)]
        ps = [st.enter_context(peer_socket()) for _ in range(n)]
        ch = 0x4666
        for k in range(n):
            expect_success(cs[k].allocate(), "Allocate %d" % k)
            expect_success(cs[k].channel_bind(ch, ps[k].getsockname()), "ChannelBind %d" % k)
        # sizes differ from datagram to datagram, so one overwritten or
        # swapped receive slot shows as a wrong payload
        to_client = [[b"c%d-%03d-" % (k, i) + bytes([65 + k]) * (20 + 37 * i) for i in range(per_peer)]
                     for k in range(n)]
        to_peer = [[b"p%d-%03d-" % (k, i) + bytes([97 + k]) * (5 + 53 * i) for i in range(per_client)]
                   for k in range(n)]
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            for i in range(per_peer):
                for k in range(n):
                    ps[k].sendto(to_client[k][i], tuple(cs[k].relayed))
            for i in range(per_client):
                for k in range(n):
                    cs[k].send_channel(ch, to_peer[k][i])
                if i == 3:  # a request answered at once, between queued data
                    cs[0].sendraw(tc.build(tc.BINDING, tc.REQUEST, [])[0])
            time.sleep(0.2)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        for k in range(n):
            got = recv_all(ps[k], per_client + 2, timeout=1.0)
            check_eq(got, to_peer[k], "peer %d: its client's datagrams, whole and in order" % k)
        for k in range(n):
            got_c = recv_chan_all(cs[k], ch, per_peer + 2, timeout=1.0)
            check_eq(got_c, to_client[k], "client %d: its peer's datagrams, whole and in order" % k)


# ------------------------------------------------------------ permissions

@tap.case("Channel outlives its permission: peer data and client ChannelData dropped, "
          "ChannelBind refresh restores both")
def t_chan_needs_perm():
    srv = server("permexp")
    with srv.client("alice") as c, peer_socket() as peer:
        expect_success(c.allocate(), "Allocate")
        paddr = peer.getsockname()
        ch = 0x4321
        expect_success(c.channel_bind(ch, paddr), "ChannelBind")
        c.send_channel(ch, b"to-peer-1")
        data, _ = recv_from(peer)
        check_eq(data, b"to-peer-1", "ChannelData within the permission lifetime")
        peer.sendto(b"to-client-1", tuple(c.relayed))
        got = c.recv_data()
        check(got is not None and got[:2] == ("chan", ch) and got[2] == b"to-client-1",
              "peer data as ChannelData within the permission lifetime: %r" % (got,))
        time.sleep(3.5)  # permission 2 s + the 1 s timer; the channel has 600 s
        peer.sendto(b"to-client-late", tuple(c.relayed))
        got = c.recv_data(timeout=1.0)
        check(got is None, "peer data delivered on a channel whose permission expired: %r" % (got,))
        c.send_channel(ch, b"to-peer-late")
        data, _ = recv_from(peer, timeout=1.0)
        check(data is None, "ChannelData relayed after the permission expired: %r" % (data,))
        # refreshing the binding refreshes the permission (section 12.2)
        expect_success(c.channel_bind(ch, paddr), "ChannelBind refresh")
        c.send_channel(ch, b"to-peer-2")
        data, _ = recv_from(peer)
        check_eq(data, b"to-peer-2", "ChannelData after the refresh")
        peer.sendto(b"to-client-2", tuple(c.relayed))
        got = c.recv_data()
        check(got is not None and got[2] == b"to-client-2", "peer data after the refresh: %r" % (got,))


@tap.case("CreatePermission with an allowed and a policy-refused peer -> 403, neither installed")
def t_perm_all_or_none_policy():
    srv = server("main")
    with srv.client("alice") as c, peer_socket() as peer:
        expect_success(c.allocate(), "Allocate")
        paddr = peer.getsockname()
        expect_error(c.create_permission(paddr, ("10.0.0.1", 4000)), 403,
                     "CreatePermission 127.0.0.1 + 10.0.0.1")
        c.send_indication(paddr, b"not-permitted")
        data, _ = recv_from(peer, timeout=1.0)
        check(data is None, "Send relayed to a peer of a refused CreatePermission: %r" % (data,))
        peer.sendto(b"in", tuple(c.relayed))
        got = c.recv_data(timeout=1.0)
        check(got is None, "peer of a refused CreatePermission reached the client: %r" % (got,))
        expect_success(c.create_permission(paddr), "CreatePermission 127.0.0.1 alone (control)")
        c.send_indication(paddr, b"permitted")
        data, _ = recv_from(peer)
        check_eq(data, b"permitted", "Send after the permission (control)")


# ------------------------------------------------------------ sizes

@tap.case("65,527-byte datagram from an IPv6 peer to a TCP client: dropped and counted, stream intact")
def t_too_big_tcp():
    srv = server("admin6")
    before = refused(srv, "too_big")
    with tc.StreamTurnClient(("::1", srv.port), "alice", "secret") as c, peer_socket("::1") as peer:
        expect_success(c.allocate(extra=[v6_family()]), "Allocate IPv6 over TCP")
        paddr = peer.getsockname()[:2]
        expect_success(c.create_permission(paddr), "CreatePermission [::1]")
        relay = (c.relayed[0], c.relayed[1])
        try:
            peer.sendto(b"\x55" * 65527, relay)
        except OSError as e:
            tap.diag("cannot send 65527 bytes over ::1 (%s): size case skipped" % e)
            return
        peer.sendto(b"after-big", relay)
        got = c.recv_data()
        check(got is not None and got[0] == "ind" and got[2] == b"after-big",
              "next delivery after the oversized datagram: %r" % (got if got is None else got[:2],))
        check(refused(srv, "too_big") >= before + 1, "too_big counter did not grow")


@tap.case("65,507-byte datagram to a UDP client as ChannelData (65,511 bytes): dropped and counted")
def t_too_big_udp():
    srv = server("admin6")
    before = refused(srv, "too_big")
    with srv.client("alice") as c, peer_socket() as peer:
        expect_success(c.allocate(), "Allocate")
        paddr = peer.getsockname()
        expect_success(c.channel_bind(0x4001, paddr), "ChannelBind")
        peer.sendto(b"\x66" * 65507, tuple(c.relayed))
        peer.sendto(b"small", tuple(c.relayed))
        got = c.recv_data()
        check(got is not None and got[2] == b"small", "small datagram after the big one: %r"
              % (got if got is None else got[:2],))
        check(refused(srv, "too_big") >= before + 1, "too_big counter did not grow")


# ------------------------------------------------------------ own addresses

@tap.case("allow-loopback-peers: Send/ChannelBind to the server's own listening port refused, "
          "other loopback ports allowed")
def t_own_listening_port():
    srv = server("main")
    with srv.client("alice") as c, peer_socket() as peer:
        expect_success(c.allocate(), "Allocate")
        expect_success(c.create_permission(("127.0.0.1", 0)), "CreatePermission 127.0.0.1")
        own = ("127.0.0.1", srv.port)
        # a Binding request relayed to the listening port would be answered
        # to the relayed address, and come back as a Data indication
        req, _ = tc.build(tc.BINDING, tc.REQUEST)
        c.send_indication(own, req)
        got = c.recv_data(timeout=1.0)
        check(got is None, "Send to the own listening port was relayed: %r" % (got,))
        expect_error(c.channel_bind(0x4002, own), 403, "ChannelBind to the own listening port")
        c.send_indication(peer.getsockname(), b"echo-port")
        data, _ = recv_from(peer)
        check_eq(data, b"echo-port", "Send to another loopback port (control)")


@tap.case("Relay to relay on one server (relay-only calls): allowed")
def t_relay_to_relay():
    srv = server("main")
    with srv.client("alice") as a, srv.client("bob") as b:
        expect_success(a.allocate(), "Allocate A")
        expect_success(b.allocate(), "Allocate B")
        expect_success(a.create_permission(b.relayed), "A: CreatePermission B's relay")
        expect_success(b.create_permission(a.relayed), "B: CreatePermission A's relay")
        expect_success(a.channel_bind(0x4003, b.relayed), "A: ChannelBind to B's relay")
        a.send_channel(0x4003, b"a-to-b")
        got = b.recv_data()
        check(got is not None and got[2] == b"a-to-b", "B got A's data: %r" % (got,))


# ------------------------------------------------------------ dual allocation

ADDITIONAL_ADDRESS_FAMILY = 0x8000
ADDRESS_ERROR_CODE = 0x8001


def additional(fam=2):
    return tc.Attr.raw(ADDITIONAL_ADDRESS_FAMILY, struct.pack("!B3x", fam))


def relayed_all(r):
    return [tc.decode_xor_addr(v, r.tid) for at, v, _ in r.attrs if at == tc.XOR_RELAYED_ADDRESS]


def can_bind6(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s.bind(("::1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@tap.case("Dual allocation: IPv4 and IPv6 relayed addresses, each family relays through its own socket")
def t_dual():
    srv = server("v6")
    with srv.client("alice") as c, peer_socket() as p4, peer_socket("::1") as p6:
        r = c.allocate(extra=[additional()])
        check(r.cls == tc.SUCCESS, "dual Allocate: %r" % r)
        rel = relayed_all(r)
        check_eq([a[0] for a in rel], ["127.0.0.1", "::1"], "XOR-RELAYED-ADDRESS families")
        r4, r6 = rel
        a4, a6 = p4.getsockname(), p6.getsockname()[:2]
        expect_success(c.create_permission(a4, a6), "CreatePermission IPv4 + IPv6 peers")
        c.send_indication(a4, b"to-v4")
        data, src = recv_from(p4)
        check_eq((data, tuple(src)), (b"to-v4", tuple(r4)), "IPv4 peer: payload and source")
        c.send_indication(a6, b"to-v6")
        data, src = recv_from(p6)
        check(data == b"to-v6" and src[:2] == tuple(r6), "IPv6 peer: %r from %r" % (data, src))
        p6.sendto(b"from-v6", r6)
        got = c.recv_data()
        check(got is not None and got[0] == "ind" and got[2] == b"from-v6" and got[1][0] == "::1",
              "Data indication from the IPv6 peer: %r" % (got,))
        expect_success(c.channel_bind(0x4444, a6), "ChannelBind to the IPv6 peer")
        c.send_channel(0x4444, b"chan-v6")
        data, src = recv_from(p6)
        check(data == b"chan-v6" and src[:2] == tuple(r6), "ChannelData to the IPv6 peer: %r" % (data,))
        p6.sendto(b"chan-back", r6)
        got = c.recv_data()
        check(got is not None and got[:2] == ("chan", 0x4444) and got[2] == b"chan-back",
              "ChannelData from the IPv6 peer: %r" % (got,))
        # delete the IPv6 half only (section 7.3)
        fam6 = tc.Attr.raw(tc.REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", 2))
        r = c.auth_request(tc.REFRESH, [tc.Attr.lifetime(0), fam6])[0]
        check(r.cls == tc.SUCCESS, "Refresh(0) IPv6 only: %r" % r)
        check(can_bind6(r6[1]), "IPv6 relayed port still bound after its deletion")
        expect_error(c.create_permission(a6), 443, "CreatePermission IPv6 after the IPv6 half is gone")
        r = c.auth_request(tc.REFRESH, [tc.Attr.lifetime(600), fam6])[0]
        expect_error(r, 443, "Refresh with the deleted family")
        c.send_indication(a4, b"v4-still")
        data, _ = recv_from(p4)
        check_eq(data, b"v4-still", "IPv4 half still relays")
        expect_success(c.refresh(0), "Refresh(0) the rest")


@tap.case("Dual allocation: ADDITIONAL-ADDRESS-FAMILY IPv4, or with REQUESTED-ADDRESS-FAMILY -> 400")
def t_dual_bad():
    srv = server("v6")
    with srv.client("alice") as c:
        expect_error(c.allocate(extra=[additional(1)]), 400, "ADDITIONAL-ADDRESS-FAMILY IPv4")
    with srv.client("alice") as c:
        fam6 = tc.Attr.raw(tc.REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", 2))
        expect_error(c.allocate(extra=[additional(), fam6]), 400, "with REQUESTED-ADDRESS-FAMILY")


@tap.case("Dual allocation on a server without IPv6: IPv4 only, ADDRESS-ERROR-CODE 440 for IPv6")
def t_dual_no_v6():
    srv = server("main")
    with srv.client("alice") as c:
        r = c.allocate(extra=[additional()])
        check(r.cls == tc.SUCCESS, "dual Allocate without IPv6: %r" % r)
        check_eq([a[0] for a in relayed_all(r)], ["127.0.0.1"], "relayed addresses")
        v = r.get(ADDRESS_ERROR_CODE)
        check(v is not None and v[0] == 2 and v[2] * 100 + v[3] == 440,
              "ADDRESS-ERROR-CODE: %r" % (v,))
        expect_success(c.refresh(0), "Refresh(0)")


@tap.case("Dual allocation counts as one allocation for user-quota=1")
def t_dual_quota():
    srv = server("v6quota")
    with srv.client("alice") as c, srv.client("alice") as c2:
        r = c.allocate(extra=[additional()])
        check(r.cls == tc.SUCCESS and len(relayed_all(r)) == 2, "dual Allocate under user-quota=1: %r" % r)
        expect_error(c2.allocate(), 486, "second allocation of the user")
        expect_success(c.refresh(0), "Refresh(0)")
        expect_success(c2.allocate(), "allocation after the dual one ended")


def main():
    try:
        return tap.run()
    finally:
        for s in _servers.values():
            s.stop()
            if tap.failed:
                log = s.log_text()
                tap.diag(log[-6000:])
            s.cleanup_log()


if __name__ == "__main__":
    sys.exit(main())
