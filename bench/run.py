#!/usr/bin/env python3
"""turnstone vs coturn vs a bare forwarder, same machine, same run (issues 8, 14).

Called by bench/run.sh (which builds the programs and checks the tools).
Every server is started fresh for every run, on 127.0.0.1 only, in the order
coturn (Debian 4.6.1), coturn 4.17.1 (defaults), coturn 4.17.1 (fast flags),
turnstone, forwarder, then again, ... per case; the 4.17.1 columns only with
--turnserver PATH (a build of coturn 4.17.1, bench/coturn.sh).
Only the processes started here are ever signalled, by PID.
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
COTURNS = ("coturn", NEW, FAST)
LABELS = {"coturn": "coturn 4.6.1 (Debian)", NEW: "coturn 4.17.1", FAST: "coturn 4.17.1 fast",
          "turnstone": "turnstone", "forwarder": "forwarder"}
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


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_DGRAM, both=True):
    """A port free on 127.0.0.1 for UDP and TCP."""
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
                s.sendto(req, ("127.0.0.1", port))
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
            socket.create_connection(("127.0.0.1", port), 0.2).close()
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
        cmd = [args.turnserver if name != "coturn" else args.debian_turnserver, "-n", "--listening-ip=127.0.0.1", f"--listening-port={port}",
               f"--tls-listening-port={tls}", f"--alt-listening-port={alt}",
               f"--alt-tls-listening-port={alttls}", "--relay-ip=127.0.0.1",
               f"--min-port={MIN_PORT}", f"--max-port={MAX_PORT}", f"--realm={REALM}",
               f"--user={USER}:{PASS}", "--lt-cred-mech", f"--relay-threads={THREADS}",
               "--allow-loopback-peers", "--no-cli", "--no-dtls", f"--cert={tmp}/cert.pem",
               f"--pkey={tmp}/key.pem", f"--log-file={tmp}/coturn-server.log", "--simple-log",
               "--no-stdout-log", f"--pidfile={tmp}/coturn.pid", f"--userdb={tmp}/turndb"]
        if name == FAST:
            # the shared relay sockets bind --multiplex-peer-port + 0..3
            cmd += FAST_ARGS + [f"--multiplex-peer-port={MP_PORT}"]
    elif name in ("turnstone", LIMITED, BASE):
        tls = free_port()
        cmd = [args.baseline if name == BASE else args.turnstone, "--listening-ip=127.0.0.1", f"--listening-port={port}",
               f"--tls-listening-port={tls}", "--relay-ip=127.0.0.1", f"--min-port={MIN_PORT}",
               f"--max-port={MAX_PORT}", f"--realm={REALM}", f"--user={USER}:{PASS}",
               f"--relay-threads={THREADS}", "--allow-loopback-peers", "--rfc5766-channels",
               f"--cert={tmp}/cert.pem", f"--pkey={tmp}/key.pem", "--no-signaling",
               f"--log-file={tmp}/turnstone-server.log"]
        if name == LIMITED:
            cmd += LIMIT_ARGS + [f"--prometheus-ip=127.0.0.1", f"--prometheus-port={free_port(socket.SOCK_STREAM)}"]
    else:
        tls = None
        cmd = [args.fwd, "-l", "127.0.0.1", "-p", str(port), "-e", f"127.0.0.1:{peer}",
               "-t", str(THREADS)] + (["-T"] if tcp else [])
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
        cmd = [args.tsload, "--server", f"127.0.0.1:{tls if proto_tls else port}",
               "--peer", f"127.0.0.1:{peer}", "--pid", str(p.pid),
               "--mode", "raw" if server == "forwarder" else "turn"] + cargs.split()
        if server == FAST:
            # --multiplex-peer demultiplexes by peer IP:port on one socket per
            # thread: every allocation needs a peer of its own
            cmd += ["--peer-ips", cargs.split()[cargs.split().index("--allocs") + 1]
                    if "--allocs" in cargs else "64"]
        srv_fd_limit = fd_limit(p.pid)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
        err = r.stderr.decode(errors="replace").strip()
        if err:
            log(f"    tsload: {err.splitlines()[0]}" + (f" (+{len(err.splitlines()) - 1} lines)"
                                                       if len(err.splitlines()) > 1 else ""))
        res = json.loads(r.stdout.decode().strip().splitlines()[-1])
        if p.poll() is not None:
            raise RuntimeError(f"{server} exited during the run")
    finally:
        stop(p)
    res["server"], res["bench_case"] = server, case
    res["srv_fd_limit"], res["gen_fd_limit"] = srv_fd_limit, resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return res


def direct_ping(args, cargs):
    peer = free_port()
    cmd = [args.tsload, "--server", "127.0.0.1:9", "--peer", f"127.0.0.1:{peer}", "--mode", "direct"] + cargs.split()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=120)
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


# ---- figures ---------------------------------------------------------------

def metric(case, r):
    """(main figure, dict of extra figures) of one run."""
    if r["bench_case"] in ("hot", "scale", "sat", "tcp", "tls"):
        relayed = r["peer_rx"] + r["recv"]
        cpu = r["srv_user_s"] + r["srv_sys_s"]
        loss = 100.0 * (r["sent"] - r["recv"]) / r["sent"] if r["sent"] else 100.0
        ex = {"us_user": 1e6 * r["srv_user_s"] / max(relayed, 1), "us_sys": 1e6 * r["srv_sys_s"] / max(relayed, 1),
              "loss_pct": loss, "relayed_kpps": relayed / r["duration_s"] / 1e3,
              "offered_kpps": r["sent"] / r["duration_s"] / 1e3,
              "gen_cpu_pct": 100.0 * r["gen_cpu_s"] / r["wall_s"],
              "pkts_per_cpu_s": relayed / cpu if cpu > 0 else 0, "ready": r["ready"]}
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


def summarize(results, direct):
    lines = []
    lines.append("| case | figure | " + " | ".join(LABELS[s] for s in SERVERS) +
                 " | turnstone/coturn 4.17.1 | turnstone/coturn 4.17.1 fast | turnstone/coturn 4.6.1 "
                 "| turnstone/forwarder |")
    lines.append("|---" * (len(SERVERS) + 6) + "|")
    limited = []
    extras = []
    chart = []
    for name, title, _, _, servers in CASES:
        main = {}
        ex = {}
        for s in SERVERS + [LIMITED, BASE]:
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

        lines.append(f"| {title} | {UNITS[name]} | " + " | ".join(cell(s) for s in SERVERS) +
                     f" | {ratio('turnstone', NEW)} | {ratio('turnstone', FAST)} | {ratio('turnstone', 'coturn')} | "
                     f"{ratio('turnstone', 'forwarder')} |")
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
    args = ap.parse_args()
    if args.replot:
        with open(os.path.join(args.out, "results.json")) as f:
            saved = json.load(f)
        lines, extras, chart = summarize(saved["results"], saved["direct_ping"])
        text = "\n".join(lines) + "\n\nMedians of the other figures per case and server:\n\n" + "\n".join(extras) + "\n"
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(text)
        plot(chart, args.out, args.gnuplot)
        print(text)
        return
    runs = args.runs or (1 if args.quick else 3)
    want = args.cases.split(",")
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="turnstone-bench.")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp}/key.pem",
                    "-out", f"{tmp}/cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def on_signal(sig, frm):
        for p in list(live):
            stop(p)
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
                if name == "ping":
                    d = direct_ping(args, cargs)
                    direct.append(d)
                    log(f"  run {i + 1} direct    p50 {d['p50_us']} us p99 {d['p99_us']} us")
    finally:
        for p in list(live):
            stop(p)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"results": results, "direct_ping": direct, "runs": runs, "quick": args.quick,
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
