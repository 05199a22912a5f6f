"""adminhttp -- helpers for tests of turnstone's admin HTTP listener
(`prometheus`): start a server with it on a free loopback port, make requests,
parse the Prometheus text format.  Python 3 standard library only; loopback only.
"""

import http.client
import re
import time

import turnclient as tc


def admin_server(**kw):
    """A turnclient.Server with the admin listener on a free loopback port
    (server.admin_port).  Keyword arguments go to Server; extra= is extended."""
    port = tc.free_udp_port()
    extra = ["--prometheus", "--prometheus-ip=127.0.0.1", "--prometheus-port=%d" % port]
    extra += list(kw.pop("extra", ()))
    srv = tc.Server(extra=extra, **kw)
    srv.admin_port = port
    return srv


def request(port, method, path, timeout=10.0):
    """(status, headers dict with lower-case names, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def wait_admin(port, timeout=5.0):
    """Polls GET /healthz until the listener answers."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            return request(port, "GET", "/healthz", timeout=1.0)
        except OSError as e:
            last = e
            time.sleep(0.05)
    raise RuntimeError("admin listener on port %d not answering: %s" % (port, last))


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def parse_metrics(text):
    """{'name{labels}': float} for every sample line (labels exactly as written)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def scrape(port):
    status, headers, body = request(port, "GET", "/metrics")
    if status != 200:
        raise AssertionError("GET /metrics: HTTP %d: %s" % (status, body))
    return parse_metrics(body), body, headers
