#!/usr/bin/env python3
"""Server-level tests of credentials from Redis and the TURN REST API
(docs/redis.md): users and secrets written by turnstone-admin (and coturn's
turnadmin) authenticate in the running server, deletions and expiries end
sessions, kill messages reach every worker of every server, and a Redis
outage gives 500 quickly without disturbing existing relays.  Speaks TAP.

Every case starts its own turnstone server(s) on 127.0.0.1 with free random
ports and stops them (checked: clean exit, no sanitizer report) at its end.
Redis: a private redis-server on a random loopback port, no persistence, in
a temp dir (one shared by most cases, its own for the outage case).

Network rule: everything is on 127.0.0.1; peers are this script's own UDP
sockets or turnutils_peer on 127.0.0.1.

Environment: TURNSTONE_BIN, TOP_SRCDIR, TOP_BUILDDIR (as set by make check);
TURNSTONE_ADMIN_BIN overrides $TOP_BUILDDIR/src/turnstone-admin.
Tools needed: redis-server, turnutils_uclient, turnutils_peer, turnadmin.
"""

import atexit
import base64
import glob
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import adminhttp as ah  # noqa: E402
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()

CACHE_TTL = 1  # --auth-cache-ttl used unless a case says otherwise


# ---------------------------------------------------------------- tools

def need_tool(name):
    p = shutil.which(name)
    if p is None:
        raise AssertionError("required tool '%s' not found on PATH" % name)
    return p


def admin_bin():
    b = os.environ.get("TURNSTONE_ADMIN_BIN")
    if not b:
        build = os.environ.get("TOP_BUILDDIR") or os.path.join(_top, "build")
        b = os.path.join(build, "src", "turnstone-admin")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        raise AssertionError("turnstone-admin not built at %s" % b)
    return b


def _pdeathsig():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


# Processes this script started itself (redis-server, turnutils_peer):
# stopped by PID at exit.
_procs = []
_tmpdirs = []


def _cleanup():
    for p in list(_procs):
        stop_proc(p)
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def stop_proc(p, sig=signal.SIGTERM, grace=5.0):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        except ProcessLookupError:
            pass
    if p in _procs:
        _procs.remove(p)
    return p.returncode


# ---------------------------------------------------------------- redis

class RedisError(Exception):
    pass


