#!/usr/bin/env python3
"""turnstone vs coturn vs a bare forwarder, same machine, same run (issues 8, 14).

Called by bench/run.sh (which builds the programs and checks the tools).
Every server is started fresh for every run, on 127.0.0.1 only, in the order
coturn (Debian 4.6.1), coturn 4.17.1 (defaults), coturn 4.17.1 (fast flags),
turnstone, forwarder, then again, ... per case; the 4.17.1 columns only with
--turnserver PATH (a build of coturn 4.17.1, bench/coturn.sh).
Only the processes started here are ever signalled, by PID.

--veth (root): the UDP cases across a real interface, for the in-kernel fast
path (ebpf-offload) of issue 14. run.py makes two network namespaces of its
own (tsB-s*, tsB-c*) joined by a veth pair, runs every server in the server
namespace on 10.201.0.1 and tsload in the client namespace (10.201.0.2, its
echo peer on 10.201.16.1 and up, a local route), and adds "turnstone +
ebpf-offload". Server and generator are pinned to CPUs of their own (server
CPU 1, tsload and run.py CPU 0), and so is each side's receive processing
(RPS on each veth), so that CPU 1's busy time (user + system + irq + softirq,
/proc/stat) is what the server side spent, in its process and in the
kernel, whether a packet woke the server or not. The private addresses exist
only inside the two namespaces, which are deleted at the end.
"""
import argparse
import json
import resource
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

# "coturn" is Debian's turnserver (4.6.1); NEW and FAST are a coturn 4.17.1
# build given with --turnserver, with its defaults and with its documented
# fast path (README.turnserver of 4.17.1: --udp-recvmmsg is on by default;
# sendmmsg batching comes with --multiplex-peer, and --udp-gso piggybacks on
# it; there is no --udp-sendmmsg flag).
NEW, FAST = "coturn-4.17", "coturn-4.17-fast"
FAST_ARGS = ["--multiplex-peer", "--udp-gso", "--udp-recvmmsg"]
SERVERS = ["coturn", NEW, FAST, "turnstone", "forwarder"]
EBPF = "turnstone-ebpf"  # --veth: turnstone with ebpf-offload on the server's veth
# --veth: one more turnstone-ebpf run per case after the others, with
# kernel.bpf_stats_enabled on (the program's run time; two clock reads per
# run, so it is kept out of the main figures). perf's cpu-clock sampling is
# no help here: without a PMU (this VM) it hardly samples softirq work on an
# otherwise idle CPU, where the program runs.
EBPF_PROF = "turnstone-ebpf-profile"
COTURNS = ("coturn", NEW, FAST)
LABELS = {"coturn": "coturn 4.6.1 (Debian)", NEW: "coturn 4.17.1", FAST: "coturn 4.17.1 fast",
          "turnstone": "turnstone", "forwarder": "forwarder", EBPF: "turnstone + ebpf-offload",
          EBPF_PROF: "turnstone + ebpf-offload, profiled"}
# turnstone with every quota, rate limit and the metrics listener switched
# on, with limits far above what the load needs (so the checks run on every
# packet and Allocate but never refuse): the cost of issue 11's bookkeeping.
LIMITED = "turnstone+lim"
BASE = "turnstone-base"  # --baseline: a turnstone binary from before issue 11
LIMIT_ARGS = ["--user-quota=1000000", "--total-quota=10000000", "--max-bps=100000000",
              "--bps-capacity=2000000000", "--max-permissions=64", "--max-channels=64",
              "--allocate-rate-per-ip=65535", "--unauthorized-rate-per-ip=65535", "--prometheus"]
THREADS = 2
MIN_PORT, MAX_PORT = 10000, 31999      # relay ports, below the ephemeral range
MP_PORT = 9480                         # coturn --multiplex-peer: 9480..9483, outside both
USER, PASS, REALM = "bench", "benchpw", "bench"

