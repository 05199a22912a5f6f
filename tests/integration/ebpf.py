#!/usr/bin/env python3
"""The ebpf-offload fast path (issue 14, docs/ebpf.md) across a real
interface: the test makes two network namespaces joined by a veth pair, runs
turnstone in one ("server side", the tc program on its veth) and the client
and the peer in the other ("client side"), and checks that

  - peer -> client relaying over a bound channel is identical with and
    without the offload (same bytes, same order, nothing lost), and that the
    offload did relay them (its counter) with the server's counters equal to
    what the client received;
  - a lapsed permission or channel stops the fast path within one second of
    its expiry (the socket path then drops, or sends Data indications);
  - a peer without a permission still gets nothing through;
  - client -> peer the same: identical with and without the offload (from
    the relayed address, counters match, the program relayed them all),
    padded / short / unbound ChannelData left to the socket path, UDP
    checksum 0 from the client, lapsed permission or channel, and a peer
    whose ChannelBind was refused;
  - max-bps and bps-capacity hold in the program in each direction (bytes
    relayed over a 2 s burst <= rate * t + burst + margin), the program's
    drops reach turnstone_refused_total, and max-bps holds in total when
    one allocation's datagrams take both paths (one shared bucket);
  - the once-a-second walk visits only the allocations with channels in
    the maps (turnstone_ebpf_walked_allocations): not a UDP allocation
    without a channel nor a TCP client's, and an allocation leaves it when
    it ends or its last channel lapses;
  - without the capabilities the server logs one line and relays as usual.
  - the socket path's UDP GSO runs across the veth: refused for a path MTU
    below the segment, they go out datagram by datagram, whole and in
    order, and that destination gets no more runs.

Needs root (namespaces, CAP_BPF, CAP_NET_ADMIN): without it every case FAILS.
Network rule: every packet stays inside the two namespaces made here, which
are deleted at the end, even on failure; TS_NS_PREFIX (default tsA) starts
their names.  Speaks TAP.
"""

import ctypes
import os
import shlex
import socket
import struct
import subprocess
import sys
import time
import urllib.request

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()
TAG = "%d" % os.getpid()
PFX = os.environ.get("TS_NS_PREFIX", "tsA")[:3]  # interface names: at most 15 bytes
NS_S, NS_C = PFX + "-ebpf-s" + TAG, PFX + "-ebpf-c" + TAG
IF_S, IF_C = PFX + "-s" + TAG[-6:], PFX + "-c" + TAG[-6:]
NET = "10.231.%d" % (os.getpid() % 250)
SRV_IP, CLI_IP, PEER_IP, STRANGER_IP = NET + ".1", NET + ".2", NET + ".3", NET + ".4"
ADMIN_PORT = 9641
EBPF_P2C = 'turnstone_ebpf_relayed_packets_total{direction="peer_to_client"}'
EBPF_C2P = 'turnstone_ebpf_relayed_packets_total{direction="client_to_peer"}'
WALKED = "turnstone_ebpf_walked_allocations"
CLONE_NEWNET = 0x40000000
_orig_ns = None


def sh(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stdout.strip()))
    return r.stdout


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def net_up():
    """The two namespaces and the veth pair; then this process joins the client side."""
    global _orig_ns
    sh("ip", "netns", "add", NS_S)
    sh("ip", "netns", "add", NS_C)
    sh("ip", "link", "add", IF_S, "netns", NS_S, "type", "veth", "peer", "name", IF_C, "netns", NS_C)
    sh("ip", "-n", NS_S, "addr", "add", SRV_IP + "/24", "dev", IF_S)
    for ip in (CLI_IP, PEER_IP, STRANGER_IP):
        sh("ip", "-n", NS_C, "addr", "add", ip + "/24", "dev", IF_C)
    for ns, dev in ((NS_S, IF_S), (NS_C, IF_C)):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # Full checksums from the peer (no CHECKSUM_PARTIAL, which the program
    # leaves to the socket path), and the client side verifies every UDP
    # checksum in software: a wrong rewrite shows up as a lost datagram.
    sh("ip", "netns", "exec", NS_C, "ethtool", "-K", IF_C, "tx", "off", "rx", "off")
    # bpf_fib_lookup answers only where forwarding is on (docs/ebpf.md)
    sh("ip", "netns", "exec", NS_S, "sysctl", "-q", "-w", "net.ipv4.conf.%s.forwarding=1" % IF_S)
    _orig_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns("/var/run/netns/" + NS_C)


