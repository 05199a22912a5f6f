#!/usr/bin/env python3
"""Limits against abuse (docs/limits.md, RFC 8656 section 7.2) against the real
turnstone server ($TURNSTONE_BIN) on loopback: user-quota and total-quota
(486) across two workers, max-permissions / max-channels (508), the per-IP
caps on Allocates and 401 answers (with 20,000 distinct sources that must not
grow the server's memory), max-bps and bps-capacity, and EVEN-PORT
reservations expiring on their timer.  Speaks TAP.

Network rule: every datagram goes to 127.0.0.0/8.  Distinct sources are
client sockets bound to 127.x.y.z, which loopback accepts.
"""

import os
import socket
import struct
import sys
import threading
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()
USERS = (("alice", "secret"), ("bob", "pw2"), ("carol", "pw3"))


class server:
    """A server for one case; its log goes to TAP diagnostics if the case fails."""

    def __init__(self, extra, **kw):
        kw.setdefault("users", USERS)
        self.s = tc.Server(extra=extra, **kw)

    def __enter__(self):
        return self.s.start()

    def __exit__(self, etype, e, tb):
        alive = self.s.alive()
        rc = self.s.stop()
        report = self.s.sanitizer_report()
        if etype is None and (not alive or rc not in (0, -15) or report):
            etype = AssertionError
            e = AssertionError("server alive at end: %s, exit status %s, sanitizer report: %s"
                               % (alive, rc, "\n".join(report[:20]) or "none"))
        if etype is not None:
            log = self.s.log_text()
            if len(log) > 6000:
                log = "[... %d bytes cut ...]\n" % (len(log) - 6000) + log[-6000:]
            tap.diag("---- server log (%s), alive at end: %s ----\n%s" % (" ".join(self.s.args), alive, log))
        self.s.cleanup_log()
        if e is not None and tb is None:
            raise e
        return False


def sanitized(srv):
    """True when the server runs with AddressSanitizer (its RSS then holds
    ASan's quarantine of freed memory, so it says nothing about ours)."""
    with open("/proc/%d/maps" % srv.proc.pid) as f:
        return "libasan" in f.read()


def alloc_code(c, **kw):
    """Allocate; 200 on success, else the error code."""
    r = c.allocate(**kw)
    return 200 if r.is_success() else r.error_code()


