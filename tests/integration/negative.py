#!/usr/bin/env python3
"""Protocol-level integration tests (mostly error paths) against the real
turnstone server ($TURNSTONE_BIN) on loopback.  Speaks TAP.

Network rule: every datagram goes to 127.0.0.1.  The peer-policy cases only
send CreatePermission / ChannelBind naming non-loopback peers, never data.
"""

import os
import random
import socket
import struct
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()

# ---------------------------------------------------------------- servers
# Lazily started, shared between cases; all stopped in main()'s finally and
# by turnclient's atexit hook.

_servers = {}
_server_errors = {}


def server(kind):
    if kind in _server_errors:
        raise RuntimeError("server %r failed to start earlier: %s" % (kind, _server_errors[kind]))
    if kind not in _servers:
        opts = {
            "main": dict(allow_loopback=True),
            "noloop": dict(allow_loopback=False),
            "noloop6": dict(allow_loopback=False, ipv6=True),
            "stale": dict(allow_loopback=True, stale_nonce=2),
            "garbage": dict(allow_loopback=True),
            "timers": dict(allow_loopback=True,
                           extra=["--permission-lifetime=2", "--channel-lifetime=2"]),
            "v6": dict(allow_loopback=True, ipv6=True),
            "logflood": dict(allow_loopback=True),
            "expiry": dict(allow_loopback=True,
                           extra=["--default-allocate-lifetime=2", "--max-allocate-lifetime=2"]),
        }[kind]
        s = None
        try:
            s = tc.Server(**opts)
            s.start()
        except Exception as e:
            _server_errors[kind] = str(e).splitlines()[0] if str(e) else repr(e)
            if s is not None:
                s.stop()
                s.cleanup_log()
            tap.diag(str(e))
            raise
        _servers[kind] = s
    return _servers[kind]


def peer_socket(ip="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def recv_from(sock, timeout=2.0):
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(65535)
    except socket.timeout:
        return None, None


def expect_error(resp, code, what):
    check(resp.cls == tc.ERROR, "%s: expected error %d, got %r" % (what, code, resp))
    check_eq(resp.error_code(), code, what + " error code (%r)" % resp)


def expect_success(resp, what):
    check(resp.cls == tc.SUCCESS, "%s: expected success, got %r" % (what, resp))


def expect_error_mi(resp, code, what, key):
    """Error response to an authenticated request (not 400/401/420/438):
    it must carry a valid MESSAGE-INTEGRITY (RFC 8489 section 9.2.4)."""
    expect_error(resp, code, what)
    check(resp.check_integrity(key), "%s: error response lacks a valid MESSAGE-INTEGRITY: %r"
          % (what, resp))


def allocated_client(kind="main", user="alice"):
    srv = server(kind)
    c = srv.client(user)
    r = c.allocate()
    expect_success(r, "Allocate")
    return srv, c


# ---------------------------------------------------------------- Binding

@tap.case("Binding request -> success with XOR-MAPPED-ADDRESS of the client")
def t_binding():
    srv = server("main")
    with srv.client() as c:
        r = c.binding()
        expect_success(r, "Binding")
        check_eq(r.method, tc.BINDING, "method")
        check_eq(r.xor_mapped(), tuple(c.local), "XOR-MAPPED-ADDRESS")


@tap.case("Binding with FINGERPRINT -> response carries a valid FINGERPRINT")
def t_binding_fp():
    srv = server("main")
    with srv.client() as c:
        r = c.binding(fingerprint=True)
        expect_success(r, "Binding")
        check(r.has(tc.FINGERPRINT), "response has no FINGERPRINT: %r" % r)
        check(r.check_fingerprint(), "FINGERPRINT invalid or not last: %r" % r)
        check_eq(r.xor_mapped(), tuple(c.local), "XOR-MAPPED-ADDRESS")


# ---------------------------------------------------------------- auth

@tap.case("Allocate without credentials -> 401 with REALM and NONCE")
def t_alloc_noauth():
    srv = server("main")
    with srv.client() as c:
        r = c.probe_401()
        expect_error(r, 401, "unauthenticated Allocate")
        check_eq(r.realm(), srv.realm, "REALM")
        check(r.nonce(), "no NONCE in 401")
        check(not r.has(tc.XOR_RELAYED_ADDRESS), "401 carries XOR-RELAYED-ADDRESS")
        check(not r.has(tc.MESSAGE_INTEGRITY),
              "401 to a request without credentials carries MESSAGE-INTEGRITY")


@tap.case("Allocate with wrong password -> 401")
def t_alloc_badpw():
    srv = server("main")
    with srv.client("alice", "not-the-secret") as c:
        check_eq(c.probe_401().error_code(), 401, "first contact")
        r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport()])
        expect_error(r, 401, "Allocate with wrong password")
        check(not r.has(tc.XOR_RELAYED_ADDRESS), "error carries XOR-RELAYED-ADDRESS")