# name, title, tsload args (full), tsload args (quick), servers
CASES = [
    ("hot", "UDP hot: 50 alloc x 1000 msg/s x 100 B, echoed",
     "--case data --allocs 50 --rate 1000 --duration 6", "--case data --allocs 50 --rate 1000 --duration 2", SERVERS),
    ("scale", "UDP at scale: 2000 alloc x 5 msg/s x 100 B, echoed",
     "--case data --allocs 2000 --rate 5 --duration 8", "--case data --allocs 2000 --rate 5 --duration 3", SERVERS),
    ("sat", "UDP saturated: 50 alloc, as fast as the generator can send",
     "--case data --allocs 50 --rate 0 --duration 5", "--case data --allocs 50 --rate 0 --duration 2", SERVERS),
    ("tcp", "TCP: 50 alloc x 500 msg/s x 100 B, echoed",
     "--case data --proto tcp --allocs 50 --rate 500 --duration 6",
     "--case data --proto tcp --allocs 50 --rate 500 --duration 2", SERVERS),
    ("tls", "TLS: 50 alloc x 500 msg/s x 100 B, echoed",
     "--case data --proto tls --allocs 50 --rate 500 --duration 6",
     "--case data --proto tls --allocs 50 --rate 500 --duration 2", ["coturn", NEW, FAST, "turnstone"]),
    ("cycles", "Allocate cycles (401, Allocate, Refresh 0), 16 in flight",
     "--case cycles --inflight 16 --duration 5", "--case cycles --inflight 16 --duration 2", ["coturn", NEW, FAST, "turnstone"]),
    ("mem", "Memory: 10,000 concurrent UDP allocations",
     "--case hold --allocs 10000", "--case hold --allocs 10000", SERVERS),
    ("ping", "Latency: back-to-back pings through the relay",
     "--case ping --duration 4", "--case ping --duration 2", SERVERS),
]

live = []  # Popen objects started here
VETH_CASES = ("hot", "scale", "sat", "ping")
# --veth: one server CPU, so the paced cases offer what every server relays
# without saturating it (coturn 4.6.1 at about 25 µs per packet over veth:
# 30,000 packets/s is 75 % of its CPU); the loopback figures stay as they are.
VETH_OVERRIDE = {
    "hot": ("UDP hot over veth: 50 alloc x 300 msg/s x 100 B, echoed",
            "--case data --allocs 50 --rate 300 --duration 6", "--case data --allocs 50 --rate 300 --duration 2"),
    "scale": ("UDP at scale over veth: 2000 alloc x 5 msg/s x 100 B, echoed",
              "--case data --allocs 2000 --rate 5 --duration 8", "--case data --allocs 2000 --rate 5 --duration 3"),
    "sat": ("UDP saturated over veth: 50 alloc, as fast as the generator can send",
            "--case data --allocs 50 --rate 0 --duration 5", "--case data --allocs 50 --rate 0 --duration 2"),
    "ping": ("Latency over veth: back-to-back pings through the relay",
             "--case ping --duration 4", "--case ping --duration 2"),
}


class Net:
    """Where the servers and the generator run: 127.0.0.1, or --veth's namespaces."""
    veth = False
    host = "127.0.0.1"      # the servers' listening and relay address
    client = "127.0.0.1"    # tsload's clients
    peer = "127.0.0.1"      # tsload's echo peer (first address)
    ns_s = ns_c = if_s = if_c = None
    srv_cpu = gen_cpu = None
    orig_ns = None


NET = Net()
CLONE_NEWNET = 0x40000000


def sh(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stdout.strip()))
    return r.stdout


