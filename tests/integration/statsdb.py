#!/usr/bin/env python3
"""redis-statsdb (issue 12): turnstone writes coturn's allocation status keys
and messages to a real redis-server started here, on loopback. Speaks TAP.

An Allocate sets turn/realm/<realm>/user/<user>/allocation/<id>/status to
"new lifetime=N, type=UDP, ..." with a TTL and publishes it on the channel of
the same name; a Refresh makes it "refreshed lifetime=N"; Refresh 0 deletes
the key and publishes "deleted" and the total traffic. A Redis that is down
at start is reached once it comes up.
"""

import os
import socket
import subprocess
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))
sys.path.insert(0, _here)

sys.dont_write_bytecode = True  # keep the source tree clean
import turnclient as tc  # noqa: E402
from turnclient import check, check_eq  # noqa: E402
from redis_auth import Redis, _procs, stop_proc  # noqa: E402  (redis-server by PID, stopped at exit)

tap = tc.Tap()
servers = []
REALM = "turnstone.test"
PATTERN = "turn/realm/%s/user/alice/allocation/*/status" % REALM


class Subscriber:
    """redis-cli PSUBSCRIBE turn/* into a file, by PID."""

    def __init__(self, redis):
        self.path = os.path.join(redis.dir, "messages.%d" % len(_procs))
        self.out = open(self.path, "w")
        self.proc = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port), "--csv",
                                      "PSUBSCRIBE", "turn/*"], stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        _procs.append(self.proc)
        end = time.monotonic() + 5
        while time.monotonic() < end and "psubscribe" not in self.text():
            time.sleep(0.05)
        check("psubscribe" in self.text(), "redis-cli PSUBSCRIBE did not start: %r" % self.text())

    def text(self):
        with open(self.path) as f:
            return f.read()

    def wait_for(self, what, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if what in self.text():
                return self.text()
            time.sleep(0.05)
        raise AssertionError("no message with %r; got:\n%s" % (what, self.text()))

    def stop(self):
        stop_proc(self.proc)
        self.out.close()


def wait_keys(redis, want, timeout=5.0):
    end = time.monotonic() + timeout
    keys = None
    while time.monotonic() < end:
        keys = redis.cmd("KEYS", PATTERN)
        if len(keys) == want:
            return keys
        time.sleep(0.05)
    raise AssertionError("%d keys %s, wanted %d" % (len(keys), keys, want))


def start(redis):
    s = tc.Server(allow_loopback=True, extra=["--redis-statsdb=ip=127.0.0.1 port=%d dbname=0" % redis.port])
    servers.append(s)
    return s.start()


@tap.case("Allocate, Refresh, Refresh 0: coturn's status key appears with a TTL, changes, goes away")
def t_lifecycle():
    redis = Redis().start()
    sub = Subscriber(redis)
    s = start(redis)
    with s.client("alice") as c:
        check(c.allocate(lifetime=600).is_success(), "Allocate")
        (key,) = wait_keys(redis, 1)
        val = redis.cmd("GET", key)
        check(val.startswith("new lifetime=600, type=UDP, local=127.0.0.1:%d, remote=127.0.0.1:%d, "
                             "ssl=NONE, cipher=NONE" % (s.port, c.local[1])), "value %r" % val)
        ttl = redis.cmd("TTL", key)
        check(0 < ttl <= 600, "TTL %r" % ttl)
        sub.wait_for("new lifetime=600")
        check(c.refresh(lifetime=300).is_success(), "Refresh")
        sub.wait_for("refreshed lifetime=300")
        check_eq(redis.cmd("GET", key)[:22], "refreshed lifetime=300", "value after Refresh")
        check(redis.cmd("TTL", key) <= 300, "TTL after Refresh")
        check(c.refresh(lifetime=0).is_success(), "Refresh 0")
        wait_keys(redis, 0)
        base = key[:-len("/status")]
        text = sub.wait_for(base + '/total_traffic/peer","rcvp=')
        check('%s","deleted"' % key in text, "deleted message:\n%s" % text)
        check(base + '/total_traffic","rcvp=' in text, "total_traffic message:\n%s" % text)
    sub.stop()
    s.stop()
    redis.stop()


@tap.case("redis-statsdb down at start: allocations work, and are reported once Redis is up")
def t_late_redis():
    redis = Redis()
    redis.port = tc.free_udp_port()
    s = tc.Server(allow_loopback=True, extra=["--redis-statsdb=ip=127.0.0.1 port=%d" % redis.port])
    servers.append(s)
    s.start()
    with s.client("alice") as c:
        check(c.allocate().is_success(), "Allocate with Redis down")
    redis.start(redis.port)
    end = time.monotonic() + 10
    while True:
        with s.client("alice") as c:
            check(c.allocate().is_success(), "Allocate")
            if len(redis.cmd("KEYS", PATTERN)) > 0:
                break
        check(time.monotonic() < end, "no status key 10 s after Redis came up")
        time.sleep(0.5)
    check("redis-statsdb" in s.log_text(), "the outage is logged")
    s.stop()
    redis.stop()


@tap.case("every server exits 0 on SIGTERM, no sanitizer report")
def t_clean_exit():
    tc.check_clean_exit(servers)


def main():
    return tc.run_with_servers(tap, servers)


if __name__ == "__main__":
    sys.exit(main())