@tap.case("Allocate with unknown user -> 401")
def t_alloc_baduser():
    srv = server("main")
    with srv.client("mallory", "secret") as c:
        check_eq(c.probe_401().error_code(), 401, "first contact")
        r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport()])
        expect_error(r, 401, "Allocate with unknown user")


@tap.case("Allocate with correct credentials -> success, relayed in range, LIFETIME 600, valid MI")
def t_alloc_ok():
    srv = server("main")
    with srv.client() as c:
        r = c.allocate()
        expect_success(r, "Allocate")
        relayed = r.xor_relayed()
        check(relayed is not None, "no XOR-RELAYED-ADDRESS")
        check_eq(relayed[0], "127.0.0.1", "relayed IP")
        check(srv.min_port <= relayed[1] <= srv.max_port,
              "relayed port %d outside %d..%d" % (relayed[1], srv.min_port, srv.max_port))
        check_eq(r.xor_mapped(), tuple(c.local), "XOR-MAPPED-ADDRESS")
        check_eq(r.lifetime(), 600, "LIFETIME")
        check(r.has(tc.MESSAGE_INTEGRITY), "success response has no MESSAGE-INTEGRITY")
        check(r.check_integrity(c.key), "response MESSAGE-INTEGRITY does not verify")


@tap.case("Allocate retransmission (same tid, same bytes) -> same success, not 437")
def t_alloc_retrans():
    srv = server("main")
    with srv.client() as c:
        r1 = c.allocate()
        expect_success(r1, "Allocate")
        raw = c.last_alloc_raw
        tid = raw[8:20]
        r2 = c.transact(raw, tid)
        expect_success(r2, "retransmitted Allocate")
        check_eq(r2.xor_relayed(), r1.xor_relayed(), "relayed address of retransmission")
        check(r2.check_integrity(c.key), "retransmission response MI does not verify")


@tap.case("New Allocate (new tid) on an allocated 5-tuple -> 437")
def t_alloc_mismatch():
    srv, c = allocated_client()
    with c:
        r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport()])
        expect_error_mi(r, 437, "second Allocate", c.key)


# ---------------------------------------------------------------- bad requests

@tap.case("Allocate without REQUESTED-TRANSPORT -> 400")
def t_alloc_no_rt():
    srv = server("main")
    with srv.client() as c:
        c.probe_401()
        r, _ = c.request(tc.ALLOCATE, [])
        expect_error(r, 400, "Allocate w/o REQUESTED-TRANSPORT")


@tap.case("Allocate with REQUESTED-TRANSPORT TCP -> 442")
def t_alloc_tcp():
    srv = server("main")
    with srv.client() as c:
        c.probe_401()
        r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport(tc.PROTO_TCP)])
        expect_error(r, 442, "Allocate TCP over UDP")


@tap.case("Allocate with REQUESTED-TRANSPORT 132 (SCTP) -> 442")
def t_alloc_sctp():
    srv = server("main")
    with srv.client() as c:
        c.probe_401()
        r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport(132)])
        expect_error(r, 442, "Allocate SCTP")


@tap.case("Unknown comprehension-required attribute 0x7777 -> 420 + UNKNOWN-ATTRIBUTES")
def t_unknown_attr():
    srv = server("main")
    with srv.client() as c:
        c.probe_401()
        r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport(),
                                       tc.Attr.raw(0x7777, b"abcd")])
        expect_error(r, 420, "Allocate with attribute 0x7777")
        ua = r.unknown_attributes()
        check(ua is not None, "no UNKNOWN-ATTRIBUTES in 420")
        check(0x7777 in ua, "UNKNOWN-ATTRIBUTES %r lacks 0x7777" % ua)