def setns(path):
    import ctypes
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def veth_up():
    """The namespaces, the veth pair, addresses, routes, RPS; then run.py joins the client side."""
    tag = str(os.getpid())
    NET.ns_s, NET.ns_c = "tsB-s" + tag, "tsB-c" + tag
    NET.if_s, NET.if_c = "tsB-s" + tag[-6:], "tsB-c" + tag[-6:]
    NET.veth, NET.host, NET.client, NET.peer = True, "10.201.0.1", "10.201.0.2", "10.201.16.1"
    sh("ip", "netns", "add", NET.ns_s)
    sh("ip", "netns", "add", NET.ns_c)
    sh("ip", "link", "add", NET.if_s, "netns", NET.ns_s, "type", "veth", "peer", "name", NET.if_c,
       "netns", NET.ns_c)
    sh("ip", "-n", NET.ns_s, "addr", "add", NET.host + "/24", "dev", NET.if_s)
    sh("ip", "-n", NET.ns_c, "addr", "add", NET.client + "/24", "dev", NET.if_c)
    for ns, dev in ((NET.ns_s, NET.if_s), (NET.ns_c, NET.if_c)):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # the echo peer's addresses (one per allocation for coturn --multiplex-peer)
    sh("ip", "-n", NET.ns_c, "route", "add", "local", "10.201.16.0/20", "dev", "lo")
    sh("ip", "-n", NET.ns_s, "route", "add", "10.201.16.0/20", "via", NET.client)
    # Full UDP checksums from the client side (a CHECKSUM_PARTIAL datagram,
    # from a local sender with tx offload, is left to the socket path by
    # the tc program: docs/ebpf.md), and the client side verifies every
    # checksum in software, so a wrong rewrite shows as loss. The same for
    # every server.
    sh("ip", "netns", "exec", NET.ns_c, "ethtool", "-K", NET.if_c, "tx", "off", "rx", "off")
    sh("ip", "netns", "exec", NET.ns_s, "sysctl", "-q", "-w", "net.ipv4.conf.%s.forwarding=1" % NET.if_s)
    ncpu = os.cpu_count() or 1
    if ncpu >= 2:
        NET.gen_cpu, NET.srv_cpu = 0, 1
        for ns, dev, cpu in ((NET.ns_s, NET.if_s, NET.srv_cpu), (NET.ns_c, NET.if_c, NET.gen_cpu)):
            sh("ip", "netns", "exec", ns, "sh", "-c",
               "for q in /sys/class/net/%s/queues/rx-*; do echo %x > $q/rps_cpus; done" % (dev, 1 << cpu))
        os.sched_setaffinity(0, {NET.gen_cpu})
    NET.orig_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns("/var/run/netns/" + NET.ns_c)


