#!/usr/bin/env python3
"""Allocation expiry through the per-worker timer wheel (issue 14), against
the real turnstone server ($TURNSTONE_BIN) on loopback.  Speaks TAP.

2,000 UDP allocations with mixed lifetimes (3, 5, 7 s, and 9 s refreshed
down to 4 s, which re-arms a timer earlier) must end at their times: never
before lifetime - 1 s (lifetimes count in whole monotonic seconds), never
later than lifetime + 1 s (the 1 s tick) + 1 s of slack for a loaded
machine.  The count alive is read from the turnstone_allocations gauge of
the admin listener; each bound is computed from the send/receive times of
each allocation's own request, and from the time before/after each scrape,
so no assertion depends on how fast the machine is.
"""

import os
import resource
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
_top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(_here))
sys.path.insert(0, os.path.join(_top, "tests", "lib"))

sys.dont_write_bytecode = True  # keep the source tree clean
import adminhttp as ah  # noqa: E402
import turnclient as tc  # noqa: E402
from turnclient import check  # noqa: E402

tap = tc.Tap()
servers = []
N = 2000
SLACK = 1.0  # s beyond the 1 s tick an expiry may be late on a loaded machine


def alive(srv):
    """(count of allocations, monotonic time before, after the scrape)."""
    t0 = time.monotonic()
    status, _, body = ah.request(srv.admin_port, "GET", "/metrics")
    t1 = time.monotonic()
    check(status == 200, "GET /metrics: %d" % status)
    m = ah.parse_metrics(body)
    return sum(v for k, v in m.items() if k.startswith("turnstone_allocations{")), t0, t1


@tap.case("Timers: 2,000 allocations with mixed lifetimes expire at their times (no earlier, at most ~1 s later)")
def t_mixed_expiry():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = N + 200
    check(hard >= need, "RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    # Relay ports: room for N and for the ephemeral ports of the N client
    # sockets (and other tests') that land inside the range.
    srv = ah.admin_server(range_len=3 * N,
                          extra=["--default-allocate-lifetime=3", "--max-allocate-lifetime=60",
                                 "--allocate-rate-per-ip=0", "--unauthorized-rate-per-ip=0"])
    servers.append(srv)
    srv.start()
    ah.wait_admin(srv.admin_port)
    clients, windows = [], []  # windows: (earliest end, latest end) per allocation
    try:
        for i in range(N):
            life = (3, 5, 7, 9)[i % 4]
            c = srv.client()
            clients.append(c)
            t0 = time.monotonic()
            r = c.allocate(lifetime=life)
            check(r.is_success(), "Allocate %d (lifetime %d): %r" % (i, life, r))
            if life == 9:  # Refresh to a shorter lifetime: the timer moves earlier
                t0 = time.monotonic()
                r = c.refresh(lifetime=4)
                check(r.is_success(), "Refresh %d: %r" % (i, r))
                life = 4
            t1 = time.monotonic()
            windows.append((t0 + life - 1, t1 + life + 1 + SLACK))
        last_end = max(w[1] for w in windows)
        polls = 0
        while True:
            n, tb, ta = alive(srv)
            polls += 1
            must = sum(1 for e, _ in windows if e > ta)   # cannot have ended yet
            may = sum(1 for _, l in windows if l > tb)    # may still be alive
            check(n >= must, "%d allocations alive at +%.1f s, %d cannot have expired yet (too early)"
                  % (n, ta - windows[0][0], must))
            check(n <= may, "%d allocations alive at +%.1f s, at most %d may be (expired too late)"
                  % (n, tb - windows[0][0], may))
            if tb > last_end:
                break
            time.sleep(0.2)
        check(n == 0, "%d allocations left at the end" % n)
        check(polls >= 10, "only %d scrapes" % polls)
    finally:
        for c in clients:
            c.close()


def main():
    rc = 1
    try:
        rc = tap.run()
    finally:
        for s in servers:
            alive_at_end = s.alive()
            s.stop()
            if tap.failed:
                tap.diag("---- server log (%s), alive at end: %s ----" % (" ".join(s.args), alive_at_end))
                tap.diag(s.log_text()[-4000:])
            s.cleanup_log()
    return rc


if __name__ == "__main__":
    sys.exit(main())