def net_down():
    if _orig_ns is not None:
        ctypes.CDLL(None, use_errno=True).setns(_orig_ns, CLONE_NEWNET)
    for ns in (NS_S, NS_C):
        subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class NsServer(tc.Server):
    """turnstone inside the server namespace, on SRV_IP."""

    def __init__(self, extra):
        super().__init__(allow_loopback=False, extra=extra)
        args = ["ip", "netns", "exec", NS_S]
        for a in self.args:
            if a in ("--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"):
                a = a.replace("127.0.0.1", SRV_IP)
            args.append(a)
        args += ["--relay-threads=1", "--allowed-peer-ip=" + PEER_IP, "--prometheus",
                 "--prometheus-ip=" + SRV_IP, "--prometheus-port=%d" % ADMIN_PORT]
        self.args = args

    @property
    def addr(self):
        return (SRV_IP, self.port)

    def wait_ready(self):
        end = time.monotonic() + self.ready_timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((CLI_IP, 0))
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited early with status %s\n%s"
                                       % (self.proc.returncode, self.log_text()))
                raw, tid = tc.build(tc.BINDING, tc.REQUEST)
                s.sendto(raw, self.addr)
                s.settimeout(0.2)
                try:
                    data, _ = s.recvfrom(2048)
                    if tc.is_stun(data) and data[8:20] == tid:
                        return
                except socket.timeout:
                    pass
        raise RuntimeError("server not ready\n" + self.log_text())


class server:
    """A server for one case; its log goes to TAP diagnostics if the case fails."""

    def __init__(self, extra):
        self.s = NsServer(extra)

    def __enter__(self):
        return self.s.start()

    def __exit__(self, etype, e, tb):
        rc = self.s.stop()
        if etype is None and rc not in (0, -15):
            etype, e = AssertionError, AssertionError("server exit status %s" % rc)
        if etype is not None:
            tap.diag("---- server log (%s) ----\n%s" % (" ".join(self.s.args), self.s.log_text()[-6000:]))
        self.s.cleanup_log()
        if e is not None and tb is None:
            raise e
        return False