def resp_cmd(port, *args, timeout=2.0):
    """One command to the redis on 127.0.0.1:port (RESP); returns the reply
    (str, int, list, None).  Raises OSError / RedisError."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else bytes(a)
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(out)
        f = s.makefile("rb")

        def read():
            line = f.readline()
            if not line.endswith(b"\r\n"):
                raise RedisError("connection closed mid-reply")
            t, rest = line[:1], line[1:-2]
            if t == b"+":
                return rest.decode()
            if t == b"-":
                raise RedisError(rest.decode())
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                d = f.read(n + 2)
                return d[:-2].decode("utf-8", "replace")
            if t == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            raise RedisError("bad reply type %r" % t)
        return read()
    finally:
        s.close()


class Redis:
    """A private redis-server on 127.0.0.1 (random free port unless given)."""

    def __init__(self):
        need_tool("redis-server")
        self.dir = tempfile.mkdtemp(prefix="turnstone-redis-")
        _tmpdirs.append(self.dir)
        self.port = None
        self.proc = None

    def start(self, port=None):
        self.port = port or tc.free_udp_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_pdeathsig)
        _procs.append(self.proc)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                if resp_cmd(self.port, "PING", timeout=0.5) == "PONG":
                    return self
            except (OSError, RedisError):
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server on port %d did not come up; log:\n%s"
                           % (self.port, self.log()))

    def stop(self):
        """SIGTERM, wait for the exit.  Returns the exit status."""
        rc = stop_proc(self.proc)
        self.proc = None
        return rc

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def cmd(self, *args):
        return resp_cmd(self.port, *args)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    @property
    def conninfo(self):
        return "ip=127.0.0.1 port=%d dbname=0" % self.port


_shared = None


def shared_redis():
    global _shared
    if _shared is None:
        _shared = Redis().start()
    return _shared


def admin(redis, realm, *args, json_out=False, ok=True):
    """Run turnstone-admin --redis URL --realm REALM [--json] ARGS.
    Returns (rc, stdout, stderr); with ok=True a non-zero exit fails."""
    cmd = [admin_bin(), "--redis", redis.url, "--realm", realm]
    if json_out:
        cmd.append("--json")
    cmd += list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if ok and p.returncode != 0:
        raise AssertionError("turnstone-admin %s: exit %d\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.returncode, out, err))
    return p.returncode, out, err


def admin_json(redis, realm, *args):
    _, out, err = admin(redis, realm, *args, json_out=True)
    try:
        return json.loads(out)
    except ValueError:
        raise AssertionError("turnstone-admin --json %s: not JSON: %r (stderr %r)"
                             % (" ".join(args), out, err))


# ---------------------------------------------------------------- server

def start_server(realm, redis, extra=(), cache_ttl=CACHE_TTL):
    srv = tc.Server(realm=realm, users=(), allow_loopback=True,
                    extra=["--redis-userdb=%s" % redis.conninfo,
                           "--auth-cache-ttl=%d" % cache_ttl] + list(extra))
    srv.start()
    return srv


def sanitizer_files(pid):
    build = os.environ.get("TOP_BUILDDIR")
    if not build:
        return []
    return glob.glob(os.path.join(build, "sanitizer", "*san.%d*" % pid))


def stop_server_checked(srv):
    """SIGTERM; the server must exit within 5 s with status 0 (or by
    SIGTERM) and leave no sanitizer report."""
    pid = srv.proc.pid if srv.proc is not None else None
    was_alive = srv.alive()
    rc = srv.stop()
    problems = []
    if not was_alive:
        problems.append("server had already exited (status %s)" % rc)
    elif srv.needed_kill:
        problems.append("server still running 5 s after SIGTERM")
    elif rc not in (0, -signal.SIGTERM):
        problems.append("server exit status %s after SIGTERM" % rc)
    rep = srv.sanitizer_report()
    if rep:
        problems.append("sanitizer report in the log:\n" + "\n".join(rep[:20]))
    for f in sanitizer_files(pid) if pid else []:
        with open(f, errors="replace") as fh:
            problems.append("sanitizer report %s:\n%s" % (f, fh.read()[:4000]))
    if problems:
        raise AssertionError("; ".join(problems) + "\nserver log (tail):\n" + log_tail(srv))


def log_tail(srv, n=60):
    return "\n".join(srv.log_text().splitlines()[-n:])


_late_diag = []  # printed after the current case's TAP line


class Servers:
    """Context manager: the servers a case started; on success they are
    stopped and checked, on failure stopped and their logs shown."""

    def __init__(self):
        self.list = []

    def add(self, srv):
        self.list.append(srv)
        return srv

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            for s in self.list:
                s.stop()
                _late_diag.append("---- server log %s (tail) ----\n%s" % (s.logf.name, log_tail(s)))
            return False
        for s in self.list:
            stop_server_checked(s)
        return False


# ---------------------------------------------------------------- relay helpers

def rest_password(secret, username):
    return base64.b64encode(hmac.new(secret.encode(), username.encode(),
                                     hashlib.sha1).digest()).decode()


def rest_cred(secret, userid, expiry, sep=":"):
    u = "%d%s%s" % (expiry, sep, userid)
    return u, rest_password(secret, u)


def peer_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def drain(sock):
    sock.settimeout(0)
    try:
        while True:
            sock.recvfrom(65535)
    except (BlockingIOError, socket.timeout, ConnectionRefusedError, OSError):
        pass


def expect_success(resp, what):
    check(resp.cls == tc.SUCCESS, "%s: expected success, got %r" % (what, resp))


def expect_error(resp, code, what):
    check(resp.cls == tc.ERROR and resp.error_code() == code,
          "%s: expected error %d, got %r" % (what, code, resp))


def allocate(srv, user, password):
    """A new client (new 5-tuple) that allocates; returns (client, response)."""
    c = tc.TurnClient(srv.addr, user, password)
    r = c.allocate()
    return c, r


def allocated(srv, user, password, peer):
    """Allocate, CreatePermission for peer, check relaying both ways."""
    c, r = allocate(srv, user, password)
    expect_success(r, "Allocate as %s" % user)
    check(r.check_integrity(c.key), "Allocate success for %s: MESSAGE-INTEGRITY does not "
          "verify with MD5(user:realm:password)" % user)
    expect_success(c.create_permission(peer.getsockname()), "CreatePermission as %s" % user)
    relay_works(c, peer, "fresh allocation of %s" % user)
    return c


def relay_works(c, peer, what):
    """Send indication -> the peer gets it from the relayed address; the
    peer's reply -> a Data indication from the peer."""
    drain(peer)
    payload = os.urandom(8).hex().encode()
    c.send_indication(peer.getsockname(), payload)
    peer.settimeout(2.0)
    try:
        data, src = peer.recvfrom(65535)
    except socket.timeout:
        raise AssertionError("%s: the peer got nothing for a Send indication" % what)
    check_eq(data, payload, "%s: payload at the peer" % what)
    check_eq(tuple(src[:2]), tuple(c.relayed), "%s: source at the peer (relayed address)" % what)
    reply = b"re-" + payload
    peer.sendto(reply, tuple(c.relayed))
    got = c.recv_data(2.0)
    check(got is not None, "%s: no Data indication for the peer's reply" % what)
    check_eq(got, ("ind", peer.getsockname(), reply), "%s: Data indication" % what)


def relay_dead(c, peer, what):
    """Neither direction relays any more."""
    drain(peer)
    c.pending = []
    payload = b"after-" + os.urandom(6).hex().encode()
    c.send_indication(peer.getsockname(), payload)
    peer.settimeout(1.0)
    try:
        data, src = peer.recvfrom(65535)
        raise AssertionError("%s: a Send indication was still relayed (peer got %r from %s)"
                             % (what, data, src))
    except (socket.timeout, ConnectionRefusedError):
        pass
    try:
        peer.sendto(b"to-dead-relay", tuple(c.relayed))
    except ConnectionRefusedError:
        pass
    got = c.recv_data(1.0)
    check(got is None, "%s: the relayed address still delivers to the client: %r" % (what, got))