# ---------------------------------------------------------------- refresh

@tap.case("Refresh LIFETIME 0 deletes the allocation (then CreatePermission -> 437)")
def t_refresh_delete():
    srv, c = allocated_client()
    with c:
        peer = ("127.0.0.1", 9)  # no data is ever sent
        expect_success(c.create_permission(peer), "CreatePermission before delete")
        r = c.refresh(0)
        expect_success(r, "Refresh(0)")
        check(r.check_integrity(c.key), "Refresh response MI does not verify")
        r = c.create_permission(peer)
        expect_error(r, 437, "CreatePermission after delete")


@tap.case("Refresh without allocation -> 437")
def t_refresh_noalloc():
    srv = server("main")
    with srv.client() as c:
        c.probe_401()
        r, _ = c.request(tc.REFRESH, [tc.Attr.lifetime(600)])
        expect_error(r, 437, "Refresh without allocation")


@tap.case("Stale nonce (--stale-nonce=2): old nonce after 3 s -> 438 with new NONCE; retry ok")
def t_stale_nonce():
    srv, c = allocated_client("stale")
    with c:
        old = c.nonce
        time.sleep(3)
        r, _ = c.request(tc.REFRESH, [tc.Attr.lifetime(600)])
        expect_error(r, 438, "Refresh with stale nonce")
        check(r.nonce(), "438 without NONCE")
        check(r.nonce() != old, "438 NONCE equals the stale one")
        c.learn_realm_nonce(r)
        r, _ = c.request(tc.REFRESH, [tc.Attr.lifetime(600)])
        expect_success(r, "Refresh with new nonce")
        check(r.check_integrity(c.key), "Refresh response MI does not verify")


# ---------------------------------------------------------------- peer policy
# Server without --allow-loopback-peers.  Only CreatePermission/ChannelBind.

def _policy_client():
    srv, c = allocated_client("noloop")
    return c


@tap.case("No --allow-loopback-peers: CreatePermission 127.0.0.1 -> 403")
def t_policy_loop():
    with _policy_client() as c:
        expect_error(c.create_permission(("127.0.0.1", 40000)), 403, "CreatePermission 127.0.0.1")


@tap.case("CreatePermission 10.0.0.1 -> 403")
def t_policy_private():
    with _policy_client() as c:
        expect_error_mi(c.create_permission(("10.0.0.1", 40000)), 403, "CreatePermission 10.0.0.1",
                        c.key)


@tap.case("IPv6 relay: CreatePermission ::ffff:127.0.0.1, ::127.0.0.1, ::ffff:0:127.0.0.1 -> 403; "
          "with allow-loopback-peers ::ffff:0:127.0.0.1 and the own port as ::ffff:127.0.0.1 -> 403")
