#!/usr/bin/env python3
"""Relay addresses as coturn configures them (issue 12), against the real
turnstone ($TURNSTONE_BIN) on loopback. Speaks TAP.

Several relay-ip per family: allocations spread over them, and data relays
from each. Several external-ip PUBLIC/PRIVATE mappings (repeated lines of a
coturn-format file): each relay address is advertised as its own public
address. A bare external-ip covers every relay of its family. 'fingerprint'
adds FINGERPRINT to answers of requests without one. The public addresses
are documentation ranges only written into XOR-RELAYED-ADDRESS: nothing is
sent to them.
"""

import os
import socket
import sys
import tempfile

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()
servers = []
N_ALLOC = 8  # over 2 workers: one of them makes at least 4


def start(extra):
    s = tc.Server(allow_loopback=True, extra=extra)
    servers.append(s)
    return s.start()


def coturn_file(lines):
    f = tempfile.NamedTemporaryFile("w", prefix="turnstone-coturn-", suffix=".conf", delete=False)
    f.write("# coturn's format\n" + "\n".join(lines) + "\n")
    f.close()
    return f.name


def relayed_addresses(s):
    """N_ALLOC allocations; returns (clients, their relayed (ip, port))."""
    clients, got = [], []
    for _ in range(N_ALLOC):
        c = s.client("alice")
        resp = c.allocate()
        check(resp.is_success(), "Allocate: %r" % resp)
        clients.append(c)
        got.append(c.relayed)
    return clients, got


def relays(c, peer):
    """One datagram each way through c's allocation; returns the source
    address the peer saw."""
    check(c.create_permission(peer.getsockname()).is_success(), "CreatePermission")
    c.send_indication(peer.getsockname(), b"to-peer")
    peer.settimeout(2.0)
    data, frm = peer.recvfrom(2048)
    check_eq(data, b"to-peer", "client -> peer")
    peer.sendto(b"to-client", frm)
    got = c.recv_data(timeout=2.0)
    check(got is not None and got[2] == b"to-client", "peer -> client: %r" % (got,))
    return frm


@tap.case("three relay-ip: allocations spread over all three, data relays from each")
def t_spread():
    s = start(["--relay-ip=127.0.0.2", "--relay-ip=127.0.0.3"])
    clients, got = relayed_addresses(s)
    ips = {ip for ip, _ in got}
    check_eq(ips, {"127.0.0.1", "127.0.0.2", "127.0.0.3"}, "relayed addresses %r" % got)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    seen = {relays(c, peer)[0] for c in clients}
    check_eq(seen, ips, "sources the peer saw")
    for c in clients:
        c.close()
    peer.close()


@tap.case("coturn file, two external-ip PUBLIC/PRIVATE lines: each relay advertised as its public address")
def t_mappings():
    path = coturn_file(["relay-ip=127.0.0.2", "relay-ip=127.0.0.3",
                        "external-ip=203.0.113.2/127.0.0.2", "external-ip=203.0.113.3/127.0.0.3"])
    try:
        # Server's own --relay-ip=127.0.0.1 would replace the file's list
        # (the command line wins), so it is dropped
        s = tc.Server(allow_loopback=True, extra=["-c", path])
        s.args = [a for a in s.args if a != "--relay-ip=127.0.0.1"]
        servers.append(s)
        s.start()
        clients, got = relayed_addresses(s)
        check_eq({ip for ip, _ in got}, {"203.0.113.2", "203.0.113.3"}, "advertised %r" % got)
        check(all(s.min_port <= p <= s.max_port for _, p in got), "ports kept: %r" % got)
        for c in clients:
            c.close()
    finally:
        os.unlink(path)


@tap.case("one bare external-ip with two relay-ip: every relay advertised as it")
def t_bare():
    s = start(["--relay-ip=127.0.0.2", "--external-ip=198.51.100.7"])
    clients, got = relayed_addresses(s)
    check_eq({ip for ip, _ in got}, {"198.51.100.7"}, "advertised %r" % got)
    for c in clients:
        c.close()


@tap.case("one external-ip PUBLIC/PRIVATE whose PRIVATE is no relay-ip: still advertised (one mapping)")
def t_lone_mapping():
    s = start(["--relay-ip=127.0.0.2", "--external-ip=192.0.2.50/127.0.0.9"])
    clients, got = relayed_addresses(s)
    check_eq({ip for ip, _ in got}, {"192.0.2.50"}, "advertised %r" % got)
    for c in clients:
        c.close()


@tap.case("fingerprint: FINGERPRINT in the answer to a Binding without one; none without the key")
def t_fingerprint():
    for extra, want in ((["--fingerprint"], True), ([], False)):
        s = start(extra)
        with s.client("alice") as c:
            resp = c.binding(fingerprint=False)
            check(resp.is_success(), "Binding: %r" % resp)
            check_eq(resp.has(tc.FINGERPRINT), want, "FINGERPRINT with %r" % extra)
            if want:
                check(resp.check_fingerprint(), "FINGERPRINT value")
        s.stop()


@tap.case("every server exits 0 on SIGTERM, no sanitizer report")
def t_clean_exit():
    tc.check_clean_exit(servers)


def main():
    return tc.run_with_servers(tap, servers)


if __name__ == "__main__":
    sys.exit(main())