def gone_by_437(srv, c, user, password, what):
    """The allocation on c's 5-tuple no longer exists: an authenticated
    CreatePermission on it (with valid credentials user/password) -> 437."""
    # same socket (5-tuple) as c, fresh credentials and nonce
    c.username, c.password, c.key, c.nonce = user, password, None, None
    r = c.probe_401(tc.CREATE_PERMISSION, [tc.Attr.xor_peer("127.0.0.1", 9)])
    expect_error(r, 401, what + ": unauthenticated probe")
    r = c.create_permission(("127.0.0.1", 9))
    expect_error(r, 437, what + ": CreatePermission on the old 5-tuple")


# ---------------------------------------------------------------- cases

@tap.case("user from 'turnstone-admin user add' allocates; wrong password and unknown user -> 401")
def t_user_add():
    R = shared_redis()
    realm = "users.test"
    admin(R, realm, "user", "add", "alice", "--password", "al1ce pw")
    with Servers() as S:
        srv = S.add(start_server(realm, R))
        peer = peer_socket()
        c = allocated(srv, "alice", "al1ce pw", peer)
        c.close()
        c, r = allocate(srv, "alice", "wrong")
        expect_error(r, 401, "Allocate with a wrong password")
        check(not r.has(tc.XOR_RELAYED_ADDRESS), "401 carries XOR-RELAYED-ADDRESS")
        c.close()
        c, r = allocate(srv, "nobody", "al1ce pw")
        expect_error(r, 401, "Allocate as an unknown user")
        c.close()
        peer.close()


@tap.case("user added with --ttl 2 works at once, 401 after TTL + cache TTL")
def t_user_ttl():
    R = shared_redis()
    realm = "ttl.test"
    with Servers() as S:
        srv = S.add(start_server(realm, R))
        admin(R, realm, "user", "add", "temp", "--password", "pw", "--ttl", "2")
        t0 = time.monotonic()
        c, r = allocate(srv, "temp", "pw")
        expect_success(r, "Allocate right after 'user add --ttl 2'")
        c.close()
        time.sleep(max(0, t0 + 2 + CACHE_TTL + 0.6 - time.monotonic()))
        check_eq(R.cmd("EXISTS", "turn/realm/%s/user/temp/key" % realm), 0,
                 "the key has expired in Redis")
        c, r = allocate(srv, "temp", "pw")
        expect_error(r, 401, "Allocate %.1f s after 'user add --ttl 2'" % (time.monotonic() - t0))
        c.close()


@tap.case("user del: new Allocate -> 401; Refresh on the existing allocation -> 401 and it is gone")
def t_user_del():
    R = shared_redis()
    realm = "del.test"
    admin(R, realm, "user", "add", "dora", "--password", "pw-d")
    with Servers() as S:
        srv = S.add(start_server(realm, R))
        peer = peer_socket()
        c = allocated(srv, "dora", "pw-d", peer)
        admin(R, realm, "user", "del", "dora")
        time.sleep(CACHE_TTL + 0.5)
        c2, r = allocate(srv, "dora", "pw-d")
        expect_error(r, 401, "new Allocate after 'user del'")
        c2.close()
        r = c.refresh()
        expect_error(r, 401, "Refresh after 'user del'")
        relay_dead(c, peer, "allocation after a refused Refresh")
        # re-create the user: the 5-tuple must have no allocation now
        admin(R, realm, "user", "add", "dora", "--password", "pw-d")
        gone_by_437(srv, c, "dora", "pw-d", "after the refused Refresh")
        c.close()
        peer.close()