def t_policy_mapped():
    # An IPv6 allocation, so the request passes the family check (443) and
    # reaches the peer policy itself.
    fam = tc.Attr.raw(tc.REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", 2))
    srv = server("noloop6")
    with tc.TurnClient(("::1", srv.addr[1]), "alice", "secret") as c:
        expect_success(c.allocate(extra=[fam]), "Allocate IPv6")
        for ip in ("::ffff:127.0.0.1", "::127.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:8.8.8.8"):
            expect_error_mi(c.create_permission((ip, 40000)), 403, "CreatePermission %s" % ip, c.key)
    srv = server("v6")
    with tc.TurnClient(("::1", srv.addr[1]), "alice", "secret") as c:
        expect_success(c.allocate(extra=[fam]), "Allocate IPv6 (allow-loopback-peers)")
        expect_error(c.create_permission(("::ffff:0:127.0.0.1", 40000)), 403,
                     "allow-loopback-peers: CreatePermission ::ffff:0:127.0.0.1")
        expect_error(c.channel_bind(0x4005, ("::ffff:127.0.0.1", srv.addr[1])), 403,
                     "allow-loopback-peers: ChannelBind to the listening port as ::ffff:127.0.0.1")


@tap.case("CreatePermission 169.254.169.254 -> 403")
def t_policy_metadata():
    with _policy_client() as c:
        expect_error(c.create_permission(("169.254.169.254", 80)), 403,
                     "CreatePermission 169.254.169.254")


@tap.case("No --allow-loopback-peers: ChannelBind 127.0.0.1 -> 403")
def t_policy_chan():
    with _policy_client() as c:
        expect_error(c.channel_bind(0x4001, ("127.0.0.1", 40000)), 403, "ChannelBind 127.0.0.1")


# ---------------------------------------------------------------- ChannelBind

@tap.case("ChannelBind channel 0x3FFF -> 400")
def t_chan_low():
    srv, c = allocated_client()
    with c, peer_socket() as p:
        expect_error(c.channel_bind(0x3FFF, p.getsockname()), 400, "ChannelBind 0x3FFF")


@tap.case("ChannelBind channel 0x5000 -> 400")
def t_chan_high():
    srv, c = allocated_client()
    with c, peer_socket() as p:
        expect_error(c.channel_bind(0x5000, p.getsockname()), 400, "ChannelBind 0x5000")


@tap.case("ChannelBind valid -> success; same channel to another peer -> 400")
def t_chan_rebind():
    srv, c = allocated_client()
    with c, peer_socket() as p1, peer_socket() as p2:
        r = c.channel_bind(0x4000, p1.getsockname())
        expect_success(r, "ChannelBind 0x4000")
        check(r.check_integrity(c.key), "ChannelBind response MI does not verify")
        r = c.channel_bind(0x4000, p1.getsockname())
        expect_success(r, "ChannelBind refresh (same channel, same peer)")
        expect_error(c.channel_bind(0x4000, p2.getsockname()), 400,
                     "ChannelBind 0x4000 to a different peer")


# ---------------------------------------------------------------- data path

@tap.case("Data path: Send/Data indications, ChannelData both ways, no delivery without permission")
def t_data_path():
    srv, c = allocated_client()
    # Permissions are per peer IP (not port), so the stranger lives on 127.0.0.2.
    with c, peer_socket() as peer, peer_socket("127.0.0.2") as stranger:
        paddr = peer.getsockname()
        relayed = c.relayed
        expect_success(c.create_permission(paddr), "CreatePermission to own peer")
        # client -> peer via Send indication
        payload = os.urandom(37)
        c.send_indication(paddr, payload)
        data, src = recv_from(peer)
        check(data is not None, "peer received nothing from Send indication")
        check_eq(data, payload, "payload at peer")
        check_eq(tuple(src), tuple(relayed), "source of relayed packet")
        # peer -> client via Data indication
        back = os.urandom(53)
        peer.sendto(back, tuple(relayed))
        got = c.recv_data()
        check(got is not None, "client got no Data indication")
        check_eq(got[0], "ind", "kind of delivery before ChannelBind")
        check_eq(tuple(got[1]), tuple(paddr), "XOR-PEER-ADDRESS of Data indication")
        check_eq(got[2], back, "DATA of Data indication")
        # ChannelBind, then ChannelData both ways
        ch = 0x4123
        expect_success(c.channel_bind(ch, paddr), "ChannelBind")
        cd = os.urandom(41)
        c.send_channel(ch, cd)
        data, src = recv_from(peer)
        check_eq(data, cd, "ChannelData payload at peer")
        check_eq(tuple(src), tuple(relayed), "source of ChannelData-relayed packet")
        back = os.urandom(19)
        peer.sendto(back, tuple(relayed))
        got = c.recv_data()
        check(got is not None, "client got nothing after ChannelBind")
        check_eq(got[:2], ("chan", ch), "delivery kind/channel after ChannelBind")
        check_eq(got[2], back, "ChannelData payload at client")
        # a peer without permission must not reach the client
        stranger.sendto(b"intruder-" + os.urandom(8), tuple(relayed))
        got = c.recv_data(timeout=1.0)
        check(got is None, "packet from unpermitted peer delivered: %r" % (got,))
        # ...while the permitted peer still does (proves the path is alive)
        peer.sendto(b"still-here", tuple(relayed))
        got = c.recv_data()
        check(got is not None and got[2] == b"still-here",
              "permitted peer not delivered after stranger: %r" % (got,))


@tap.case("Timers: an allocation expires after its lifetime, and its relayed port is freed")
def t_alloc_expiry():
    srv, c = allocated_client("expiry")
    with c:
        port = c.relayed[1]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))
            bound = True
        except OSError:
            bound = False
        probe.close()
        check(not bound, "relayed port %d was bindable while allocated" % port)
        time.sleep(3.5)  # lifetime 2 s + the 1 s timer tick
        expect_error(c.create_permission(("127.0.0.1", 9)), 437, "CreatePermission after expiry")
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as e:
            raise AssertionError("relayed port %d still in use after expiry: %s" % (port, e))
        finally:
            probe.close()