def veth_down():
    if NET.orig_ns is not None:
        import ctypes
        ctypes.CDLL(None, use_errno=True).setns(NET.orig_ns, CLONE_NEWNET)
        NET.orig_ns = None
    for ns in (NET.ns_s, NET.ns_c):
        if ns:
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bpf_prog_stats():
    """(run_cnt, run_time_ns) of turnstone's tc program ts_relay, or None (bpftool, kernel.bpf_stats_enabled)."""
    try:
        r = subprocess.run(["bpftool", "-j", "prog", "show"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=10)
        progs = json.loads(r.stdout.decode() or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    cnt = ns = 0
    found = False
    for pr in progs:
        if pr.get("name") == "ts_relay":
            found = True
            cnt += pr.get("run_cnt", 0)
            ns += pr.get("run_time_ns", 0)
    return (cnt, ns) if found else None


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_DGRAM, both=True):
    """A port free on 127.0.0.1 (here; with --veth, in the client namespace) for UDP and TCP."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p < 33000 or p > 60999 - 100:
            pass
        ok = True
        for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            t = socket.socket(socket.AF_INET, k)
            try:
                t.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            t.close()
        if ok:
            return p
    raise RuntimeError("no free port")


def stun_ready(port, timeout=10.0):
    req = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    end = time.time() + timeout
    try:
        while time.time() < end:
            try:
                s.sendto(req, (NET.host, port))
                d, _ = s.recvfrom(2048)
                if len(d) >= 20 and d[8:20] == req[8:20]:
                    return True
            except (socket.timeout, ConnectionRefusedError):
                pass
        return False
    finally:
        s.close()


def tcp_ready(port, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((NET.host, port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in live:
        live.remove(p)


def start_server(name, args, tmp, tcp):
    port = free_port()
    peer = free_port()
    logf = open(os.path.join(tmp, f"{name}.log"), "ab")
    if name in COTURNS:
        tls, alt, alttls = free_port(), free_port(), free_port()
        cmd = [args.turnserver if name != "coturn" else args.debian_turnserver, "-n", f"--listening-ip={NET.host}", f"--listening-port={port}",
               f"--tls-listening-port={tls}", f"--alt-listening-port={alt}",
               f"--alt-tls-listening-port={alttls}", f"--relay-ip={NET.host}",
               f"--min-port={MIN_PORT}", f"--max-port={MAX_PORT}", f"--realm={REALM}",
               f"--user={USER}:{PASS}", "--lt-cred-mech", f"--relay-threads={THREADS}",
               "--allow-loopback-peers", "--no-cli", "--no-dtls", f"--cert={tmp}/cert.pem",
               f"--pkey={tmp}/key.pem", f"--log-file={tmp}/coturn-server.log", "--simple-log",
               "--no-stdout-log", f"--pidfile={tmp}/coturn.pid", f"--userdb={tmp}/turndb"]
        if name == FAST:
            # the shared relay sockets bind --multiplex-peer-port + 0..3
            cmd += FAST_ARGS + [f"--multiplex-peer-port={MP_PORT}"]
    elif name in ("turnstone", LIMITED, BASE, EBPF, EBPF_PROF):
        tls = free_port()
        cmd = [args.baseline if name == BASE else args.turnstone, f"--listening-ip={NET.host}", f"--listening-port={port}",
               f"--tls-listening-port={tls}", f"--relay-ip={NET.host}", f"--min-port={MIN_PORT}",
               f"--max-port={MAX_PORT}", f"--realm={REALM}", f"--user={USER}:{PASS}",
               f"--relay-threads={THREADS}", "--allow-loopback-peers", "--rfc5766-channels",
               f"--cert={tmp}/cert.pem", f"--pkey={tmp}/key.pem", "--no-signaling",
               f"--log-file={tmp}/turnstone-server.log"]
        if NET.veth:
            cmd += ["--allowed-peer-ip=10.201.16.0/20"]
        if name in (EBPF, EBPF_PROF):
            cmd += ["--ebpf-offload", f"--ebpf-interface={NET.if_s}"]
        if name == LIMITED:
            cmd += LIMIT_ARGS + [f"--prometheus-ip=127.0.0.1", f"--prometheus-port={free_port(socket.SOCK_STREAM)}"]
    else:
        tls = None
        cmd = [args.fwd, "-l", NET.host, "-p", str(port), "-e", f"{NET.peer}:{peer}",
               "-t", str(THREADS)] + (["-T"] if tcp else [])
    if NET.veth:
        # ip netns exec and taskset exec: the PID is the server's
        cmd = ["ip", "netns", "exec", NET.ns_s] + (["taskset", "-c", str(NET.srv_cpu)] if NET.srv_cpu is not None
                                                   else []) + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE if name == "forwarder" else logf, stderr=logf,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    live.append(p)
    if name == "forwarder":
        ok = p.stdout.readline().strip() == b"ready"
    else:
        ok = stun_ready(port) and tcp_ready(port) and (tls is None or tcp_ready(tls))
        ok = ok and p.poll() is None
    if not ok:
        stop(p)
        raise RuntimeError(f"{name} did not start (see {tmp}/{name}.log)")
    time.sleep(0.3)
    return p, port, tls, peer


def fd_limit(pid):
    """The soft RLIMIT_NOFILE of a running process (-1 if unreadable)."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return -1


def run_one(args, tmp, case, server, cargs):
    proto_tls = "--proto tls" in cargs
    tcp = "--proto tcp" in cargs
    p, port, tls, peer = start_server(server, args, tmp, tcp)
    try:
        cmd = [args.tsload, "--server", f"{NET.host}:{tls if proto_tls else port}",
               "--peer", f"{NET.peer}:{peer}", "--client-ip", NET.client, "--pid", str(p.pid),
               "--mode", "raw" if server == "forwarder" else "turn"] + cargs.split()
        if server == FAST:
            # --multiplex-peer demultiplexes by peer IP:port on one socket per
            # thread: every allocation needs a peer of its own
            cmd += ["--peer-ips", cargs.split()[cargs.split().index("--allocs") + 1]
                    if "--allocs" in cargs else "64"]
        srv_fd_limit = fd_limit(p.pid)
        if NET.gen_cpu is not None:
            cmd = ["taskset", "-c", str(NET.gen_cpu)] + cmd
        bpf0 = bpf_prog_stats() if server == EBPF_PROF else None
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
        err = r.stderr.decode(errors="replace").strip()
        if err:
            log(f"    tsload: {err.splitlines()[0]}" + (f" (+{len(err.splitlines()) - 1} lines)"
                                                       if len(err.splitlines()) > 1 else ""))
        res = json.loads(r.stdout.decode().strip().splitlines()[-1])
        bpf1 = bpf_prog_stats() if server == EBPF_PROF else None
        if bpf0 and bpf1:
            res["bpf_run_cnt"], res["bpf_run_ns"] = bpf1[0] - bpf0[0], bpf1[1] - bpf0[1]
        if p.poll() is not None:
            raise RuntimeError(f"{server} exited during the run")
    finally:
        stop(p)
    res["server"], res["bench_case"] = server, case
    res["veth"], res["srv_cpu"] = NET.veth, NET.srv_cpu
    res["srv_fd_limit"], res["gen_fd_limit"] = srv_fd_limit, resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return res


def direct_ping(args, cargs):
    peer = free_port()
    cmd = [args.tsload, "--server", f"{NET.host}:9", "--peer", f"{NET.peer}:{peer}", "--client-ip", NET.client,
           "--mode", "direct"] + cargs.split()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=120)
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