def run_uclient(srv, user, password, peer_port):
    """turnutils_uclient with channels against srv; returns (ok, diag)."""
    need_tool("turnutils_uclient")
    p = subprocess.run(
        ["timeout", "60", "turnutils_uclient", "-u", user, "-w", password,
         "-r", str(peer_port), "-e", "127.0.0.1", "-p", str(srv.port),
         "-n", "20", "-m", "1", "-l", "100", "127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    out = p.stdout.decode(errors="replace")
    sent = recv = None
    for line in out.splitlines():
        if "tot_send_msgs=" in line:
            try:
                part = line.split("tot_send_msgs=")[1]
                sent = int(part.split(",")[0])
                recv = int(part.split("tot_recv_msgs=")[1].split()[0].rstrip(","))
            except (IndexError, ValueError):
                pass
    ok = p.returncode == 0 and sent is not None and sent > 0 and recv == sent
    return ok, "turnutils_uclient -u %s: exit %d, sent %s, received %s\n%s" % (
        user, p.returncode, sent, recv, "\n".join(out.splitlines()[-25:]))


def start_echo_peer():
    """turnutils_peer (UDP echo) on 127.0.0.1:free port, checked to echo."""
    need_tool("turnutils_peer")
    port = tc.free_udp_port()
    p = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(port)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=_pdeathsig)
    _procs.append(p)
    s = peer_socket()
    s.settimeout(0.2)
    try:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            s.sendto(b"echo-probe", ("127.0.0.1", port))
            try:
                d, _ = s.recvfrom(2048)
                if d == b"echo-probe":
                    return p, port
            except (socket.timeout, ConnectionRefusedError):
                pass
    finally:
        s.close()
    stop_proc(p)
    raise AssertionError("turnutils_peer on 127.0.0.1:%d does not echo" % port)


@tap.case("REST API: admin credential (turnclient and turnutils_uclient), expired -> 401, "
          "static + Redis secrets, secret del revokes only its credentials")
def t_rest():
    R = shared_redis()
    realm = "rest.test"
    static, dyn = "static-secret-1", "redis-secret-2"
    admin(R, realm, "secret", "add", dyn)
    echo, echo_port = start_echo_peer()
    with Servers() as S:
        srv = S.add(start_server(realm, R, extra=[
            "--use-auth-secret", "--static-auth-secret=%s" % static, "--rfc5766-channels"]))
        now = int(time.time())
        j = admin_json(R, realm, "credential", "web42", "--ttl", "600")
        user, pw = j.get("username"), j.get("password")
        check(isinstance(user, str) and isinstance(pw, str),
              "credential --json lacks username/password: %r" % j)
        exp, _, uid = user.partition(":")
        check(uid == "web42" and exp.isdigit() and now + 595 <= int(exp) <= now + 610,
              "credential username %r is not <now+600>:web42" % user)
        check_eq(pw, rest_password(dyn, user), "credential password (signed with the Redis secret)")
        peer = peer_socket()
        c = allocated(srv, user, pw, peer)
        c.close()
        ok, why = run_uclient(srv, user, pw, echo_port)
        check(ok, "REST credential with turnutils_uclient failed: " + why)
        # the static secret works too, and so does one made here with the Redis secret
        su, sp = rest_cred(static, "web43", now + 600)
        c = allocated(srv, su, sp, peer)
        c.close()
        du, dp = rest_cred(dyn, "web44", now + 600)
        c = allocated(srv, du, dp, peer)
        c.close()
        # expired (with either secret), wrong secret
        for sec, name in ((static, "static"), (dyn, "Redis")):
            eu, ep = rest_cred(sec, "bob", int(time.time()) - 10)
            c, r = allocate(srv, eu, ep)
            expect_error(r, 401, "Allocate with an expired credential (%s secret)" % name)
            c.close()
        xu, xp = rest_cred("not-a-secret", "bob", now + 600)
        c, r = allocate(srv, xu, xp)
        expect_error(r, 401, "Allocate with a credential signed by an unknown secret")
        c.close()
        # revoke the Redis secret: its credentials stop working, the static one's do not
        admin(R, realm, "secret", "del", dyn)
        time.sleep(CACHE_TTL + 0.5)
        for u, p, name in ((user, pw, "turnstone-admin's"), (du, dp, "own")):
            c, r = allocate(srv, u, p)
            expect_error(r, 401, "Allocate with %s credential of the deleted Redis secret" % name)
            c.close()
        su, sp = rest_cred(static, "web45", int(time.time()) + 600)
        c = allocated(srv, su, sp, peer)
        c.close()
        peer.close()
    stop_proc(echo)


@tap.case("REST credential expiring in ~3 s: Refresh after expiry -> 401 and the allocation is gone")
def t_rest_expiry():
    R = shared_redis()
    realm = "expiry.test"
    static = "expiry-secret"
    with Servers() as S:
        srv = S.add(start_server(realm, R, extra=[
            "--use-auth-secret", "--static-auth-secret=%s" % static]))
        expiry = int(time.time()) + 3
        u, p = rest_cred(static, "carol", expiry)
        peer = peer_socket()
        c = allocated(srv, u, p, peer)
        expect_success(c.refresh(), "Refresh before the expiry")
        while time.time() < expiry + 1.2:
            time.sleep(0.1)
        r = c.refresh()
        expect_error(r, 401, "Refresh %.1f s after the credential's expiry" % (time.time() - expiry))
        relay_dead(c, peer, "allocation after the expired credential's Refresh")
        u2, p2 = rest_cred(static, "carol", int(time.time()) + 600)
        gone_by_437(srv, c, u2, p2, "after the expired credential's Refresh (fresh credential)")
        c.close()
        peer.close()


@tap.case("Redis killed: existing allocation relays, new Allocate -> 500 within 1.5 s; "
          "Redis back on the same port -> Allocate and kill work again without a restart")
def t_redis_down():
    R = Redis().start()  # its own: this case stops and restarts it
    realm = "outage.test"
    admin(R, realm, "user", "add", "alice", "--password", "pw-a")
    admin(R, realm, "user", "add", "dave", "--password", "pw-d")
    with Servers() as S:
        srv = S.add(start_server(realm, R))
        peer = peer_socket()
        c = allocated(srv, "alice", "pw-a", peer)
        rc = R.stop()
        check(rc in (0, -signal.SIGTERM), "redis-server exit status %s after SIGTERM" % rc)
        relay_works(c, peer, "existing allocation right after the Redis kill")
        # dave was never looked up, so nothing is cached for him
        d = tc.TurnClient(srv.addr, "dave", "pw-d")
        expect_error(d.probe_401(), 401, "unauthenticated Allocate (no Redis needed)")
        t0 = time.monotonic()
        r, _ = d.request(tc.ALLOCATE, [tc.Attr.requested_transport()])
        dt = time.monotonic() - t0
        tap.diag("Allocate while Redis is down: %r after %.3f s" % (r, dt))
        expect_error(r, 500, "Allocate for a Redis user while Redis is down")
        check(dt < 1.5, "500 took %.3f s (want < 1.5 s)" % dt)
        d.close()
        time.sleep(1.0)
        relay_works(c, peer, "existing allocation 1 s into the outage")
        # Redis back on the same port, empty: re-add the user
        R.start(R.port)
        t0 = time.monotonic()
        admin(R, realm, "user", "add", "dave", "--password", "pw-d")
        last = None
        while time.monotonic() < t0 + 8:
            d, r = allocate(srv, "dave", "pw-d")
            d.close()
            last = r
            if r.is_success():
                break
            time.sleep(0.2)
        dt = time.monotonic() - t0
        tap.diag("after the Redis restart: %r after %.1f s" % (last, dt))
        expect_success(last, "Allocate within 8 s of the Redis restart")
        relay_works(c, peer, "existing allocation after the Redis restart")
        # the kill channel is subscribed again, and a kill works
        wait_numsub(R, "turnstone/realm/%s/kill" % realm, 2, timeout=8)
        j = admin_json(R, realm, "session", "kill", "alice")
        check_eq(j.get("receivers"), 2, "workers reached by a kill after the restart (%r)" % j)
        time.sleep(0.5)
        relay_dead(c, peer, "alice's allocation after a kill sent after the Redis restart")
        c.close()
        peer.close()
    R.stop()


def wait_numsub(R, channel, want, timeout=5.0):
    end = time.monotonic() + timeout
    n = None
    while time.monotonic() < end:
        r = R.cmd("PUBSUB", "NUMSUB", channel)
        n = int(r[1])
        if n == want:
            return n
        time.sleep(0.05)
    raise AssertionError("%s has %s subscribers after %.0f s, want %d (one per worker)"
                         % (channel, n, timeout, want))


@tap.case("two servers sharing Redis: 'session kill alice' ends alice's allocations (plain and "
          "REST user id) on both within 1 s, bob's untouched")
def t_kill_two_servers():
    R = shared_redis()
    realm = "kill.test"
    secret = "kill-secret"
    admin(R, realm, "user", "add", "alice", "--password", "pw-a")
    admin(R, realm, "user", "add", "bob", "--password", "pw-b")
    extra = ["--use-auth-secret", "--static-auth-secret=%s" % secret]
    with Servers() as S:
        s1 = S.add(start_server(realm, R, extra=extra))
        s2 = S.add(start_server(realm, R, extra=extra))
        check(s1.port != s2.port, "the two servers got the same port")
        chan = "turnstone/realm/%s/kill" % realm
        wait_numsub(R, chan, 4)  # 2 servers x --relay-threads=2
        peer = peer_socket()
        exp = int(time.time()) + 600
        ra = rest_cred(secret, "alice", exp)
        rb = rest_cred(secret, "bob", exp)
        alice = [(s, allocated(s, "alice", "pw-a", peer), "alice on server %d" % (i + 1))
                 for i, s in enumerate((s1, s2))]
        alice += [(s, allocated(s, ra[0], ra[1], peer), "%s on server %d" % (ra[0], i + 1))
                  for i, s in enumerate((s1, s2))]
        bob = [(s, allocated(s, "bob", "pw-b", peer), "bob on server %d" % (i + 1))
               for i, s in enumerate((s1, s2))]
        bob += [(s, allocated(s, rb[0], rb[1], peer), "%s on server %d" % (rb[0], i + 1))
                for i, s in enumerate((s1, s2))]
        t0 = time.monotonic()
        j = admin_json(R, realm, "session", "kill", "alice")
        check_eq(j.get("receivers"), 4, "workers reached by the kill (%r)" % j)
        pending = list(alice)
        last = {}
        while pending and time.monotonic() < t0 + 1.0:
            for item in list(pending):
                r = item[1].create_permission(peer.getsockname())
                last[item[2]] = r
                if r.cls == tc.ERROR and r.error_code() == 437:
                    pending.remove(item)
            if pending:
                time.sleep(0.05)
        dt = time.monotonic() - t0
        check(not pending, "allocation(s) still there %.2f s after 'session kill alice': %s"
              % (dt, "; ".join("%s: last CreatePermission %r" % (w, last.get(w))
                               for _, _, w in pending)))
        tap.diag("alice's allocations (plain and REST) on both servers gone %.2f s after the kill"
                 % dt)
        for _, c, what in bob:
            expect_success(c.create_permission(peer.getsockname()),
                           "CreatePermission of %s after alice's kill" % what)
            relay_works(c, peer, "%s after alice's kill" % what)
        for _, c, _ in alice + bob:
            c.close()
        peer.close()


@tap.case("user del --kill ends the user's allocation at once (no request needed)")
def t_user_del_kill():
    R = shared_redis()
    realm = "delkill.test"
    admin(R, realm, "user", "add", "mallory", "--password", "pw-m")
    admin(R, realm, "user", "add", "trent", "--password", "pw-t")
    with Servers() as S:
        srv = S.add(start_server(realm, R))
        wait_numsub(R, "turnstone/realm/%s/kill" % realm, 2)
        peer = peer_socket()
        m = allocated(srv, "mallory", "pw-m", peer)
        t = allocated(srv, "trent", "pw-t", peer)
        j = admin_json(R, realm, "user", "del", "mallory", "--kill")
        check(j.get("deleted") is True and j.get("kill_receivers") == 2,
              "user del --kill --json: %r (want deleted, 2 receivers)" % j)
        time.sleep(0.5)
        # only data, no authenticated request: the kill alone ended it
        relay_dead(m, peer, "mallory's allocation 0.5 s after 'user del mallory --kill'")
        relay_works(t, peer, "trent's allocation after mallory's kill")
        admin(R, realm, "user", "add", "mallory", "--password", "pw-m")
        gone_by_437(srv, m, "mallory", "pw-m", "after 'user del --kill'")
        m.close()
        t.close()
        peer.close()


@tap.case("auth cache: --auth-cache-ttl=5 answers from the cache after a password change until "
          "a kill drops the entry; --auth-cache-ttl=0 does not cache")
def t_cache():
    R = shared_redis()
    realm = "cache.test"
    admin(R, realm, "user", "add", "alice", "--password", "old-pw")
    with Servers() as S:
        srv = S.add(start_server(realm, R, cache_ttl=5))
        wait_numsub(R, "turnstone/realm/%s/kill" % realm, 2)
        c = tc.TurnClient(srv.addr, "alice", "old-pw")
        expect_success(c.allocate(), "Allocate with the old password")
        t0 = time.monotonic()
        admin(R, realm, "user", "add", "alice", "--password", "new-pw")
        r = c.refresh()  # same 5-tuple, same worker: its cached key
        dt = time.monotonic() - t0
        check(dt < 4, "too slow to test the cache (%.1f s)" % dt)
        expect_success(r, "Refresh with the old password %.2f s after the change (cached key)" % dt)
        admin(R, realm, "session", "kill", "alice")
        time.sleep(0.3)
        # the kill ended the allocation and dropped the cached key
        r = c.allocate()
        expect_error(r, 401, "Allocate with the old password after the kill (cache entry dropped)")
        c.username, c.password, c.key, c.nonce = "alice", "new-pw", None, None
        expect_success(c.allocate(), "Allocate with the new password on the same 5-tuple after "
                       "the kill (the old allocation is gone)")
        c.close()
    realm = "nocache.test"
    admin(R, realm, "user", "add", "alice", "--password", "old-pw")
    with Servers() as S:
        srv = S.add(start_server(realm, R, cache_ttl=0))
        c = tc.TurnClient(srv.addr, "alice", "old-pw")
        expect_success(c.allocate(), "Allocate with the old password (no cache)")
        admin(R, realm, "user", "add", "alice", "--password", "new-pw")
        expect_error(c.refresh(), 401, "Refresh with the old password right after the change "
                     "with --auth-cache-ttl=0")
        c.username, c.password, c.key, c.nonce = "alice", "new-pw", None, None
        expect_success(c.refresh(), "Refresh with the new password (allocation kept: a wrong "
                       "password is not a deleted user)")
        c.close()


@tap.case("user written by coturn's turnadmin -a authenticates; a wrong password does not")
def t_turnadmin():
    need_tool("turnadmin")
    R = shared_redis()
    realm = "coturn.test"
    p = subprocess.run(["turnadmin", "-a", "-N", R.conninfo, "-u", "erin", "-r", realm,
                        "-p", "pw-e"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    check(p.returncode == 0, "turnadmin -a: exit %d\n%s" % (p.returncode, p.stdout.decode(
        errors="replace")[-2000:]))
    with Servers() as S:
        srv = S.add(start_server(realm, R))
        peer = peer_socket()
        c = allocated(srv, "erin", "pw-e", peer)
        c.close()
        c, r = allocate(srv, "erin", "pw-x")
        expect_error(r, 401, "Allocate as erin with a wrong password")
        c.close()
        peer.close()


@tap.case("malformed --redis-userdb -> exit 2 with a message naming redis-userdb")
def t_bad_conninfo():
    bad = ["ip=127.0.0.1 port=notaport", "ip=127.0.0.1 port=70000",
           "redis://127.0.0.1:notaport/0", "rediss://127.0.0.1:6379/0"]
    problems = []
    for v in bad:
        port = tc.free_udp_port()
        args = [tc.turnstone_bin(), "--no-signaling", "--listening-ip=127.0.0.1", "--listening-port=%d" % port,
                "--relay-ip=127.0.0.1", "--realm=bad.test", "--relay-threads=1",
                "--redis-userdb=%s" % v]
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=5, preexec_fn=_pdeathsig)
        except subprocess.TimeoutExpired:
            problems.append("%r: still running after 5 s (killed)" % v)
            continue
        err = p.stderr.decode(errors="replace")
        tap.diag("--redis-userdb=%r: exit %d: %s" % (v, p.returncode, err.strip()))
        if p.returncode != 2 or "redis-userdb" not in err:
            problems.append("%r: exit %d, stderr %r" % (v, p.returncode, err))
    check(not problems, "\n".join(problems))


@tap.case("retransmissions while Redis is slow get the same answer (no second request, no 437)")
def t_retransmit_while_parked():
    R = Redis().start()  # its own: this case stops and continues it
    realm = "retrans.test"
    admin(R, realm, "user", "add", "dave", "--password", "pw-d")
    with Servers() as S:
        srv = S.add(start_server(realm, R, cache_ttl=0))
        d = tc.TurnClient(srv.addr, "dave", "pw-d")
        expect_error(d.probe_401(), 401, "unauthenticated Allocate")
        raw, tid = tc.build(tc.ALLOCATE, tc.REQUEST,
                            [tc.Attr.requested_transport(), tc.Attr.username("dave"),
                             tc.Attr.realm(d.realm), tc.Attr.nonce(d.nonce)], key=d.key)
        os.kill(R.proc.pid, signal.SIGSTOP)
        try:
            d.sendraw(raw)
            time.sleep(0.3)
            d.sendraw(raw)  # retransmission while the first copy waits for Redis
            time.sleep(0.3)
        finally:
            os.kill(R.proc.pid, signal.SIGCONT)
        answers = []
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            data = d.recvraw(end - time.monotonic())
            if data is None:
                break
            if tc.is_stun(data) and data[8:20] == tid:
                answers.append(tc.parse(data))
        tap.diag("answers to the parked Allocate: %r" % answers)
        check(len(answers) >= 1, "no answer to the Allocate once Redis continued")
        for a in answers:
            expect_success(a, "every answer to the parked Allocate and its retransmission")
        # a late retransmission is served from the allocation's cache
        r = d.transact(raw, tid)
        expect_success(r, "late retransmission of the same Allocate")
        d.close()
    R.stop()


@tap.case("metrics: Redis connected, requests and latency move; Redis down -> errors count, "
          "/ready 503 naming Redis; back up -> /ready 200")
def t_redis_metrics():
    R = Redis().start()  # its own: this case stops and restarts it
    realm = "metrics.test"
    admin(R, realm, "user", "add", "erin", "--password", "pw-e")
    admin(R, realm, "user", "add", "fred", "--password", "pw-f")
    aport = tc.free_udp_port()
    with Servers() as S:
        srv = S.add(start_server(realm, R, extra=["--prometheus", "--prometheus-port=%d" % aport],
                                 cache_ttl=0))
        ah.wait_admin(aport)

        def ready_when(want, timeout=10.0):
            end = time.monotonic() + timeout
            while True:
                st, _, body = ah.request(aport, "GET", "/ready")
                if st == want or time.monotonic() > end:
                    return st, body
                time.sleep(0.1)
        st, body = ready_when(200)
        check_eq((st, body), (200, "ready\n"), "/ready with Redis up")
        m1, _, _ = ah.scrape(aport)
        check_eq(m1["turnstone_redis_clients"], 2, "Redis clients (one per worker)")
        check_eq(m1["turnstone_redis_connected"], 2, "connected Redis clients")
        c, r = allocate(srv, "erin", "pw-e")
        expect_success(r, "Allocate for a Redis user")
        m2, _, _ = ah.scrape(aport)
        check(m2["turnstone_redis_requests_total"] > m1["turnstone_redis_requests_total"],
              "Redis requests did not move")
        check(m2["turnstone_redis_request_duration_seconds_count"]
              > m1["turnstone_redis_request_duration_seconds_count"], "latency histogram did not move")
        check(m2["turnstone_redis_request_duration_seconds_sum"] > 0, "latency sum is 0")
        R.stop()
        st, body = ready_when(503)
        check(st == 503 and "redis" in body, "/ready with Redis down: %d %r" % (st, body))
        d = tc.TurnClient(srv.addr, "fred", "pw-f")
        d.probe_401()
        r, _ = d.request(tc.ALLOCATE, [tc.Attr.requested_transport()])
        expect_error(r, 500, "Allocate while Redis is down")
        d.close()
        m3, _, _ = ah.scrape(aport)
        check(m3["turnstone_redis_errors_total"] > m2["turnstone_redis_errors_total"],
              "Redis errors did not move")
        check(m3["turnstone_redis_connected"] < 2, "connected gauge with Redis down")
        check(m3['turnstone_allocate_responses_total{code="500"}'] >= 1, "500 not counted")
        R.start(R.port)
        st, body = ready_when(200, timeout=15.0)
        check_eq((st, body), (200, "ready\n"), "/ready after Redis came back")
        c.close()
    R.stop()


@tap.case("user-quota: a user's plain and REST names share one quota (486), and a session kill "
          "gives the slots back")
def t_quota_kill():
    R = shared_redis()
    realm = "quota.test"
    secret = "quota-secret"
    admin(R, realm, "user", "add", "erin", "--password", "pw-e")
    extra = ["--user-quota=2", "--use-auth-secret", "--static-auth-secret=%s" % secret]
    with Servers() as S:
        srv = S.add(start_server(realm, R, extra=extra))
        wait_numsub(R, "turnstone/realm/%s/kill" % realm, 2)
        peer = peer_socket()
        now = int(time.time())
        r1, r2 = rest_cred(secret, "erin", now + 600), rest_cred(secret, "erin", now + 700)
        a = allocated(srv, "erin", "pw-e", peer)
        b = allocated(srv, r1[0], r1[1], peer)
        c, r = allocate(srv, r2[0], r2[1])
        expect_error(r, 486, "a third allocation of erin (another REST name)")
        c.close()
        admin_json(R, realm, "session", "kill", "erin")
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            r = a.create_permission(peer.getsockname())
            if r.cls == tc.ERROR and r.error_code() == 437:
                break
            time.sleep(0.05)
        expect_error(b.create_permission(peer.getsockname()), 437, "the REST allocation after the kill")
        c, r = allocate(srv, r2[0], r2[1])
        expect_success(r, "erin allocates again after the kill")
        d, r = allocate(srv, "erin", "pw-e")
        expect_success(r, "and a second time")
        for x in (a, b, c, d):
            x.close()
        peer.close()


@tap.case("session kill USER ends the relays of USER's signaling pages (REST id USER.<16 hex>), "
          "not USER.<anything else> nor another user's")
def t_kill_signaling_user():
    R = shared_redis()
    realm = "killsig.test"
    secret = "killsig-secret"
    extra = ["--use-auth-secret", "--static-auth-secret=%s" % secret]
    with Servers() as S:
        srv = S.add(start_server(realm, R, extra=extra))
        wait_numsub(R, "turnstone/realm/%s/kill" % realm, 2)
        peer = peer_socket()
        exp = int(time.time()) + 600
        page = allocated(srv, *rest_cred(secret, "gina.0123456789abcdef", exp), peer=peer)
        other = allocated(srv, *rest_cred(secret, "gina.not-a-peer-id", exp), peer=peer)
        hank = allocated(srv, *rest_cred(secret, "hank.0123456789abcdef", exp), peer=peer)
        admin_json(R, realm, "session", "kill", "gina")
        end = time.monotonic() + 2.0
        r = None
        while time.monotonic() < end:
            r = page.create_permission(peer.getsockname())
            if r.cls == tc.ERROR and r.error_code() == 437:
                break
            time.sleep(0.05)
        expect_error(r, 437, "gina's signaling relay after session kill gina")
        expect_success(other.create_permission(peer.getsockname()), "gina.not-a-peer-id is not gina's page")
        expect_success(hank.create_permission(peer.getsockname()), "hank's signaling relay")
        for x in (page, other, hank):
            x.close()
        peer.close()


def sha256_allocate(srv, realm, user, password):
    """Allocate with PASSWORD-ALGORITHM SHA-256 (RFC 8489 9.2.2) and
    MESSAGE-INTEGRITY-SHA256; returns the response."""
    with tc.TurnClient(srv.addr, user, password) as c:
        r = c.probe_401()
        algs = r.get(tc.PASSWORD_ALGORITHMS)
        key = hashlib.sha256(("%s:%s:%s" % (user, realm, password)).encode()).digest()
        attrs = [tc.Attr.requested_transport(),
                 tc.Attr.raw(tc.PASSWORD_ALGORITHM, struct.pack("!HH", 2, 0)),
                 tc.Attr.raw(tc.PASSWORD_ALGORITHMS, algs),
                 tc.Attr.username(user), tc.Attr.realm(realm), tc.Attr.nonce(r.nonce())]
        raw, tid = tc.build(tc.ALLOCATE, tc.REQUEST, attrs, key=key, sha256=True)
        r = c.transact(raw, tid)
        if r.is_success():
            c.refresh(0)
        return r


@tap.case("SHA-256 keys for Redis users: from .../password (coturn's plain-text field) yes, "
          "from .../key (MD5 only) no; MD5 offered first")
def t_sha256():
    R = shared_redis()
    realm = "sha.test"
    admin(R, realm, "user", "add", "mdfive", "--password", "pw-md5")
    resp_cmd(R.port, "SET", "turn/realm/%s/user/plain/password" % realm, "pw-plain")
    with Servers() as S:
        srv = S.add(start_server(realm, R))
        with tc.TurnClient(srv.addr, "plain", "pw-plain") as c:
            r = c.probe_401()
            check_eq(r.get(tc.PASSWORD_ALGORITHMS), struct.pack("!HHHH", 1, 0, 2, 0),
                     "PASSWORD-ALGORITHMS with redis-userdb")
        r = sha256_allocate(srv, realm, "plain", "pw-plain")
        check(r.is_success(), "SHA-256 Allocate of a .../password user: %r" % r)
        check(r.check_integrity_sha256(hashlib.sha256(b"plain:" + realm.encode() + b":pw-plain").digest()),
              "answer's MESSAGE-INTEGRITY-SHA256")
        r = sha256_allocate(srv, realm, "plain", "wrong")
        expect_error(r, 401, "SHA-256 with a wrong password")
        # an MD5-only user: SHA-256 fails, MD5 works, and the failed SHA-256
        # attempt does not end the user's allocation
        c, r = allocate(srv, "mdfive", "pw-md5")
        expect_success(r, "MD5 Allocate of a .../key user")
        expect_error(sha256_allocate(srv, realm, "mdfive", "pw-md5"), 401, "SHA-256 for a .../key user")
        expect_success(c.refresh(600), "MD5 allocation still there after the SHA-256 attempt")
        c.refresh(0)
        c.close()


def run_all():
    """tap.run(), but server logs of a failed case come after its 'not ok'."""
    tap.plan()
    for name, fn in tap.cases:
        del _late_diag[:]
        tap.run_case(name, fn)
        for text in _late_diag:
            tap.diag(text)
    return 1 if tap.failed else 0


def main():
    try:
        return run_all()
    finally:
        tc._kill_all()
        _cleanup()


if __name__ == "__main__":
    sys.exit(main())