@tap.case("Timers: permissions and channels expire (--permission-lifetime=2 --channel-lifetime=2)")
def t_perm_chan_expiry():
    srv, c = allocated_client("timers")
    with c, peer_socket() as peer, peer_socket() as peer2:
        paddr, p2addr = peer.getsockname(), peer2.getsockname()
        expect_success(c.create_permission(paddr), "CreatePermission")
        c.send_indication(paddr, b"before")
        data, _ = recv_from(peer)
        check_eq(data, b"before", "Send indication within the permission lifetime")
        ch = 0x4001
        expect_success(c.channel_bind(ch, p2addr), "ChannelBind")
        c.send_channel(ch, b"chan-before")
        data, _ = recv_from(peer2)
        check_eq(data, b"chan-before", "ChannelData within the channel lifetime")
        time.sleep(3.5)
        c.send_indication(paddr, b"after")
        data, _ = recv_from(peer, timeout=1.0)
        check(data is None, "Send indication relayed after the permission expired: %r" % (data,))
        peer.sendto(b"in-after", tuple(c.relayed))
        got = c.recv_data(timeout=1.0)
        check(got is None, "peer packet delivered after the permission expired: %r" % (got,))
        c.send_channel(ch, b"chan-after")
        data, _ = recv_from(peer2, timeout=1.0)
        check(data is None, "ChannelData relayed after the channel expired: %r" % (data,))