def metrics():
    """{name or name{labels}: value} from the server's /metrics."""
    body = urllib.request.urlopen("http://%s:%d/metrics" % (SRV_IP, ADMIN_PORT), timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metric_wait(name, want, timeout=5.0):
    """Polls until metric name equals want (the workers add the kernel's
    counters once a second); returns the last value."""
    end = time.monotonic() + timeout
    while True:
        v = metrics().get(name, 0)
        if v == want or time.monotonic() > end:
            return v
        time.sleep(0.2)


def bound_client(srv, peer):
    c = tc.TurnClient(srv.addr, "alice", "secret", local_ip=CLI_IP)
    check(c.allocate().is_success(), "allocate")
    check(c.create_permission(peer).is_success(), "CreatePermission")
    check(c.channel_bind(0x4000, peer).is_success(), "ChannelBind")
    return c


def payloads(n):
    """n distinct datagrams of varied sizes (odd ones too: checksum words)."""
    return [struct.pack("!I", i) + bytes((i * 7 + j) & 0xFF for j in range((i * 37) % 1200)) for i in range(n)]


def _words(b):
    b += b"\0" * (len(b) % 2)
    return sum(struct.unpack("!%dH" % (len(b) // 2), b))


def _fold(v):
    for _ in range(3):
        v = (v & 0xFFFF) + (v >> 16)
    return v & 0xFFFF


def program_takes(src, dst, datagrams):
    """How many of datagrams (UDP payloads from src to dst, (ip, port)) the
    program can relay: not one whose UDP checksum happens to equal its
    pseudo-header sum, which it takes for CHECKSUM_PARTIAL and leaves to
    the socket path (csum_partial_like in relay.bpf.c; about 1 in 65,536)."""
    n = 0
    for d in datagrams:
        ulen = 8 + len(d)
        pseudo = _words(socket.inet_aton(src[0]) + socket.inet_aton(dst[0])) + 17 + ulen
        check_sum = (~_fold(pseudo + _words(struct.pack("!HHHH", src[1], dst[1], ulen, 0) + d))) & 0xFFFF
        n += _fold(pseudo) != (check_sum or 0xFFFF)
    return n


def relay_burst(c, peer_sock, relay, data, window=8):
    """Sends data from the peer with at most window datagrams in flight;
    returns what the client got as ChannelData, in order."""
    got, sent = [], 0
    while sent < len(data) or len(got) < sent:
        while sent < len(data) and sent - len(got) < window:
            peer_sock.sendto(data[sent], relay)
            sent += 1
        r = c.recv_data(timeout=2.0)
        if r is None:
            break  # lost: the comparison below says what is missing
        check_eq(r[0], "chan", "frame type")
        check_eq(r[1], 0x4000, "channel number")
        got.append(r[2])
    return got


def run_relay(offload):
    extra = ["--ebpf-offload", "--ebpf-interface=" + IF_S] if offload else []
    data = payloads(300)
    with server(extra) as srv:
        if offload:
            check("ebpf-offload: fast path for UDP channels on 1 interface" in srv.log_text(),
                  "offload not attached:\n" + srv.log_text())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                got = relay_burst(c, p, c.relayed, data)
                check_eq(len(got), len(data), "datagrams received")
                check(got == data, "bytes or order differ")
                total = sum(len(d) for d in data)
                name = 'turnstone_relayed_packets_total{direction="peer_to_client"}'
                check_eq(metric_wait(name, len(data)), len(data), name)
                name = 'turnstone_relayed_bytes_total{direction="peer_to_client"}'
                check_eq(metric_wait(name, total), total, name)
                want = program_takes(p.getsockname(), tuple(c.relayed), data) if offload else 0
                check_eq(metric_wait(EBPF_P2C, want), want, "packets relayed by the program")
    return got


@tap.case("relaying is identical with and without ebpf-offload; counters match the client's")
def t_identical():
    check(os.geteuid() == 0, "needs root (namespaces, CAP_BPF, CAP_NET_ADMIN)")
    check(run_relay(False) == run_relay(True), "different datagrams with offload")


def stream_until(c, p, relay, seconds):
    """The peer sends one datagram every 50 ms for seconds; returns
    [(send time, kind)] of what the client received."""
    sent_at, got = {}, []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        d = struct.pack("!I", i) + b"x" * 100
        sent_at[i] = time.monotonic()
        p.sendto(d, relay)
        i += 1
        r = c.recv_data(timeout=0.05)
        while r is not None:
            got.append((sent_at[struct.unpack("!I", r[2][:4])[0]], r[0]))
            r = c.recv_data(timeout=0.001)
    r = c.recv_data(timeout=0.5)
    while r is not None:
        got.append((sent_at[struct.unpack("!I", r[2][:4])[0]], r[0]))
        r = c.recv_data(timeout=0.2)
    return got


@tap.case("a lapsed permission stops the fast path within one second")
def t_perm_expiry():
    check(os.geteuid() == 0, "needs root")
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S, "--permission-lifetime=2"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                t0 = time.monotonic()  # the permission lapses at most 2 s later (whole seconds)
                got = stream_until(c, p, c.relayed, 5.0)
                check(any(k == "chan" for _, k in got), "nothing relayed before expiry")
                late = [t - t0 for t, _ in got if t - t0 > 3.0]
                check(not late, "relayed %d datagrams sent %.2f s after the bind" % (len(late), max(late or [0])))
                check(metrics().get(EBPF_P2C, 0) > 0, "fast path unused")


@tap.case("a lapsed channel stops the fast path within one second (Data indications follow)")
def t_chan_expiry():
    check(os.geteuid() == 0, "needs root")
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S, "--channel-lifetime=2"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                t0 = time.monotonic()
                got = stream_until(c, p, c.relayed, 5.0)
                chan = [t - t0 for t, k in got if k == "chan"]
                check(chan, "nothing relayed as ChannelData")
                check(max(chan) <= 3.0, "ChannelData for a datagram sent %.2f s after the bind" % max(chan))
                check(any(k == "ind" for _, k in got), "no Data indications after the channel expired")
                check(metrics().get(EBPF_P2C, 0) > 0, "fast path unused")


@tap.case("a peer without a permission gets nothing through, offload or not")
def t_no_permission():
    check(os.geteuid() == 0, "needs root")
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            p.bind((PEER_IP, 0))
            stranger.bind((STRANGER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                for i in range(20):
                    stranger.sendto(b"no" + bytes([i]), c.relayed)
                p.sendto(b"yes", c.relayed)  # after the strangers' on the same path
                r = c.recv_data(timeout=2.0)
                check(r is not None and r[2] == b"yes", "permitted peer's datagram: %r" % (r,))
                check_eq(c.recv_data(timeout=0.5), None, "anything else")
                check_eq(metric_wait(EBPF_P2C, 1), 1, "program counter")


# ---- client -> peer ------------------------------------------------------

def peer_recv(p, timeout):
    p.settimeout(timeout)
    try:
        return p.recvfrom(65535)
    except socket.timeout:
        return None


def c2p_burst(c, peer_sock, data, window=8):
    """The client sends data as ChannelData with at most window datagrams in
    flight; returns [(payload, source)] the peer got, in order."""
    got, sent = [], 0
    while sent < len(data) or len(got) < sent:
        while sent < len(data) and sent - len(got) < window:
            c.sendraw(tc.channel_data(0x4000, data[sent], pad=False))
            sent += 1
        r = peer_recv(peer_sock, 2.0)
        if r is None:
            break  # lost: the comparison below says what is missing
        got.append((r[0], r[1][:2]))
    return got


def run_c2p(offload):
    extra = ["--ebpf-offload", "--ebpf-interface=" + IF_S] if offload else []
    data = payloads(300) + [b""]  # an empty ChannelData too
    with server(extra) as srv:
        if offload:
            check("ebpf-offload: fast path for UDP channels on 1 interface" in srv.log_text(),
                  "offload not attached:\n" + srv.log_text())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                got = c2p_burst(c, p, data)
                check_eq(len(got), len(data), "datagrams the peer received")
                check([d for d, _ in got] == data, "bytes or order differ")
                srcs = set(a for _, a in got)
                check_eq(srcs, {tuple(c.relayed)}, "sources seen by the peer")
                total = sum(len(d) for d in data)
                name = 'turnstone_relayed_packets_total{direction="client_to_peer"}'
                check_eq(metric_wait(name, len(data)), len(data), name)
                name = 'turnstone_relayed_bytes_total{direction="client_to_peer"}'
                check_eq(metric_wait(name, total), total, name)
                frames = [tc.channel_data(0x4000, d, pad=False) for d in data]
                want = program_takes(c.sock.getsockname(), srv.addr, frames) if offload else 0
                check_eq(metric_wait(EBPF_C2P, want), want, "client->peer packets relayed by the program")
                check_eq(metrics().get(EBPF_P2C, 0), 0, "peer->client packets relayed by the program")
    return [d for d, _ in got]


@tap.case("client -> peer: identical with and without ebpf-offload, from the relayed address; counters match")
def t_c2p_identical():
    check(os.geteuid() == 0, "needs root")
    check(run_c2p(False) == run_c2p(True), "different datagrams with offload")


@tap.case("client -> peer: padded, short, unbound and checksum-0 ChannelData are relayed as by the socket path")
def t_c2p_corners():
    check(os.geteuid() == 0, "needs root")
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                # padded: 5 bytes of data, 3 of padding -> the socket path sends the 5
                c.sendraw(struct.pack("!HH", 0x4000, 5) + b"pad-5" + b"\0\0\0")
                r = peer_recv(p, 2.0)
                check(r is not None and r[0] == b"pad-5", "padded ChannelData: %r" % (r,))
                # short (length beyond the datagram): dropped, as by the socket path
                c.sendraw(struct.pack("!HH", 0x4000, 50) + b"short")
                # a channel nobody bound: dropped
                c.sendraw(struct.pack("!HH", 0x4001, 4) + b"none")
                c.sendraw(tc.channel_data(0x4000, b"after", pad=False))
                r = peer_recv(p, 2.0)
                check(r is not None and r[0] == b"after", "after short/unbound: %r" % (r,))
                check_eq(peer_recv(p, 0.3), None, "anything else")
                check_eq(metric_wait(EBPF_C2P, 1), 1, "program counter (only 'after')")
                # UDP checksum 0 from the client (RFC 768: none): relayed by the program
                c.sock.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK
                for i in range(20):
                    c.sendraw(tc.channel_data(0x4000, b"nocsum" + bytes([i]) * (i * 13), pad=False))
                got = [peer_recv(p, 2.0) for _ in range(20)]
                check(all(g is not None for g in got), "checksum-0 datagrams lost")
                check([g[0] for g in got] == [b"nocsum" + bytes([i]) * (i * 13) for i in range(20)],
                      "checksum-0 datagrams differ")
                check_eq(metric_wait(EBPF_C2P, 21), 21, "program counter (checksum 0)")


def c2p_stream(c, p, seconds):
    """The client sends ChannelData every 50 ms for seconds; returns the
    send times of what the peer received."""
    sent_at, got = {}, []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        sent_at[i] = time.monotonic()
        c.sendraw(tc.channel_data(0x4000, struct.pack("!I", i) + b"y" * 101, pad=False))
        i += 1
        r = peer_recv(p, 0.05)
        while r is not None:
            got.append(sent_at[struct.unpack("!I", r[0][:4])[0]])
            r = peer_recv(p, 0.001)
    r = peer_recv(p, 0.5)
    while r is not None:
        got.append(sent_at[struct.unpack("!I", r[0][:4])[0]])
        r = peer_recv(p, 0.2)
    return got


@tap.case("client -> peer: a lapsed permission or channel stops the fast path within one second")
def t_c2p_expiry():
    check(os.geteuid() == 0, "needs root")
    for opt in ("--permission-lifetime=2", "--channel-lifetime=2"):
        with server(["--ebpf-offload", "--ebpf-interface=" + IF_S, opt]) as srv:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
                p.bind((PEER_IP, 0))
                with bound_client(srv, p.getsockname()) as c:
                    t0 = time.monotonic()  # the binding lapses at most 2 s later (whole seconds)
                    got = c2p_stream(c, p, 5.0)
                    check(got, "%s: nothing relayed before expiry" % opt)
                    late = [t - t0 for t in got if t - t0 > 3.0]
                    check(not late, "%s: relayed %d datagrams sent %.2f s after the bind"
                          % (opt, len(late), max(late or [0])))
                    check(metrics().get(EBPF_C2P, 0) > 0, "%s: fast path unused" % opt)


@tap.case("client -> peer: a peer whose ChannelBind was refused gets nothing")
def t_c2p_refused():
    check(os.geteuid() == 0, "needs root")
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S, "--denied-peer-ip=" + STRANGER_IP]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            p.bind((PEER_IP, 0))
            stranger.bind((STRANGER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                check(not c.channel_bind(0x4001, stranger.getsockname()).is_success(),
                      "ChannelBind to a denied peer succeeded")
                for i in range(20):
                    c.sendraw(tc.channel_data(0x4001, b"no" + bytes([i]), pad=False))
                c.sendraw(tc.channel_data(0x4000, b"yes", pad=False))
                r = peer_recv(p, 2.0)
                check(r is not None and r[0] == b"yes", "bound peer's datagram: %r" % (r,))
                check_eq(peer_recv(stranger, 0.5), None, "the denied peer received")
                check_eq(metric_wait(EBPF_C2P, 1), 1, "program counter")


# ---- bandwidth limits in the program -------------------------------------

RATE = 100000  # bytes/s, max-bps or bps-capacity in these cases (burst: 1 s worth)


def limited_run(opt, reason, direction, mixed):
    """2 s of 1000-byte datagrams at ~10x RATE in direction; returns after
    checking the bound, the program's part and the drop counters."""
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S, opt]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            p.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            with bound_client(srv, p.getsockname()) as c:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                payload = b"z" * 1000
                sent = got = 0
                t0 = time.monotonic()
                while time.monotonic() - t0 < 2.0:
                    for _ in range(10):
                        if direction == "client_to_peer":
                            # mixed: every other one padded (that one takes the socket path)
                            c.sendraw(tc.channel_data(0x4000, payload[:999], pad=mixed and sent % 2 == 1))
                        else:
                            p.sendto(payload[:999], c.relayed)
                        sent += 1
                    time.sleep(0.01)
                    while (peer_recv(p, 0.001) if direction == "client_to_peer" else c.recv_data(timeout=0.001)):
                        got += 1
                while (peer_recv(p, 0.3) if direction == "client_to_peer" else c.recv_data(timeout=0.3)):
                    got += 1
                nbytes = got * 999
                tap.diag("%s %s: sent %d, relayed %d datagrams (%d bytes) in %.2f s"
                         % (opt, direction, sent, got, nbytes, time.monotonic() - t0))
                bound = RATE * 2.3 + RATE + 2 * 999  # rate * t + burst + one datagram, t with margin
                check(nbytes <= bound, "relayed %d bytes > %d" % (nbytes, bound))
                check(nbytes >= RATE * 1.5, "relayed only %d bytes: is anything relayed?" % nbytes)
                ebpf = 'turnstone_ebpf_relayed_packets_total{direction="%s"}' % direction
                name = 'turnstone_relayed_packets_total{direction="%s"}' % direction
                check_eq(metric_wait(name, got), got, name)
                n_ebpf = metric_wait(ebpf, got)
                if mixed:
                    check(0 < n_ebpf < got, "program relayed %d of %d (both paths should)" % (n_ebpf, got))
                else:
                    check_eq(n_ebpf, got, "relayed by the program")
                drops = 'turnstone_refused_total{reason="%s"}' % reason
                check_eq(metric_wait(drops, sent - got), sent - got, drops + " (datagrams not relayed)")


@tap.case("max-bps holds in the program, each direction, drops counted")
def t_max_bps():
    check(os.geteuid() == 0, "needs root")
    limited_run("--max-bps=%d" % RATE, "max_bps", "client_to_peer", False)
    limited_run("--max-bps=%d" % RATE, "max_bps", "peer_to_client", False)


@tap.case("max-bps holds in total across the program and the socket path")
def t_max_bps_mixed():
    check(os.geteuid() == 0, "needs root")
    limited_run("--max-bps=%d" % RATE, "max_bps", "client_to_peer", True)


@tap.case("bps-capacity holds in the program, drops counted")
def t_bps_capacity():
    check(os.geteuid() == 0, "needs root")
    limited_run("--bps-capacity=%d" % RATE, "bps_capacity", "client_to_peer", False)
    limited_run("--bps-capacity=%d" % RATE, "bps_capacity", "peer_to_client", False)


# ---- the once-a-second walk ----------------------------------------------

def allocations():
    return sum(v for k, v in metrics().items() if k.startswith("turnstone_allocations{"))


def walked_after_tick(want):
    """WALKED once a tick has run with the state as it is now (ticks are 1 s
    apart), polled until it equals want."""
    time.sleep(1.2)
    return metric_wait(WALKED, want, timeout=3.0)


@tap.case("the once-a-second walk visits only the allocations with channels in the maps")
def t_walk():
    check(os.geteuid() == 0, "needs root")
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p2, \
                tc.TurnClient(srv.addr, "alice", "secret", local_ip=CLI_IP) as plain, \
                tc.StreamTurnClient(srv.addr, "alice", "secret", local_ip=CLI_IP) as tcp:
            p.bind((PEER_IP, 0))
            p2.bind((PEER_IP, 0))
            # not offloaded: a UDP allocation without a channel, a TCP client's channel
            check(plain.allocate().is_success(), "allocate (UDP, no channel)")
            check(plain.create_permission(p.getsockname()).is_success(), "CreatePermission (UDP)")
            check(tcp.allocate().is_success(), "allocate (TCP)")
            check(tcp.create_permission(p.getsockname()).is_success(), "CreatePermission (TCP)")
            check(tcp.channel_bind(0x4000, p.getsockname()).is_success(), "ChannelBind (TCP)")
            check_eq(allocations(), 2, "allocations")
            check_eq(walked_after_tick(0), 0, "allocations walked, none offloaded")
            with bound_client(srv, p.getsockname()) as a:
                check_eq(metric_wait(WALKED, 1), 1, "allocations walked, one offloaded")
                check_eq(walked_after_tick(1), 1, "allocations walked a tick later")
                # the counters still reach the statistics through the walk
                data = payloads(20)
                check(relay_burst(a, p, a.relayed, data) == data, "relayed datagrams differ")
                check_eq(metric_wait(EBPF_P2C, 20), 20, "packets relayed by the program")
                with bound_client(srv, p.getsockname()) as b:
                    # two channels: still one allocation to walk
                    check(b.channel_bind(0x4001, p2.getsockname()).is_success(), "second ChannelBind")
                    check_eq(metric_wait(WALKED, 2), 2, "allocations walked, two offloaded")
                    check_eq(allocations(), 4, "allocations")
                    check(a.refresh(0).is_success(), "Refresh 0")
                    check_eq(metric_wait(WALKED, 1), 1, "allocations walked after one ended")
                    check_eq(allocations(), 3, "allocations after one ended")
                    check_eq(walked_after_tick(1), 1, "allocations walked a tick later")


@tap.case("an allocation whose last channel lapses leaves the walk, and comes back on a new ChannelBind")
def t_walk_lapse():
    check(os.geteuid() == 0, "needs root")
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S, "--channel-lifetime=3"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                check_eq(metric_wait(WALKED, 1), 1, "allocations walked, channel bound")
                check_eq(metric_wait(WALKED, 0, timeout=6.0), 0, "allocations walked, channel lapsed")
                check_eq(allocations(), 1, "allocations (this one lives on)")
                check_eq(walked_after_tick(0), 0, "allocations walked a tick later")
                check(c.channel_bind(0x4000, p.getsockname()).is_success(), "ChannelBind again")
                check_eq(metric_wait(WALKED, 1), 1, "allocations walked, channel bound again")
                p.sendto(b"back", c.relayed)
                r = c.recv_data(timeout=2.0)
                check(r is not None and r[2] == b"back", "relayed after the new bind: %r" % (r,))
                check_eq(metric_wait(EBPF_P2C, 1), 1, "relayed by the program after the new bind")


@tap.case("a dual allocation's deleted IPv4 half leaves the fast path at once: its old port relays nothing")
def t_dual_half():
    check(os.geteuid() == 0, "needs root")
    # the IPv6 relayed address: the server namespace's ::1 (its lo is up)
    with server(["--ebpf-offload", "--ebpf-interface=" + IF_S, "--listening-ip=::1"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p, \
                tc.TurnClient(srv.addr, "alice", "secret", local_ip=CLI_IP) as c:
            p.bind((PEER_IP, 0))
            peer = p.getsockname()
            # ADDITIONAL-ADDRESS-FAMILY IPv6 (RFC 8656 section 7.2)
            r = c.allocate(extra=[tc.Attr.raw(0x8000, struct.pack("!B3x", 2))])
            check(r.is_success(), "dual Allocate: %r" % r)
            rel = [tc.decode_xor_addr(v, r.tid) for at, v, _ in r.attrs if at == tc.XOR_RELAYED_ADDRESS]
            check_eq(len(rel), 2, "relayed addresses")
            r4 = [a for a in rel if ":" not in a[0]][0]
            check(c.create_permission(peer).is_success(), "CreatePermission")
            check(c.channel_bind(0x4000, peer).is_success(), "ChannelBind")
            check_eq(metric_wait(WALKED, 1), 1, "allocations walked, channel bound")
            p.sendto(b"fast", tuple(r4))
            got = c.recv_data(timeout=2.0)
            check(got is not None and got[:2] == ("chan", 0x4000) and got[2] == b"fast",
                  "relayed before the delete: %r" % (got,))
            check_eq(metric_wait(EBPF_P2C, 1), 1, "relayed by the program before the delete")
            fam4 = tc.Attr.raw(tc.REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", 1))
            r = c.auth_request(tc.REFRESH, [tc.Attr.lifetime(0), fam4])[0]
            check(r.is_success(), "Refresh 0 of the IPv4 half: %r" % r)
            # gone with the answer, not at the next tick or when the channel lapses
            check_eq(metric_wait(WALKED, 0, timeout=1.5), 0, "allocations walked after the IPv4 half went")
            p.sendto(b"after", tuple(r4))
            got = c.recv_data(timeout=1.0)
            check(got is None, "the deleted IPv4 port still relays: %r" % (got,))
            time.sleep(1.2)  # a tick: the program's counter would show it
            check_eq(metrics().get(EBPF_P2C, 0), 1, "relayed by the program in all")


@tap.case("without CAP_BPF / CAP_NET_ADMIN: one line logged, relaying goes on through sockets")
def t_no_capability():
    check(os.geteuid() == 0, "needs root")
    srv_ctx = server(["--ebpf-offload", "--ebpf-interface=" + IF_S])
    a = srv_ctx.s.args
    i = a.index(NS_S) + 1  # after "ip netns exec NS": drop the capabilities, then exec the server
    srv_ctx.s.args = a[:i] + ["capsh", "--drop=cap_bpf,cap_net_admin,cap_sys_admin,cap_perfmon", "--",
                              "-c", "exec " + " ".join(shlex.quote(x) for x in a[i:])]
    with srv_ctx as srv:
        lines = [ln for ln in srv.log_text().splitlines() if "ebpf-offload" in ln]
        check_eq(len(lines), 1, "ebpf-offload log lines: %r" % lines)
        check("running without the fast path" in lines[0], lines[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind((PEER_IP, 0))
            with bound_client(srv, p.getsockname()) as c:
                data = payloads(50)
                check(relay_burst(c, p, c.relayed, data) == data, "relayed datagrams differ")
                check_eq(metric_wait('turnstone_relayed_packets_total{direction="peer_to_client"}', 50), 50,
                         "relayed packets")
                check_eq(metrics().get(EBPF_P2C, 0), 0, "program counter")
                check_eq(walked_after_tick(0), 0, "allocations walked without the program")


# ------------------------------------------------- UDP GSO refused (socket path)

def gso_round(srv, c, p, tag, n, size):
    """With the server stopped, n datagrams of size bytes queue each way, so
    the server sends each direction as one UDP GSO run; returns what the
    client and the peer got, and what was sent, each in order."""
    import signal
    to_c = [b"%s-c%03d-" % (tag, i) + bytes([65 + i % 26]) * (size - 10) for i in range(n)]
    to_p = [b"%s-p%03d-" % (tag, i) + bytes([97 + i % 26]) * (size - 10) for i in range(n)]
    os.kill(srv.proc.pid, signal.SIGSTOP)
    try:
        for d in to_c:
            p.sendto(d, tuple(c.relayed))
        for d in to_p:
            c.sendraw(tc.channel_data(0x4000, d, pad=False))
        time.sleep(0.3)
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    got_p = []
    while len(got_p) < n + 2:
        r = peer_recv(p, 1.5)
        if r is None:
            break
        got_p.append(r[0])
    got_c = []
    while len(got_c) < n + 2:
        r = c.recv_data(timeout=1.5)
        if r is None:
            break
        got_c.append(r[2])
    return got_c, to_c, got_p, to_p


def gso_relay(srv, tag, size, rounds):
    """rounds of gso_round on one bound channel; yields after each round."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
        p.bind((PEER_IP, 0))
        with bound_client(srv, p.getsockname()) as c:
            for r in range(rounds):
                got_c, to_c, got_p, to_p = gso_round(srv, c, p, b"%s%d" % (tag, r), 12, size)
                check(got_c == to_c, "round %d: the client got %d of %d datagrams, or other bytes"
                      % (r, len(got_c), len(to_c)))
                check(got_p == to_p, "round %d: the peer got %d of %d datagrams, or other bytes"
                      % (r, len(got_p), len(to_p)))
                yield r


@tap.case("a path MTU below the datagrams: the refused UDP GSO runs (EMSGSIZE) go one by one, "
          "whole and in order, and that destination gets no more runs")
def t_gso_mtu():
    check(os.geteuid() == 0, "needs root")
    refused = "-byte datagrams was refused (path MTU)"
    try:
        # 800 + 28 > 700: the kernel refuses a run; one by one, each
        # datagram leaves in IP fragments
        sh("ip", "-n", NS_S, "link", "set", IF_S, "mtu", "700")
        sh("ip", "-n", NS_C, "link", "set", IF_C, "mtu", "700")
        with server(["--verbose"]) as srv:
            seen = []
            for r in gso_relay(srv, b"m", 800, 2):
                seen.append(srv.log_text().count(refused))
            # one refusal per destination (client, peer) in the first round,
            # none in the second: those destinations are no longer merged
            check_eq(seen[0], 2, "refused runs in the first round (0: the fallback was not tested)")
            check_eq(seen[1], seen[0], "refused runs after the second round")
    finally:
        sh("ip", "-n", NS_S, "link", "set", IF_S, "mtu", "1500")
        sh("ip", "-n", NS_C, "link", "set", IF_C, "mtu", "1500")


def main():
    if os.geteuid() != 0:
        tap.plan(1)
        tap.result(False, "ebpf-offload tests need root (network namespaces, CAP_BPF, CAP_NET_ADMIN)")
        return 1
    try:
        net_up()
    except Exception as e:
        net_down()
        tap.plan(1)
        tap.result(False, "network namespaces with a veth pair", str(e))
        return 1
    try:
        return tap.run()
    finally:
        net_down()


if __name__ == "__main__":
    sys.exit(main())