def peer_socket(ip="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


# ---------------------------------------------------------------- quotas

@tap.case("user-quota and total-quota hold across two workers (486), slots come back on Refresh 0 and TCP close")
def test_quota():
    uq, tq = 10, 14
    with server(["--user-quota=%d" % uq, "--total-quota=%d" % tq, "--relay-threads=2", "--verbose"]) as srv:
        alice = [srv.client("alice") for _ in range(16)]
        codes = [alloc_code(c) for c in alice]
        check_eq(codes.count(200), uq, "alice's allocations (user-quota)")
        check_eq(codes.count(486), 16 - uq, "alice's 486 answers")
        bob = [srv.client("bob") for _ in range(8)]
        codes = [alloc_code(c) for c in bob]
        check_eq(codes.count(200), tq - uq, "bob's allocations (total-quota)")
        check_eq(codes.count(486), 8 - (tq - uq), "bob's 486 answers")
        with srv.client("carol") as c:
            check_eq(alloc_code(c), 486, "carol at the total quota")
        # Refresh 0 gives the slot back.
        ok_alice = [c for c in alice if c.relayed is not None]
        check(ok_alice[0].refresh(0).is_success(), "Refresh 0")
        with srv.client("carol") as c:
            check_eq(alloc_code(c), 200, "carol after one allocation ended")
        with srv.client("bob") as c:
            check_eq(alloc_code(c), 486, "bob at the total quota again")
        # A TCP connection's allocation counts, and closing it frees the slot.
        check(ok_alice[1].refresh(0).is_success(), "Refresh 0")
        srv.wait_stream_ready()
        sc = srv.stream_client("alice")
        check_eq(alloc_code(sc), 200, "alice over TCP")
        with srv.client("alice") as c:
            check_eq(alloc_code(c), 486, "alice at her quota with the TCP allocation")
        sc.close()
        deadline, code = time.monotonic() + 5, None
        while time.monotonic() < deadline:
            c = srv.client("alice")
            code = alloc_code(c)
            if code == 200:
                break
            c.close()
            time.sleep(0.2)
        check_eq(code, 200, "alice after closing the TCP connection")
        # Both workers held some of the allocations: each logs the ones it frees.
        for c in alice + bob:
            if c.relayed is not None:
                c.refresh(0)
        time.sleep(0.3)
        log = srv.log_text()
        workers = {w for w in ("worker 0: allocation", "worker 1: allocation") if w in log}
        check_eq(len(workers), 2, "workers that freed allocations (both should have had some)")
        for c in alice + bob:
            c.close()


@tap.case("user-quota: an expired allocation gives its slot back")
def test_quota_expiry():
    with server(["--user-quota=1", "--default-allocate-lifetime=2", "--max-allocate-lifetime=2"]) as srv:
        a, b, c = srv.client("alice"), srv.client("alice"), srv.client("alice")
        check_eq(alloc_code(a), 200, "first allocation")
        check_eq(alloc_code(b), 486, "second allocation")
        time.sleep(3.5)
        check_eq(alloc_code(c), 200, "after the first one expired")
        for x in (a, b, c):
            x.close()


# ---------------------------------------------------------------- perms and channels

@tap.case("max-permissions (default 64): the 65th permission gives 508, all or nothing")
def test_max_permissions():
    with server([], allow_loopback=True) as srv:
        with srv.client() as c:
            check_eq(alloc_code(c), 200, "allocate")
            peers = [("127.0.9.%d" % i, 5000) for i in range(1, 70)]
            for i in range(0, 56, 8):
                r = c.create_permission(*peers[i:i + 8])
                check(r.is_success(), "permissions %d..%d: %r" % (i, i + 7, r))
            for i in range(56, 63):
                check(c.create_permission(peers[i]).is_success(), "permission %d" % i)
            # 63 installed: two new ones do not fit, and neither is installed
            r = c.create_permission(peers[63], peers[64])
            check_eq(r.error_code(), 508, "two new permissions with one slot left")
            check(c.create_permission(peers[63]).is_success(), "the 64th")
            r = c.create_permission(peers[64])
            check_eq(r.error_code(), 508, "the 65th permission")
            # refreshing one that exists still works at the cap
            check(c.create_permission(peers[0]).is_success(), "refresh at the cap")


@tap.case("max-permissions=3 and max-channels=2: the next one gives 508")
def test_small_caps():
    with server(["--max-permissions=3", "--max-channels=2"], allow_loopback=True) as srv:
        with srv.client() as c:
            check_eq(alloc_code(c), 200, "allocate")
            check(c.channel_bind(0x4000, ("127.0.9.1", 5000)).is_success(), "channel 1")
            check(c.channel_bind(0x4001, ("127.0.9.2", 5000)).is_success(), "channel 2")
            check_eq(c.channel_bind(0x4002, ("127.0.9.1", 5001)).error_code(), 508, "channel 3")
            check(c.create_permission(("127.0.9.3", 1)).is_success(), "permission 3")
            check_eq(c.create_permission(("127.0.9.4", 1)).error_code(), 508, "permission 4")
            # rebinding a bound channel (refresh) is fine at the cap
            check(c.channel_bind(0x4000, ("127.0.9.1", 5000)).is_success(), "channel refresh")


# ---------------------------------------------------------------- per-IP rates

def unauth_allocate(sock, server_addr):
    raw, tid = tc.build(tc.ALLOCATE, tc.REQUEST, [tc.Attr.requested_transport()])
    sock.sendto(raw, server_addr)
    return tid


def count_answers(sock, timeout):
    n = 0
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return n
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            return n
        if tc.is_stun(data):
            n += 1


@tap.case("unauthorized-rate-per-ip: one source is capped while another is served; "
          "20,000 sources do not grow the server's memory")
def test_unauth_rate():
    cap = 5
    with server(["--unauthorized-rate-per-ip=%d" % cap, "--allocate-rate-per-ip=100"]) as srv:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.7.1", 0))
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.bind(("127.0.7.2", 0))
        for _ in range(40):
            unauth_allocate(a, srv.addr)
        unauth_allocate(b, srv.addr)
        got_a = count_answers(a, 1.0)
        got_b = count_answers(b, 0.2)
        tap.diag("flooding source got %d of 40 answers (cap %d/s)" % (got_a, cap))
        # the 40 requests may straddle a second boundary: at most two windows
        check(cap <= got_a <= 2 * cap, "401 answers to one source: %d, want %d..%d" % (got_a, cap, 2 * cap))
        check_eq(got_b, 1, "401 answers to another source")
        a.close()
        b.close()

        # 20,000 distinct sources, one unauthenticated Allocate each; every
        # 500th waits for its answer, to show the spray reaches the server.
        sampled = [0, 0]

        def spray(first, count):
            for i in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind(("127.10.%d.%d" % (i // 250, 1 + i % 250), 0))
                    unauth_allocate(s, srv.addr)
                    if i % 500 == 0:
                        sampled[0] += 1
                        sampled[1] += count_answers(s, 0.3) > 0
                finally:
                    s.close()

        spray(0, 2000)  # warm up every code path first
        time.sleep(0.5)
        before = srv.rss_kib()
        spray(2000, 20000)
        time.sleep(0.5)
        after = srv.rss_kib()
        tap.diag("server VmRSS %d KiB before, %d KiB after 20,000 sources; %d of %d sampled sources answered"
                 % (before, after, sampled[1], sampled[0]))
        check(sampled[1] >= sampled[0] * 0.8, "sampled sources answered: %d of %d" % (sampled[1], sampled[0]))
        if sanitized(srv):
            tap.diag("AddressSanitizer build: RSS growth not checked")
        else:
            check(after - before < 512, "RSS grew by %d KiB" % (after - before))
        # and a new source is still answered
        with srv.client("alice", local_ip="127.0.7.3") as c:
            check_eq(c.probe_401().error_code(), 401, "401 to a fresh source after the spray")
        check(srv.alive(), "server alive")


@tap.case("unauthorized-rate-per-ip holds for an IPv6 source (::1)")
def test_unauth_rate_v6():
    cap = 3
    with server(["--unauthorized-rate-per-ip=%d" % cap], ipv6=True) as srv:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        for _ in range(30):
            unauth_allocate(s, ("::1", srv.port))
        got = count_answers(s, 1.0)
        tap.diag("IPv6 source got %d of 30 answers (cap %d/s)" % (got, cap))
        check(cap <= got <= 2 * cap, "401 answers to ::1: %d" % got)
        s.close()


@tap.case("allocate-rate-per-ip: Allocates over the cap are dropped silently; another source is served")
def test_alloc_rate():
    cap = 3
    with server(["--allocate-rate-per-ip=%d" % cap]) as srv:
        first = srv.client("alice", local_ip="127.0.8.1")
        check_eq(first.probe_401().error_code(), 401, "401 probe")
        clients = [srv.client("alice", local_ip="127.0.8.1") for _ in range(8)]
        tids = []
        for c in clients:
            c.realm, c.nonce, c.key = first.realm, first.nonce, first.key
            raw, tid = tc.build(tc.ALLOCATE, tc.REQUEST,
                                [tc.Attr.requested_transport(), tc.Attr.username("alice"),
                                 tc.Attr.realm(c.realm), tc.Attr.nonce(c.nonce)], key=c.key)
            tids.append(tid)
            c.sendraw(raw)
        ok = 0
        for c, tid in zip(clients, tids):
            raw = c.recvraw(0.7)
            if raw is not None:
                m = tc.parse(raw)
                check_eq(m.tid, tid, "answer's transaction")
                check(m.is_success(), "answered Allocate is a success: %r" % m)
                ok += 1
        tap.diag("%d of 8 Allocates from one source answered (cap %d/s)" % (ok, cap))
        check(cap <= ok <= 2 * cap, "allocations from one source in a burst: %d" % ok)
        with srv.client("alice", local_ip="127.0.8.2") as other:
            check_eq(alloc_code(other), 200, "another source")
        for c in clients + [first]:
            c.close()


# ---------------------------------------------------------------- bandwidth

class Counter(threading.Thread):
    """Counts payload bytes arriving on a TurnClient (Data/ChannelData) or a peer socket."""

    def __init__(self, client=None, sock=None):
        super().__init__(daemon=True)
        self.client, self.sock = client, sock
        self.bytes = 0
        self.stop = False

    def run(self):
        while not self.stop:
            if self.client is not None:
                d = self.client.recv_data(timeout=0.2)
                if d is not None:
                    self.bytes += len(d[2])
            else:
                self.sock.settimeout(0.2)
                try:
                    data, _ = self.sock.recvfrom(65535)
                    self.bytes += len(data)
                except socket.timeout:
                    pass


def blast(send, rate, seconds, size=1000):
    """Calls send(payload) to offer about rate bytes/s for seconds; returns
    (bytes offered, seconds it took)."""
    payload = b"x" * size
    t0 = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        want = int((now - t0) * rate)
        while sent < want:
            send(payload)
            sent += size
        time.sleep(0.005)
    return sent, time.monotonic() - t0


def relay_pair(srv, peer_ip):
    c = srv.client("alice")
    check_eq(alloc_code(c), 200, "allocate")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    p = peer_socket(peer_ip)
    check(c.create_permission(p.getsockname()).is_success(), "permission")
    return c, p


@tap.case("max-bps: what arrives is about rate x time + burst, each direction; another allocation is not affected")
def test_max_bps():
    rate = 20000
    with server(["--max-bps=%d" % rate], allow_loopback=True) as srv:
        a, pa = relay_pair(srv, "127.0.0.1")
        b, pb = relay_pair(srv, "127.0.0.1")
        ca, cb = Counter(client=a), Counter(client=b)
        ca.start()
        cb.start()
        # peer -> client: 5x the rate to a, half the rate to b, at the same time
        res = {}
        tb = threading.Thread(target=lambda: res.update(b=blast(lambda d: pb.sendto(d, b.relayed), rate // 2, 3)))
        tb.start()
        sent_a, secs = blast(lambda d: pa.sendto(d, a.relayed), rate * 5, 3)
        tb.join()
        time.sleep(0.5)
        ca.stop = cb.stop = True
        ca.join()
        cb.join()
        sent_b = res["b"][0]
        tap.diag("to client: a offered %d, got %d in %.1fs; b offered %d, got %d"
                 % (sent_a, ca.bytes, secs, sent_b, cb.bytes))
        top = rate * (secs + 0.5) * 1.2 + rate + 1000
        check(ca.bytes <= top, "a got %d bytes, more than %d" % (ca.bytes, top))
        check(ca.bytes >= rate * secs * 0.5, "a got only %d bytes" % ca.bytes)
        check(cb.bytes >= sent_b * 0.9, "b got %d of %d bytes" % (cb.bytes, sent_b))
        # client -> peer over a channel
        check(a.channel_bind(0x4000, pa.getsockname()).is_success(), "channel")
        cp = Counter(sock=pa)
        cp.start()
        sent, secs = blast(lambda d: a.send_channel(0x4000, d), rate * 5, 2)
        time.sleep(0.5)
        cp.stop = True
        cp.join()
        tap.diag("to peer: offered %d, got %d in %.1fs" % (sent, cp.bytes, secs))
        top = rate * (secs + 0.5) * 1.2 + rate + 1000
        check(cp.bytes <= top, "peer got %d bytes, more than %d" % (cp.bytes, top))
        check(cp.bytes >= rate * secs * 0.5, "peer got only %d bytes" % cp.bytes)
        for x in (a, b, pa, pb):
            x.close()


@tap.case("max-bps holds for a TCP client too, both directions")
def test_max_bps_tcp():
    rate = 20000
    with server(["--max-bps=%d" % rate], allow_loopback=True) as srv:
        srv.wait_stream_ready()
        c = srv.stream_client("alice")
        check_eq(alloc_code(c), 200, "allocate over TCP")
        p = peer_socket()
        check(c.channel_bind(0x4000, p.getsockname()).is_success(), "channel")
        cc = Counter(client=c)
        cc.start()
        sent, secs = blast(lambda d: p.sendto(d, c.relayed), rate * 5, 2)
        time.sleep(0.5)
        cc.stop = True
        cc.join()
        top = rate * (secs + 0.5) * 1.2 + rate + 1000
        tap.diag("to TCP client: offered %d, got %d in %.1fs" % (sent, cc.bytes, secs))
        check(rate * secs * 0.5 <= cc.bytes <= top, "TCP client got %d bytes, want %d..%d"
              % (cc.bytes, rate * secs * 0.5, top))
        cp = Counter(sock=p)
        cp.start()
        sent, secs = blast(lambda d: c.send_channel(0x4000, d), rate * 5, 2)
        time.sleep(0.5)
        cp.stop = True
        cp.join()
        top = rate * (secs + 0.5) * 1.2 + rate + 1000
        tap.diag("from TCP client: offered %d, peer got %d in %.1fs" % (sent, cp.bytes, secs))
        check(rate * secs * 0.5 <= cp.bytes <= top, "peer got %d bytes, want %d..%d"
              % (cp.bytes, rate * secs * 0.5, top))
        c.close()
        p.close()


@tap.case("bps-capacity: the whole server's relayed bytes stay about capacity x time + burst")
def test_bps_capacity():
    cap = 30000
    with server(["--bps-capacity=%d" % cap, "--relay-threads=1"], allow_loopback=True) as srv:
        a, pa = relay_pair(srv, "127.0.0.1")
        b, pb = relay_pair(srv, "127.0.0.1")
        ca, cb = Counter(client=a), Counter(client=b)
        ca.start()
        cb.start()
        tb = threading.Thread(target=lambda: blast(lambda d: pb.sendto(d, b.relayed), cap * 2, 3))
        tb.start()
        sent, secs = blast(lambda d: pa.sendto(d, a.relayed), cap * 2, 3)
        tb.join()
        time.sleep(0.5)
        ca.stop = cb.stop = True
        ca.join()
        cb.join()
        total = ca.bytes + cb.bytes
        tap.diag("offered about %d, got %d + %d in %.1fs" % (2 * sent, ca.bytes, cb.bytes, secs))
        top = cap * (secs + 0.5) * 1.2 + cap + 2000
        check(total <= top, "got %d bytes in total, more than %d" % (total, top))
        check(total >= cap * secs * 0.5, "got only %d bytes" % total)
        for x in (a, b, pa, pb):
            x.close()


# ---------------------------------------------------------------- reservations

def udp_port_busy(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


@tap.case("EVEN-PORT reservation expires on its timer (reservation-lifetime) without any other reservation")
def test_reservation_timer():
    with server(["--reservation-lifetime=3"]) as srv:
        with srv.client() as c:
            r = c.allocate(extra=[tc.Attr.raw(tc.EVEN_PORT, b"\x80")])
            check(r.is_success(), "Allocate with EVEN-PORT R: %r" % r)
            token = r.get(tc.RESERVATION_TOKEN)
            check(token is not None and len(token) == 8, "RESERVATION-TOKEN")
            port = c.relayed[1]
            check_eq(port % 2, 0, "relayed port is even")
            check(udp_port_busy(port + 1), "port + 1 is held by the reservation")
            time.sleep(5)
            check(not udp_port_busy(port + 1), "port + 1 is free after the reservation expired")
            with srv.client() as d:
                r = d.allocate(extra=[tc.Attr.raw(tc.RESERVATION_TOKEN, token)])
                check_eq(r.error_code(), 508, "claiming the expired token")


def main():
    return tap.run()


if __name__ == "__main__":
    sys.exit(main())
