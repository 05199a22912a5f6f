#!/usr/bin/env python3
"""RFC 8489 password algorithms against the real turnstone server
($TURNSTONE_BIN) on loopback.  Speaks TAP.

The nonce cookie (section 9.2.1: "obMatJos2" + security feature bits, bit 0
"Password algorithms"), PASSWORD-ALGORITHMS in 401 answers, PASSWORD-ALGORITHM
with SHA-256 keys and MESSAGE-INTEGRITY-SHA256 (section 9.2.2, 14.6), and the
bid-down checks of section 9.2.4; written from the RFC text.
"""

import base64
import hashlib
import hmac
import os
import struct
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402

tap = tc.Tap()
_servers = {}
REALM = "turnstone.test"
SECRET = "rest-secret-for-tests"
MD5, SHA256 = 1, 2


def server(kind):
    if kind not in _servers:
        extra = {
            "main": [],
            "rest": ["--use-auth-secret", "--static-auth-secret=%s" % SECRET],
            # Redis users have MD5 keys only: MD5 is offered first (nothing
            # listens on this port; only the 401 is looked at)
            "redis": ["--redis-userdb=ip=127.0.0.1 port=%d connect_timeout=1" % tc.free_udp_port()],
        }[kind]
        s = tc.Server(realm=REALM, allow_loopback=True, extra=extra)
        _servers[kind] = s
        s.start()
    return _servers[kind]


def algs_value(*algs):
    return b"".join(struct.pack("!HH", a, 0) for a in algs)


def sha256_key(user, password):
    return hashlib.sha256(("%s:%s:%s" % (user, REALM, password)).encode()).digest()


def challenge(c):
    """(nonce, PASSWORD-ALGORITHMS value) of a fresh 401."""
    r = c.probe_401()
    check(r.cls == tc.ERROR and r.error_code() == 401, "expected 401, got %r" % r)
    return r.nonce(), r.get(tc.PASSWORD_ALGORITHMS)


def allocate(c, user, key, nonce, alg=None, algs=None, sha256=True):
    attrs = [tc.Attr.requested_transport()]
    if alg is not None:
        attrs.append(tc.Attr.raw(tc.PASSWORD_ALGORITHM, struct.pack("!HH", alg, 0)))
    if algs is not None:
        attrs.append(tc.Attr.raw(tc.PASSWORD_ALGORITHMS, algs))
    attrs += [tc.Attr.username(user), tc.Attr.realm(REALM), tc.Attr.nonce(nonce)]
    raw, tid = tc.build(tc.ALLOCATE, tc.REQUEST, attrs, key=key, sha256=sha256)
    return c.transact(raw, tid)


@tap.case("401 carries the nonce cookie obMatJos2AAAB and PASSWORD-ALGORITHMS SHA-256, MD5")
def t_cookie():
    srv = server("main")
    with srv.client("alice") as c:
        nonce, algs = challenge(c)
        check(nonce is not None and nonce.startswith(b"obMatJos2"), "nonce without cookie: %r" % nonce)
        bits = base64.b64decode(nonce[9:13])
        check_eq(bits, b"\x00\x00\x01", "security feature bits (bit 0: password algorithms)")
        check_eq(algs, algs_value(SHA256, MD5), "PASSWORD-ALGORITHMS")


@tap.case("Allocate with PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256 -> success, "
          "answer signed with MESSAGE-INTEGRITY-SHA256")
def t_sha256_ok():
    srv = server("main")
    with srv.client("alice") as c:
        nonce, algs = challenge(c)
        key = sha256_key("alice", "secret")
        r = allocate(c, "alice", key, nonce, SHA256, algs)
        check(r.cls == tc.SUCCESS, "SHA-256 Allocate: %r" % r)
        check(r.check_integrity_sha256(key), "response MESSAGE-INTEGRITY-SHA256 does not verify")
        # the same request signed with the MD5 key fails
        with srv.client("alice") as c2:
            nonce, algs = challenge(c2)
            md5 = tc.long_term_key("alice", REALM, "secret")
            r = allocate(c2, "alice", md5, nonce, SHA256, algs)
            check(r.cls == tc.ERROR and r.error_code() == 401, "SHA-256 named, MD5 key: %r" % r)


@tap.case("MD5 without PASSWORD-ALGORITHM(S) still works, also with MESSAGE-INTEGRITY-SHA256")
def t_md5_default():
    srv = server("main")
    with srv.client("alice") as c:
        nonce, _ = challenge(c)
        key = tc.long_term_key("alice", REALM, "secret")
        r = allocate(c, "alice", key, nonce, sha256=True)
        check(r.cls == tc.SUCCESS, "MD5 key, MESSAGE-INTEGRITY-SHA256: %r" % r)