# ---- figures ---------------------------------------------------------------

def metric(case, r):
    """(main figure, dict of extra figures) of one run."""
    if r["bench_case"] in ("hot", "scale", "sat", "tcp", "tls"):
        relayed = r["peer_rx"] + r["recv"]
        cpu = r["srv_user_s"] + r["srv_sys_s"]
        loss = 100.0 * (r["sent"] - r["recv"]) / r["sent"] if r["sent"] else 100.0
        vx = {}
        if r.get("veth") and r.get("srv_cpu") is not None:
            # the server side's CPU, in and out of the process (module docstring)
            host = r["cpu_busy_s"][r["srv_cpu"]]
            vx = {"us_proc": 1e6 * cpu / max(relayed, 1),
                  "us_softirq": 1e6 * r["cpu_softirq_s"][r["srv_cpu"]] / max(relayed, 1),
                  "gen_cpu_busy_pct": 100.0 * r["cpu_busy_s"][1 - r["srv_cpu"]] / r["wall_s"]
                  if len(r["cpu_busy_s"]) == 2 else float("nan")}
            if r.get("bpf_run_cnt"):
                vx["bpf_ns_per_run"] = r["bpf_run_ns"] / r["bpf_run_cnt"]
                vx["bpf_runs_per_pkt"] = r["bpf_run_cnt"] / max(relayed, 1)
            cpu = host
        ex = {"us_user": 1e6 * r["srv_user_s"] / max(relayed, 1), "us_sys": 1e6 * r["srv_sys_s"] / max(relayed, 1),
              "loss_pct": loss, "relayed_kpps": relayed / r["duration_s"] / 1e3,
              "offered_kpps": r["sent"] / r["duration_s"] / 1e3,
              "gen_cpu_pct": 100.0 * r["gen_cpu_s"] / r["wall_s"],
              "pkts_per_cpu_s": relayed / cpu if cpu > 0 else 0, "ready": r["ready"]}
        ex.update(vx)
        if r["bench_case"] == "sat":
            return relayed / cpu if cpu > 0 else 0, ex
        return 1e6 * cpu / max(relayed, 1), ex
    if r["bench_case"] == "cycles":
        cpu = r["srv_user_s"] + r["srv_sys_s"]
        return 1e6 * cpu / max(r["cycles"], 1), {"cycles_per_s": r["cycles"] / r["wall_s"], "failed": r["failed"],
                                                 "us_user": 1e6 * r["srv_user_s"] / max(r["cycles"], 1),
                                                 "us_sys": 1e6 * r["srv_sys_s"] / max(r["cycles"], 1),
                                                 "gen_cpu_pct": 100.0 * r["gen_cpu_s"] / r["wall_s"]}
    if r["bench_case"] == "mem":
        ok = max(r["ok"], 1)
        return (r["rss1_kb"] - r["rss0_kb"]) / ok, {"fds_per_alloc": (r["fds1"] - r["fds0"]) / ok, "ok": r["ok"],
                                                    "setup_s": r["setup_s"], "rss0_mb": r["rss0_kb"] / 1024,
                                                    "srv_fd_limit": r.get("srv_fd_limit", -1)}
    if r["bench_case"] == "ping":
        return r["p50_us"], {"p99_us": r["p99_us"], "lost": r["lost"]}
    raise ValueError(case)