@tap.case("IPv6: client on ::1 allocates an IPv6 relay (REQUESTED-ADDRESS-FAMILY) and relays to a ::1 peer")
def t_ipv6():
    srv = server("v6")
    fam = tc.Attr.raw(tc.REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", 2))
    with tc.TurnClient(("::1", srv.addr[1]), "alice", "secret") as c, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as peer:
        peer.bind(("::1", 0))
        r = c.allocate(extra=[fam])
        expect_success(r, "Allocate over IPv6 with REQUESTED-ADDRESS-FAMILY IPv6")
        check_eq(c.relayed[0], "::1", "relayed address family/IP")
        paddr = peer.getsockname()[:2]
        # an IPv4 peer on an IPv6 allocation: 443 (RFC 8656 §9)
        expect_error(c.create_permission(("127.0.0.1", 9)), 443, "CreatePermission to an IPv4 peer")
        expect_success(c.create_permission(paddr), "CreatePermission to [::1]")
        c.send_indication(paddr, b"over-v6")
        peer.settimeout(2.0)
        data, src = peer.recvfrom(2048)
        check_eq(data, b"over-v6", "payload at the IPv6 peer")
        check_eq(src[1], c.relayed[1], "source port of the relayed packet")
        peer.sendto(b"back-v6", (c.relayed[0], c.relayed[1]))
        got = c.recv_data()
        check(got is not None and got[2] == b"back-v6", "Data indication from the IPv6 peer: %r" % (got,))
        # the default family is IPv4, even for a client that came over IPv6
        with tc.TurnClient(("::1", srv.addr[1]), "alice", "secret") as c4:
            expect_success(c4.allocate(), "Allocate over IPv6 without REQUESTED-ADDRESS-FAMILY")
            check_eq(c4.relayed[0], "127.0.0.1", "default relayed family is IPv4")


@tap.case("A flood of wrong-password requests is answered 401 but logged at most 20 lines/s per worker")
def t_log_flood():
    srv = server("logflood")
    with srv.client("alice", "wrong") as c:
        expect_error(c.probe_401(), 401, "unauthenticated Allocate")
        c.key = tc.long_term_key("alice", c.realm, "wrong")
        t0 = time.monotonic()
        for i in range(300):
            r, _ = c.request(tc.ALLOCATE, [tc.Attr.requested_transport()])
            check(r.cls == tc.ERROR and r.error_code() == 401, "request %d: expected 401, got %r" % (i, r))
        secs = time.monotonic() - t0
    with srv.client("alice") as ok:
        expect_success(ok.allocate(), "Allocate with the right password after the flood")
    # The worker's 1 s tick reports the suppressed lines once a new second
    # starts: up to about 2 s after the flood on a busy machine.
    end = time.monotonic() + 4.0
    text = srv.log_text()
    while "suppressed" not in text and time.monotonic() < end:
        time.sleep(0.1)
        text = srv.log_text()
    failed = text.count("authentication failed")
    tap.diag("300 bad requests in %.2f s: %d 'authentication failed' lines" % (secs, failed))
    # 2 workers x 20 lines per started second
    check(0 < failed <= 40 * (int(secs) + 2), "too many auth failure lines: %d in %.2f s" % (failed, secs))
    check("suppressed" in text, "no line reports the suppressed log lines")


@tap.case("Two client ports -> two independent allocations with different relayed ports")
def t_two_allocs():
    srv = server("main")
    with srv.client("alice") as a, srv.client("bob") as b, peer_socket() as peer:
        expect_success(a.allocate(), "Allocate A")
        expect_success(b.allocate(), "Allocate B")
        check(a.relayed != b.relayed, "same relayed address %r" % (a.relayed,))
        for c in (a, b):
            check(srv.min_port <= c.relayed[1] <= srv.max_port, "relayed port out of range")
        paddr = peer.getsockname()
        expect_success(a.create_permission(paddr), "CreatePermission A")
        expect_success(b.create_permission(paddr), "CreatePermission B")
        a.send_indication(paddr, b"from-a")
        d, src = recv_from(peer)
        check_eq((d, tuple(src)), (b"from-a", tuple(a.relayed)), "A's data at peer")
        b.send_indication(paddr, b"from-b")
        d, src = recv_from(peer)
        check_eq((d, tuple(src)), (b"from-b", tuple(b.relayed)), "B's data at peer")
        peer.sendto(b"to-b", tuple(b.relayed))
        got = b.recv_data()
        check(got is not None and got[2] == b"to-b", "B did not get its data: %r" % (got,))
        check(a.recv_data(timeout=0.5) is None, "A received B's data")
        # deleting A leaves B intact
        expect_success(a.refresh(0), "Refresh(0) A")
        expect_success(b.refresh(600), "Refresh B after A deleted")


@tap.case("Send indication to a peer without permission / ChannelData on an unbound channel are not relayed")
def t_no_perm_no_relay():
    srv, c = allocated_client()
    with c, peer_socket() as peer, peer_socket("127.0.0.2") as other:
        paddr, oaddr = peer.getsockname(), other.getsockname()
        expect_success(c.create_permission(paddr), "CreatePermission 127.0.0.1")
        c.send_indication(oaddr, b"no-permission")       # 127.0.0.2: no permission
        c.send_channel(0x4ABC, b"unbound-channel")       # never bound
        d, src = recv_from(other, 0.7)
        check(d is None, "peer without permission received %r" % (d,))
        d, src = recv_from(peer, 0.3)
        check(d is None, "ChannelData on an unbound channel was relayed: %r" % (d,))
        c.send_indication(paddr, b"with-permission")
        d, src = recv_from(peer)
        check_eq(d, b"with-permission", "permitted Send indication (control)")


@tap.case("ChannelBind a second channel to an already bound peer -> 400")
def t_chan_second_for_peer():
    srv, c = allocated_client()
    with c, peer_socket() as p:
        expect_success(c.channel_bind(0x4010, p.getsockname()), "ChannelBind 0x4010")
        expect_error(c.channel_bind(0x4011, p.getsockname()), 400,
                     "ChannelBind 0x4011 to the same peer")


@tap.case("Refresh with huge LIFETIME is capped (<= 3600 by default)")
def t_refresh_cap():
    srv, c = allocated_client()
    with c:
        r = c.refresh(0x7FFFFFFF)
        expect_success(r, "Refresh(huge)")
        lt = r.lifetime()
        check(lt is not None and 0 < lt <= 3600, "granted LIFETIME %r not in 1..3600" % lt)


@tap.case("Refresh by another user on alice's allocation -> 441")
def t_wrong_user():
    srv, c = allocated_client(user="alice")
    with c:
        bob_key = tc.long_term_key("bob", c.realm, "pw2")
        r, _ = c.request(tc.REFRESH, [tc.Attr.lifetime(600)], key=bob_key, username="bob")
        expect_error(r, 441, "Refresh as bob on alice's allocation")
        expect_success(c.refresh(600), "Refresh as alice still works")


# ---------------------------------------------------------------- garbage

def _garbage_datagrams(rng):
    valid_bind, _ = tc.build(tc.BINDING, tc.REQUEST, fingerprint=True)
    valid_alloc, _ = tc.build(tc.ALLOCATE, tc.REQUEST,
                              [tc.Attr.requested_transport(), tc.Attr.username("alice"),
                               tc.Attr.realm("x"), tc.Attr.nonce("y")],
                              key=b"k" * 16, fingerprint=True)
    out = []
    for i in range(200):
        out.append(os.urandom(rng.randint(0, 600)))
    for base in (valid_bind, valid_alloc):
        for n in range(len(base)):
            out.append(base[:n])                      # every truncation
        for _ in range(100):                          # random bit flips
            b = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            out.append(bytes(b))
    hdr = struct.pack("!HHI", 0x0001, 0, tc.MAGIC)
    # lying length fields, attribute length overruns, huge attribute lengths
    out.append(struct.pack("!HHI", 0x0001, 0xFFFC, tc.MAGIC) + os.urandom(12))
    out.append(struct.pack("!HHI", 0x0003, 8, tc.MAGIC) + os.urandom(12) +
               struct.pack("!HH", 0x0019, 0xFFFF) + b"\x11\0\0\0")
    out.append(struct.pack("!HHI", 0x0003, 4, tc.MAGIC) + os.urandom(12) +
               struct.pack("!HH", 0x0006, 0))
    out.append(hdr + os.urandom(12) + b"\0")
    # ChannelData-looking garbage with bad lengths
    out.append(struct.pack("!HH", 0x4000, 0xFFFF) + b"x")
    out.append(struct.pack("!HH", 0x7FFF, 3))
    out.append(struct.pack("!HH", 0x4001, 0))
    return out


@tap.case("Garbage: random/truncated/mutated datagrams -> server alive and still answers Binding")
def t_garbage():
    srv = server("garbage")
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    tap.diag("garbage seed %d" % seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        pkts = _garbage_datagrams(rng)
        for i, p in enumerate(pkts):
            s.sendto(p, srv.addr)
            if i % 50 == 0:
                time.sleep(0.005)
        # also garbage on an allocated 5-tuple
        _, c = allocated_client("garbage")
        with c:
            for p in pkts[:300]:
                c.sendraw(p)
            time.sleep(0.3)
            check(srv.alive(), "server process died")
            r = c.refresh(600)
            expect_success(r, "Refresh on allocated 5-tuple after garbage")
        with srv.client() as c2:
            r = c2.binding()
            expect_success(r, "Binding after garbage")
            check_eq(r.xor_mapped(), tuple(c2.local), "XOR-MAPPED-ADDRESS after garbage")
        check(srv.alive(), "server process died")
    finally:
        s.close()


# ---------------------------------------------------------------- shutdown
# Must stay the last case: it stops every server started above.

@tap.case("All servers still alive, exit cleanly on SIGTERM (status 0 or SIGTERM), no sanitizer report")
def t_shutdown():
    check(_servers or _server_errors, "no server was started")
    problems = []
    for kind, s in _servers.items():
        if not s.alive():
            problems.append("%s: server died during the tests (status %s)" % (kind, s.proc.returncode))
            continue
        rc = s.stop()
        if s.needed_kill:
            problems.append("%s: did not exit within 5 s of SIGTERM" % kind)
        elif rc not in (0, -15):
            problems.append("%s: exit status %s after SIGTERM" % (kind, rc))
        rep = s.sanitizer_report()
        if rep:
            problems.append("%s: sanitizer report:\n  %s" % (kind, "\n  ".join(rep[:20])))
    check(not problems, "\n".join(problems))


# ---------------------------------------------------------------- main

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
                if len(log) > 8000:
                    log = "[... %d bytes cut ...]\n" % (len(log) - 8000) + log[-8000:]
                tap.diag(log)
            s.cleanup_log()
    return rc


if __name__ == "__main__":
    sys.exit(main())