@tap.case("Bid-down checks (RFC 8489 9.2.4): missing or altered PASSWORD-ALGORITHMS -> 400")
def t_bid_down():
    srv = server("main")
    key = sha256_key("alice", "secret")
    md5 = tc.long_term_key("alice", REALM, "secret")
    cases = [
        ("PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS", key, SHA256, None),
        ("PASSWORD-ALGORITHMS without PASSWORD-ALGORITHM", md5, None, algs_value(SHA256, MD5)),
        ("PASSWORD-ALGORITHMS stripped to MD5", md5, MD5, algs_value(MD5)),
        ("PASSWORD-ALGORITHMS reordered", md5, MD5, algs_value(MD5, SHA256)),
        ("PASSWORD-ALGORITHM not offered (3)", key, 3, algs_value(SHA256, MD5)),
    ]
    for what, k, alg, algs in cases:
        with srv.client("alice") as c:
            nonce, _ = challenge(c)
            r = allocate(c, "alice", k, nonce, alg, algs)
            check(r.cls == tc.ERROR and r.error_code() == 400, "%s: expected 400, got %r" % (what, r))


@tap.case("A nonce without the cookie is not ours -> 438 with a fresh cookie nonce")
def t_no_cookie():
    srv = server("main")
    with srv.client("alice") as c:
        nonce, _ = challenge(c)
        key = tc.long_term_key("alice", REALM, "secret")
        r = allocate(c, "alice", key, nonce[13:], sha256=False)
        check(r.cls == tc.ERROR and r.error_code() == 438, "nonce without cookie: %r" % r)
        check(r.nonce() is not None and r.nonce().startswith(b"obMatJos2AAAB"), "438 nonce: %r" % r.nonce())


@tap.case("TURN REST API credential with SHA-256 -> success")
def t_rest_sha256():
    srv = server("rest")
    user = "%d:carol" % (int(tc.time.time()) + 3600)
    password = base64.b64encode(hmac.new(SECRET.encode(), user.encode(), hashlib.sha1).digest()).decode()
    with tc.TurnClient(srv.addr, user, password) as c:
        nonce, algs = challenge(c)
        r = allocate(c, user, sha256_key(user, password), nonce, SHA256, algs)
        check(r.cls == tc.SUCCESS, "REST SHA-256 Allocate: %r" % r)


@tap.case("With redis-userdb, MD5 is offered first")
def t_redis_order():
    srv = server("redis")
    with srv.client("alice") as c:
        _, algs = challenge(c)
        check_eq(algs, algs_value(MD5, SHA256), "PASSWORD-ALGORITHMS with redis-userdb")


@tap.case("OpaqueString (RFC 8265): USERNAME with a control character or bad UTF-8 -> 401; "
          "a non-ASCII space in a configured password maps to U+0020")
def t_opaque():
    srv = server("main")
    for bad in (b"ali\x07ce", b"alice\xff"):
        with srv.client("alice") as c:
            nonce, _ = challenge(c)
            attrs = [tc.Attr.requested_transport(), tc.Attr.raw(tc.USERNAME, bad), tc.Attr.realm(REALM),
                     tc.Attr.nonce(nonce)]
            raw, tid = tc.build(tc.ALLOCATE, tc.REQUEST, attrs, key=tc.long_term_key("alice", REALM, "secret"))
            r = c.transact(raw, tid)
            check(r.cls == tc.ERROR and r.error_code() == 401, "USERNAME %r: expected 401, got %r" % (bad, r))
    s = tc.Server(realm=REALM, users=(("dora", "two\u00a0words"),))
    try:
        s.start()
        # the client prepared the password: NO-BREAK SPACE became a space
        with tc.TurnClient(s.addr, "dora", "two words") as c:
            r = c.allocate()
            check(r.cls == tc.SUCCESS, "prepared password: %r" % r)
    finally:
        s.stop()
        s.cleanup_log()


@tap.case("A configured password with a control character: start-up refused (exit 2)")
def t_opaque_config():
    p = tc.subprocess.run([tc.turnstone_bin(), "--no-signaling", "--listening-ip=127.0.0.1",
                           "--listening-port=%d" % tc.free_udp_port(), "--realm=%s" % REALM,
                           "--user=eve:bad\x01pw"], capture_output=True, text=True, timeout=10)
    check_eq(p.returncode, 2, "exit status")
    check("user 'eve'" in p.stderr, "error names the user: %r" % p.stderr)


def main():
    try:
        return tap.run()
    finally:
        for s in _servers.values():
            s.stop()
            if tap.failed:
                tap.diag(s.log_text()[-6000:])
            s.cleanup_log()


if __name__ == "__main__":
    sys.exit(main())