UNITS = {"hot": "µs CPU/packet", "scale": "µs CPU/packet", "sat": "packets/CPU-s", "tcp": "µs CPU/packet",
         "tls": "µs CPU/packet", "cycles": "µs CPU/cycle", "mem": "KB RSS/alloc", "ping": "µs RTT p50"}


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x):
    if x != x:
        return "–"
    if abs(x) >= 10000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


RATIOS = [("turnstone", NEW), ("turnstone", FAST), ("turnstone", "coturn"), ("turnstone", "forwarder")]
RATIOS_VETH = [(EBPF, NEW), (EBPF, FAST), (EBPF, "forwarder"), ("turnstone", FAST), ("turnstone", "forwarder")]
SHORT = {"coturn": "coturn 4.6.1", NEW: "coturn 4.17.1", FAST: "coturn 4.17.1 fast", "turnstone": "turnstone",
         "forwarder": "forwarder", EBPF: "turnstone+ebpf"}


def summarize(results, direct):
    lines = []
    ratios = RATIOS_VETH if EBPF in SERVERS else RATIOS
    lines.append("| case | figure | " + " | ".join(LABELS[s] for s in SERVERS) + " | " +
                 " | ".join(f"{SHORT[a]}/{SHORT[b]}" for a, b in ratios) + " |")
    lines.append("|---" * (len(SERVERS) + 2 + len(ratios)) + "|")
    limited = []
    extras = []
    chart = []
    for name, title, _, _, servers in CASES:
        main = {}
        ex = {}
        for s in SERVERS + [LIMITED, BASE, EBPF_PROF]:
            runs = [r for r in results if r["bench_case"] == name and r["server"] == s]
            if not runs:
                continue
            vals = [metric(name, r) for r in runs]
            main[s] = [v[0] for v in vals]
            ex[s] = {k: med([v[1][k] for v in vals]) for k in vals[0][1]}
        if not main:
            continue

        def cell(s):
            if s not in main:
                return "n/a"
            xs = main[s]
            return f"{fmt(med(xs))} ({fmt(min(xs))}–{fmt(max(xs))})" if len(xs) > 1 else fmt(xs[0])

        def ratio(a, b):
            if a not in main or b not in main or med(main[b]) == 0:
                return "n/a"
            return f"{med(main[a]) / med(main[b]):.2f}x"

        lines.append(f"| {title} | {UNITS[name]} | " + " | ".join(cell(s) for s in SERVERS) + " | " +
                     " | ".join(ratio(a, b) for a, b in ratios) + " |")
        if LIMITED in main and "turnstone" in main:
            def user(sv):
                return fmt(ex[sv]["us_user"]) if sv in ex and "us_user" in ex[sv] else "n/a"
            limited.append(f"| {title} | {UNITS[name]} | {cell(BASE)} | {cell('turnstone')} | {cell(LIMITED)} | "
                           f"{ratio(LIMITED, BASE)} | {ratio(LIMITED, 'turnstone')} | "
                           f"{user(BASE)} / {user('turnstone')} / {user(LIMITED)} |")
        for s in ex:
            extras.append(f"- {name} / {s}: " + ", ".join(f"{k} {fmt(v)}" for k, v in ex[s].items()))
        if name in ("hot", "scale", "tcp", "tls"):
            chart.append((name, [med(main[s]) if s in main else float("nan") for s in SERVERS]))
        if name == "sat":  # CPU per packet at saturation, for the chart
            chart.append((name, [1e6 / med(main[s]) if s in main and med(main[s]) else float("nan")
                                 for s in SERVERS]))
    if limited:
        lines += ["", "Quotas, rate limits and metrics (turnstone+lim: every limit set far above the load, "
                  "the metrics listener on) against the same binary with none set (turnstone) and against "
                  "the binary from before them (turnstone-base, --baseline):", "",
                  "| case | figure | turnstone-base | turnstone | turnstone+lim | lim/base | lim/turnstone | "
                  "user µs/packet: base / turnstone / lim |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += limited
    if direct:
        extras.append(f"- ping / direct (no relay): p50_us {fmt(med([d['p50_us'] for d in direct]))}, "
                      f"p99_us {fmt(med([d['p99_us'] for d in direct]))}")
    return lines, extras, chart


def plot(chart, out, gnuplot):
    dat = os.path.join(out, "cpu_per_packet.dat")
    with open(dat, "w") as f:
        f.write("case " + " ".join(SERVERS) + "\n")
        for name, vals in chart:
            f.write(name + " " + " ".join("NaN" if v != v else f"{v:.3f}" for v in vals) + "\n")
    script = f"""
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "server CPU per relayed packet (us)"
set yrange [0:*]
set key outside top center horizontal
set grid ytics
"""
    body = f"plot '{dat}' using 2:xtic(1) title '{LABELS[SERVERS[0]]}', " + ", ".join(
        f"'' using {i + 2} title '{LABELS[s]}'" for i, s in enumerate(SERVERS) if i > 0) + "\n"
    try:
        subprocess.run([gnuplot], input=(script + f"set terminal pngcairo size 960,480\nset output '{out}/cpu_per_packet.png'\n" + body).encode(),
                       check=True, stderr=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, OSError):
        subprocess.run([gnuplot], input=(script + f"set terminal png size 960,480\nset output '{out}/cpu_per_packet.png'\n" + body).encode(),
                       stderr=subprocess.DEVNULL)
    r = subprocess.run([gnuplot], input=(script + "set terminal dumb size 79,25\n" + body).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "cpu_per_packet.txt"), "wb") as f:
        f.write(r.stdout)


def main():
    global SERVERS, THREADS, CASES
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--tsload", required=True)
    ap.add_argument("--fwd", required=True)
    ap.add_argument("--turnstone", required=True)
    ap.add_argument("--turnserver", help="a coturn 4.17.1 turnserver (bench/coturn.sh): adds the "
                    f"{NEW} and {FAST} columns")
    ap.add_argument("--debian-turnserver", default="turnserver", help="Debian's coturn (4.6.1)")
    ap.add_argument("--gnuplot", default="gnuplot")
    ap.add_argument("--limits", action="store_true",
                    help="also run turnstone with quotas, rate limits and metrics on (hot and scale cases)")
    ap.add_argument("--baseline", help="with --limits: a turnstone binary from before them, run as turnstone-base")
    ap.add_argument("--replot", action="store_true", help="only redo summary and chart from OUT/results.json")
    ap.add_argument("--veth", action="store_true",
                    help="UDP cases across a veth pair between two namespaces of its own, with turnstone + "
                         "ebpf-offload (root; see the module docstring)")
    args = ap.parse_args()
    if args.veth or (args.replot and os.path.exists(os.path.join(args.out, "results.json")) and
                     json.load(open(os.path.join(args.out, "results.json"))).get("veth")):
        CASES = [(n,) + VETH_OVERRIDE[n] + (sv,) for n, _, _, _, sv in CASES if n in VETH_OVERRIDE]
        # one server CPU: one relay thread for every server
        SERVERS = ["coturn", NEW, FAST, "turnstone", EBPF, "forwarder"]
        THREADS = 1
    if args.replot:
        with open(os.path.join(args.out, "results.json")) as f:
            saved = json.load(f)
        if saved.get("veth") or any(r["server"] == EBPF for r in saved["results"]):
            SERVERS = ["coturn", NEW, FAST, "turnstone", EBPF, "forwarder"]
        lines, extras, chart = summarize(saved["results"], saved["direct_ping"])
        text = "\n".join(lines) + "\n\nMedians of the other figures per case and server:\n\n" + "\n".join(extras) + "\n"
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(text)
        plot(chart, args.out, args.gnuplot)
        print(text)
        return
    runs = args.runs or (1 if args.quick else 3)
    want = args.cases.split(",")
    bpf_stats_old = None
    if args.veth:
        bad = [c for c in want if c not in VETH_CASES]
        if bad and args.cases != ap.get_default("cases"):
            sys.exit(f"bench: --veth runs only the cases {','.join(VETH_CASES)}, not {','.join(bad)}")
        want = [c for c in want if c in VETH_CASES]
        if os.geteuid() != 0:
            sys.exit("bench: --veth needs root (network namespaces, tc, bpf)")
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled") as f:
                bpf_stats_old = f.read().strip()
        except OSError:
            bpf_stats_old = None
        try:
            veth_up()
        except Exception:
            veth_down()
            raise
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="turnstone-bench.")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp}/key.pem",
                    "-out", f"{tmp}/cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def on_signal(sig, frm):
        for p in list(live):
            stop(p)
        if args.veth:
            veth_down()
        sys.exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    results, direct = [], []
    t_start = time.time()
    try:
        for name, title, full, quick, servers in CASES:
            if name not in want:
                continue
            cargs = quick if args.quick else full
            if not args.turnserver:
                servers = [x for x in servers if x not in (NEW, FAST)]
            if args.veth:
                i = servers.index("turnstone")
                servers = servers[:i + 1] + [EBPF] + servers[i + 1:]
            if args.limits and name in ("hot", "scale"):
                # next to plain turnstone, so load drifts hit all of them alike
                i = servers.index("turnstone")
                servers = servers[:i] + ([BASE] if args.baseline else []) + ["turnstone", LIMITED] + servers[i + 1:]
            log(f"== {title}")
            for i in range(runs):
                for s in servers:
                    try:
                        r = run_one(args, tmp, name, s, cargs)
                    except Exception as e:  # a failed run is reported, not hidden
                        log(f"  run {i + 1} {s}: FAILED: {e}")
                        continue
                    r["run"] = i + 1
                    results.append(r)
                    m, ex = metric(name, r)
                    if name == "mem" and "--allocs" in cargs:
                        want_n = int(cargs.split()[cargs.split().index("--allocs") + 1])
                        if r["ok"] < want_n:
                            log(f"  run {i + 1} {s}: HELD ONLY {r['ok']} OF {want_n} ALLOCATIONS "
                                f"(server fd limit {r['srv_fd_limit']}, tsload fd limit {r['gen_fd_limit']}; "
                                f"see the server log in {tmp})")
                    log(f"  run {i + 1} {s:9s} {fmt(m)} {UNITS[name]}  " +
                        " ".join(f"{k}={fmt(v)}" for k, v in ex.items()))
                if args.veth and name != "ping" and bpf_stats_old is not None and i == runs - 1:
                    # the profile run (EBPF_PROF above), after the last round
                    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                        f.write("1")
                    try:
                        r = run_one(args, tmp, name, EBPF_PROF, cargs)
                        r["run"] = i + 1
                        results.append(r)
                        m, ex = metric(name, r)
                        log(f"  profile {EBPF_PROF} {fmt(m)} {UNITS[name]}  " +
                            " ".join(f"{k}={fmt(v)}" for k, v in ex.items()))
                    except Exception as e:
                        log(f"  profile {EBPF_PROF}: FAILED: {e}")
                    finally:
                        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                            f.write("0")
                if name == "ping":
                    d = direct_ping(args, cargs)
                    direct.append(d)
                    log(f"  run {i + 1} direct    p50 {d['p50_us']} us p99 {d['p99_us']} us")
    finally:
        for p in list(live):
            stop(p)
        if args.veth:
            veth_down()
            if bpf_stats_old is not None:
                with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                    f.write(bpf_stats_old)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"results": results, "direct_ping": direct, "runs": runs, "quick": args.quick, "veth": args.veth,
                   "elapsed_s": time.time() - t_start}, f, indent=1)
    lines, extras, chart = summarize(results, direct)
    text = "\n".join(lines) + "\n\nMedians of the other figures per case and server:\n\n" + "\n".join(extras) + "\n"
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    if chart:
        plot(chart, args.out, args.gnuplot)
    print(text)
    print(f"({runs} run(s) each, {time.time() - t_start:.0f} s; raw results, summary and chart in {args.out})")


if __name__ == "__main__":
    main()
