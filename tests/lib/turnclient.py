"""turnclient -- a small, independent STUN/TURN (RFC 5389/8489, 5766/8656) client
for turnstone's integration tests.  Python 3 standard library only.

Everything here talks to loopback only: the server under test is always
started by `Server` on 127.0.0.1 (and optionally ::1).
"""

import atexit
import hashlib
import hmac
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

MAGIC = 0x2112A442
MAGIC_BYTES = struct.pack("!I", MAGIC)
FINGERPRINT_XOR = 0x5354554E

# classes
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
CLASS_NAMES = {0: "request", 1: "indication", 2: "success", 3: "error"}

# methods
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009
CONNECT = 0x00A             # RFC 6062 section 6.1
CONNECTION_BIND = 0x00B
CONNECTION_ATTEMPT = 0x00C
METHOD_NAMES = {1: "Binding", 3: "Allocate", 4: "Refresh", 6: "Send", 7: "Data",
                10: "Connect", 11: "ConnectionBind", 12: "ConnectionAttempt",
                8: "CreatePermission", 9: "ChannelBind"}

# attributes
MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
MESSAGE_INTEGRITY_SHA256 = 0x001C
PASSWORD_ALGORITHM = 0x001D
PASSWORD_ALGORITHMS = 0x8002
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
REQUESTED_TRANSPORT = 0x0019
DONT_FRAGMENT = 0x001A
XOR_MAPPED_ADDRESS = 0x0020
RESERVATION_TOKEN = 0x0022
CONNECTION_ID = 0x002A       # RFC 6062 section 6.2
SOFTWARE = 0x8022
FINGERPRINT = 0x8028

PROTO_UDP = 17
PROTO_TCP = 6


class StunError(Exception):
    pass


# ---------------------------------------------------------------- encoding

def msg_type(method, cls):
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


def split_type(t):
    method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80)
    cls = ((t >> 4) & 1) | ((t >> 7) & 2)
    return method, cls


def pad4(n):
    return (4 - n % 4) % 4


def new_tid():
    return os.urandom(12)


def long_term_key(username, realm, password):
    return hashlib.md5(("%s:%s:%s" % (username, realm, password)).encode("utf-8")).digest()


def _attr_bytes(atype, value):
    return struct.pack("!HH", atype, len(value)) + value + b"\0" * pad4(len(value))


def _xor_addr_value(ip, port, tid):
    """Encode an XOR-*-ADDRESS value for (ip, port)."""
    xport = port ^ (MAGIC >> 16)
    if ":" in ip:
        raw = socket.inet_pton(socket.AF_INET6, ip)
        mask = MAGIC_BYTES + tid
        xa = bytes(a ^ b for a, b in zip(raw, mask))
        return struct.pack("!BBH", 0, 2, xport) + xa
    raw = socket.inet_aton(ip)
    xa = bytes(a ^ b for a, b in zip(raw, MAGIC_BYTES))
    return struct.pack("!BBH", 0, 1, xport) + xa


def _plain_addr_value(ip, port):
    if ":" in ip:
        return struct.pack("!BBH", 0, 2, port) + socket.inet_pton(socket.AF_INET6, ip)
    return struct.pack("!BBH", 0, 1, port) + socket.inet_aton(ip)


def decode_xor_addr(value, tid):
    if len(value) < 8:
        raise StunError("short XOR address attribute (%d bytes)" % len(value))
    fam = value[1]
    port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC >> 16)
    if fam == 1:
        if len(value) != 8:
            raise StunError("bad IPv4 XOR address length %d" % len(value))
        ip = socket.inet_ntoa(bytes(a ^ b for a, b in zip(value[4:8], MAGIC_BYTES)))
    elif fam == 2:
        if len(value) != 20:
            raise StunError("bad IPv6 XOR address length %d" % len(value))
        mask = MAGIC_BYTES + tid
        ip = socket.inet_ntop(socket.AF_INET6, bytes(a ^ b for a, b in zip(value[4:20], mask)))
    else:
        raise StunError("unknown address family %d" % fam)
    return ip, port


def decode_plain_addr(value):
    fam = value[1]
    port = struct.unpack("!H", value[2:4])[0]
    if fam == 1:
        return socket.inet_ntoa(value[4:8]), port
    return socket.inet_ntop(socket.AF_INET6, value[4:20]), port


class Attr:
    """Helpers building (type, value) pairs."""

    @staticmethod
    def username(u):
        return (USERNAME, u.encode("utf-8"))

    @staticmethod
    def realm(r):
        return (REALM, r.encode("utf-8") if isinstance(r, str) else r)

    @staticmethod
    def nonce(n):
        return (NONCE, n.encode("utf-8") if isinstance(n, str) else n)

    @staticmethod
    def requested_transport(proto=PROTO_UDP):
        return (REQUESTED_TRANSPORT, struct.pack("!B3x", proto))

    @staticmethod
    def lifetime(secs):
        return (LIFETIME, struct.pack("!I", secs))

    @staticmethod
    def channel_number(ch):
        return (CHANNEL_NUMBER, struct.pack("!HH", ch, 0))

    @staticmethod
    def data(b):
        return (DATA_ATTR, bytes(b))

    @staticmethod
    def xor_peer(ip, port):
        # value depends on the transaction id: encoded lazily in build()
        return (XOR_PEER_ADDRESS, ("xor", ip, port))

    @staticmethod
    def connection_id(cid):
        return (CONNECTION_ID, struct.pack("!I", cid))

    @staticmethod
    def raw(atype, value):
        return (atype, bytes(value))


def build(method, cls, attrs=(), tid=None, key=None, fingerprint=False, sha256=False):
    """Build a STUN message.  attrs: list of (type, value) where value is bytes
    or ("xor", ip, port).  key: long-term key bytes -> add MESSAGE-INTEGRITY
    (MESSAGE-INTEGRITY-SHA256 instead with sha256=True).  Returns (bytes, tid)."""
    if tid is None:
        tid = new_tid()
    body = b""
    for atype, value in attrs:
        if isinstance(value, tuple) and value and value[0] == "xor":
            value = _xor_addr_value(value[1], value[2], tid)
        body += _attr_bytes(atype, value)
    t = msg_type(method, cls)
    if key is not None and sha256:
        length = len(body) + 36
        hdr = struct.pack("!HHI", t, length, MAGIC) + tid
        mac = hmac.new(key, hdr + body, hashlib.sha256).digest()
        body += _attr_bytes(MESSAGE_INTEGRITY_SHA256, mac)
    elif key is not None:
        length = len(body) + 24
        hdr = struct.pack("!HHI", t, length, MAGIC) + tid
        mac = hmac.new(key, hdr + body, hashlib.sha1).digest()
        body += _attr_bytes(MESSAGE_INTEGRITY, mac)
    if fingerprint:
        length = len(body) + 8
        hdr = struct.pack("!HHI", t, length, MAGIC) + tid
        crc = (zlib.crc32(hdr + body) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
        body += _attr_bytes(FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", t, len(body), MAGIC) + tid + body, tid


class Message:
    def __init__(self, raw):
        self.raw = raw
        if len(raw) < 20:
            raise StunError("message shorter than header (%d bytes)" % len(raw))
        t, length, magic = struct.unpack("!HHI", raw[:8])
        if t & 0xC000:
            raise StunError("first two bits not zero: not STUN")
        if magic != MAGIC:
            raise StunError("bad magic cookie 0x%08x" % magic)
        if length + 20 != len(raw):
            raise StunError("length field %d does not match datagram %d" % (length, len(raw)))
        if length % 4:
            raise StunError("length %d not a multiple of 4" % length)
        self.type = t
        self.method, self.cls = split_type(t)
        self.tid = raw[8:20]
        self.attrs = []          # list of (type, value, offset_of_attr_header)
        off = 20
        while off < len(raw):
            if off + 4 > len(raw):
                raise StunError("truncated attribute header at %d" % off)
            at, al = struct.unpack("!HH", raw[off:off + 4])
            if off + 4 + al > len(raw):
                raise StunError("attribute 0x%04x overruns message" % at)
            self.attrs.append((at, raw[off + 4:off + 4 + al], off))
            off += 4 + al + pad4(al)
        if off != len(raw):
            raise StunError("attribute padding overruns message")

    # ---- accessors
    def get(self, atype):
        for at, v, _ in self.attrs:
            if at == atype:
                return v
        return None

    def has(self, atype):
        return self.get(atype) is not None

    def attr_types(self):
        return [a for a, _, _ in self.attrs]

    def error_code(self):
        v = self.get(ERROR_CODE)
        if v is None:
            return None
        if len(v) < 4:
            raise StunError("short ERROR-CODE")
        return (v[2] & 0x7) * 100 + v[3]

    def error_reason(self):
        v = self.get(ERROR_CODE)
        return v[4:].decode("utf-8", "replace") if v else None

    def xor_addr(self, atype):
        v = self.get(atype)
        return None if v is None else decode_xor_addr(v, self.tid)

    def xor_mapped(self):
        return self.xor_addr(XOR_MAPPED_ADDRESS)

    def xor_relayed(self):
        return self.xor_addr(XOR_RELAYED_ADDRESS)

    def xor_peer(self):
        return self.xor_addr(XOR_PEER_ADDRESS)

    def connection_id(self):
        v = self.get(CONNECTION_ID)
        return None if v is None or len(v) != 4 else struct.unpack("!I", v)[0]

    def lifetime(self):
        v = self.get(LIFETIME)
        return None if v is None else struct.unpack("!I", v[:4])[0]

    def realm(self):
        v = self.get(REALM)
        return None if v is None else v.decode("utf-8", "replace")

    def nonce(self):
        return self.get(NONCE)

    def unknown_attributes(self):
        v = self.get(UNKNOWN_ATTRIBUTES)
        if v is None:
            return None
        return [struct.unpack("!H", v[i:i + 2])[0] for i in range(0, len(v) - 1, 2)]

    # ---- integrity
    def check_integrity(self, key):
        """True iff a MESSAGE-INTEGRITY attribute is present and valid for key."""
        for at, v, off in self.attrs:
            if at == MESSAGE_INTEGRITY:
                if len(v) != 20:
                    return False
                length = off + 24 - 20
                hdr = struct.pack("!HH", self.type, length) + self.raw[4:20]
                mac = hmac.new(key, hdr + self.raw[20:off], hashlib.sha1).digest()
                return hmac.compare_digest(mac, v)
        return False

    def check_integrity_sha256(self, key):
        """True iff a MESSAGE-INTEGRITY-SHA256 attribute (full 32 bytes) is
        present and valid for key."""
        for at, v, off in self.attrs:
            if at == MESSAGE_INTEGRITY_SHA256:
                if len(v) != 32:
                    return False
                hdr = struct.pack("!HH", self.type, off + 36 - 20) + self.raw[4:20]
                mac = hmac.new(key, hdr + self.raw[20:off], hashlib.sha256).digest()
                return hmac.compare_digest(mac, v)
        return False

    def check_fingerprint(self):
        """True iff the last attribute is a valid FINGERPRINT."""
        if not self.attrs:
            return False
        at, v, off = self.attrs[-1]
        if at != FINGERPRINT or len(v) != 4:
            return False
        hdr = struct.pack("!HH", self.type, off + 8 - 20) + self.raw[4:20]
        crc = (zlib.crc32(hdr + self.raw[20:off]) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
        return crc == struct.unpack("!I", v)[0]

    def is_success(self):
        return self.cls == SUCCESS

    def __repr__(self):
        s = "<%s %s" % (METHOD_NAMES.get(self.method, hex(self.method)),
                        CLASS_NAMES[self.cls])
        if self.cls == ERROR:
            s += " %s %r" % (self.error_code(), self.error_reason())
        s += " attrs=%s>" % ",".join("0x%04x" % a for a in self.attr_types())
        return s


def parse(raw):
    return Message(raw)


def is_stun(raw):
    return len(raw) >= 20 and raw[0] & 0xC0 == 0 and raw[4:8] == MAGIC_BYTES


def channel_data(ch, payload, pad=True):
    b = struct.pack("!HH", ch, len(payload)) + payload
    if pad:
        b += b"\0" * pad4(len(payload))
    return b


def parse_channel_data(raw):
    if len(raw) < 4:
        raise StunError("short ChannelData")
    ch, ln = struct.unpack("!HH", raw[:4])
    if not 0x4000 <= ch <= 0x7FFF:
        raise StunError("not ChannelData (first word 0x%04x)" % ch)
    if 4 + ln > len(raw):
        raise StunError("ChannelData length %d exceeds datagram %d" % (ln, len(raw)))
    return ch, raw[4:4 + ln]


# ---------------------------------------------------------------- client

def _family_of(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


class TurnClient:
    """One UDP socket = one 5-tuple towards the server."""

    def __init__(self, server, username=None, password=None, local_ip=None,
                 timeout=0.5, retries=6):
        self.server = server  # (ip, port)
        self.username = username
        self.password = password
        self.realm = None
        self.nonce = None
        self.key = None
        fam = _family_of(server[0])
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((local_ip or ("::1" if fam == socket.AF_INET6 else "127.0.0.1"), 0))
        self.timeout = timeout
        self.retries = retries
        self.pending = []       # non-matching datagrams received while waiting
        self.relayed = None
        self.mapped = None
        self.last_alloc_raw = None

    @property
    def local(self):
        return self.sock.getsockname()[:2]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def sendraw(self, data):
        self.sock.sendto(data, self.server)

    def recvraw(self, timeout):
        """One datagram from the server (others are dropped), or None."""
        if self.pending:
            return self.pending.pop(0)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            if addr[:2] == tuple(self.server[:2]) or (
                    addr[0] in ("::ffff:" + self.server[0],) and addr[1] == self.server[1]):
                return data

    def transact(self, raw, tid, timeout=None, retries=None):
        """Send raw request, retransmit on silence, return parsed response."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        for _ in range(retries):
            self.sendraw(raw)
            end = time.monotonic() + timeout
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                try:
                    data, addr = self.sock.recvfrom(65535)
                except socket.timeout:
                    break
                if is_stun(data) and data[8:20] == tid:
                    return parse(data)
                self.pending.append(data)
        raise StunError("no response to %s after %d tries" % (
            METHOD_NAMES.get(split_type(struct.unpack("!H", raw[:2])[0])[0]), retries))

    def request(self, method, attrs=(), auth=True, fingerprint=False, tid=None,
                nonce=None, key=None, username=None, realm=None):
        """Build and send a request; authenticated with the current realm/nonce
        if auth and credentials are known.  Returns (response, raw_request)."""
        attrs = list(attrs)
        k = None
        if auth and (self.key is not None or key is not None):
            attrs += [Attr.username(username or self.username),
                      Attr.realm(realm or self.realm),
                      Attr.nonce(nonce if nonce is not None else self.nonce)]
            k = key if key is not None else self.key
        raw, tid = build(method, REQUEST, attrs, tid=tid, key=k, fingerprint=fingerprint)
        return self.transact(raw, tid), raw

    def learn_realm_nonce(self, resp):
        r = resp.realm()
        n = resp.nonce()
        if r is not None:
            self.realm = r
        if n is not None:
            self.nonce = n
        if self.realm is not None and self.username is not None:
            self.key = long_term_key(self.username, self.realm, self.password)

    def auth_request(self, method, attrs=(), fingerprint=False):
        """Authenticated request, transparently handling 401 (first contact)
        and 438 (stale nonce) once each."""
        for _ in range(3):
            resp, raw = self.request(method, attrs, auth=self.key is not None,
                                     fingerprint=fingerprint)
            if resp.cls == ERROR and resp.error_code() in (401, 438) and resp.nonce():
                if resp.error_code() == 401 and self.key is not None and self.nonce == resp.nonce():
                    return resp, raw  # real auth failure
                self.learn_realm_nonce(resp)
                continue
            return resp, raw
        return resp, raw

    def probe_401(self, method=ALLOCATE, attrs=None):
        """Send an unauthenticated request, learn REALM/NONCE from the 401."""
        if attrs is None:
            attrs = [Attr.requested_transport()]
        resp, _ = self.request(method, attrs, auth=False)
        if resp.cls == ERROR and resp.error_code() == 401:
            self.learn_realm_nonce(resp)
        return resp

    def allocate(self, extra=(), transport=PROTO_UDP, lifetime=None):
        attrs = [Attr.requested_transport(transport)] if transport is not None else []
        if lifetime is not None:
            attrs.append(Attr.lifetime(lifetime))
        attrs += list(extra)
        resp, raw = self.auth_request(ALLOCATE, attrs)
        self.last_alloc_raw = raw
        if resp.is_success():
            self.relayed = resp.xor_relayed()
            self.mapped = resp.xor_mapped()
        return resp

    def refresh(self, lifetime=None):
        attrs = [] if lifetime is None else [Attr.lifetime(lifetime)]
        return self.auth_request(REFRESH, attrs)[0]

    def create_permission(self, *peers):
        attrs = [Attr.xor_peer(ip, port) for ip, port in peers]
        return self.auth_request(CREATE_PERMISSION, attrs)[0]

    def channel_bind(self, ch, peer):
        attrs = [Attr.channel_number(ch), Attr.xor_peer(peer[0], peer[1])]
        return self.auth_request(CHANNEL_BIND, attrs)[0]

    def binding(self, fingerprint=False):
        return self.request(BINDING, [], auth=False, fingerprint=fingerprint)[0]

    def send_indication(self, peer, payload):
        raw, _ = build(SEND, INDICATION, [Attr.xor_peer(peer[0], peer[1]),
                                          Attr.data(payload)])
        self.sendraw(raw)

    def send_channel(self, ch, payload):
        self.sendraw(channel_data(ch, payload))

    def recv_data(self, timeout=2.0):
        """Next Data indication -> ('ind', peer, data) or ChannelData ->
        ('chan', ch, data), or None on timeout.  Other STUN messages skipped."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            raw = self.recvraw(left)
            if raw is None:
                return None
            if raw and 0x40 <= raw[0] <= 0x7F:
                ch, data = parse_channel_data(raw)
                return ("chan", ch, data)
            if is_stun(raw):
                m = parse(raw)
                if m.method == DATA and m.cls == INDICATION:
                    return ("ind", m.xor_peer(), m.get(DATA_ATTR))


# ---------------------------------------------------------------- streams
# TURN over TCP and TLS (RFC 8656 section 12.5): messages back to back on the
# byte stream; a STUN message is 20 + length bytes, ChannelData is 4 + length
# bytes padded to a multiple of 4.

class StreamClosed(StunError):
    """The server closed the TCP/TLS connection (EOF or reset)."""


def stream_frame_len(head):
    """Total length on a stream of the frame starting with the 4 bytes head
    (padding included).  Raises StunError if it is neither STUN nor ChannelData."""
    if len(head) < 4:
        raise StunError("need 4 bytes to frame, have %d" % len(head))
    ln = struct.unpack("!H", head[2:4])[0]
    if head[0] & 0xC0 == 0x00:
        return 20 + ln
    if head[0] & 0xC0 == 0x40:
        return 4 + ln + pad4(ln)
    raise StunError("stream frame starts with 0x%02x: neither STUN nor ChannelData" % head[0])


def tls_client_context(alpn=None, min_version=None, max_version=None, ciphers=None,
                       cafile=None):
    """An ssl.SSLContext for tests: no verification unless cafile is given."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = False
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class StreamTurnClient(TurnClient):
    """One TCP (or TLS over TCP) connection = one 5-tuple towards the server.

    Same request helpers as TurnClient; requests are sent once (no
    retransmission on a reliable transport) and answered within
    timeout * retries seconds.  recvraw() returns one whole frame (ChannelData
    with its padding); EOF or a reset raises StreamClosed."""

    def __init__(self, server, username=None, password=None, tls=False, ssl_context=None,
                 alpn=None, local_ip=None, timeout=0.5, retries=6, connect_timeout=5.0):
        self.server = server
        self.username = username
        self.password = password
        self.realm = None
        self.nonce = None
        self.key = None
        self.timeout = timeout
        self.retries = retries
        self.pending = []
        self.relayed = None
        self.mapped = None
        self.last_alloc_raw = None
        self.buf = b""
        self.tls = tls
        src = (local_ip, 0) if local_ip else None
        raw = socket.create_connection(tuple(server), timeout=connect_timeout,
                                       source_address=src)
        if tls:
            ctx = ssl_context if ssl_context is not None else tls_client_context(alpn=alpn)
            try:
                self.sock = ctx.wrap_socket(raw)
            except Exception:
                raw.close()
                raise
        else:
            self.sock = raw

    def sendraw(self, data):
        self.sock.sendall(data)

    def _buffered_frame(self):
        if len(self.buf) < 4:
            return None
        n = stream_frame_len(self.buf[:4])
        if len(self.buf) < n:
            return None
        frame, self.buf = self.buf[:n], self.buf[n:]
        return frame

    def recv_frame(self, timeout):
        """The next whole frame from the stream (not from self.pending), or
        None on timeout.  Raises StreamClosed on EOF/reset."""
        end = time.monotonic() + timeout
        while True:
            frame = self._buffered_frame()
            if frame is not None:
                return frame
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError) as e:
                raise StreamClosed("connection reset by the server: %s" % e)
            if not d:
                raise StreamClosed("connection closed by the server (EOF)%s" % (
                    " with %d bytes of a partial frame buffered" % len(self.buf)
                    if self.buf else ""))
            self.buf += d

    def recvraw(self, timeout):
        if self.pending:
            return self.pending.pop(0)
        return self.recv_frame(timeout)

    def transact(self, raw, tid, timeout=None, retries=None):
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        self.sendraw(raw)
        end = time.monotonic() + timeout * retries
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            frame = self.recv_frame(left)
            if frame is None:
                break
            if is_stun(frame) and frame[8:20] == tid:
                return parse(frame)
            self.pending.append(frame)
        raise StunError("no response to %s within %.1fs" % (
            METHOD_NAMES.get(split_type(struct.unpack("!H", raw[:2])[0])[0]),
            timeout * retries))

    # ---- RFC 6062 TCP allocations (written from the RFC text)

    def tcp_connect(self, peer):
        """Connect (section 4.3) on this control connection: the response
        (success carries CONNECTION-ID)."""
        return self.auth_request(CONNECT, [Attr.xor_peer(peer[0], peer[1])])[0]

    def wait_connection_attempt(self, timeout=5.0):
        """The next ConnectionAttempt indication (section 4.4) on this control
        connection: (connection_id, (peer_ip, peer_port)), or None.  Other
        frames are kept in self.pending."""
        end = time.monotonic() + timeout
        for i, f in enumerate(self.pending):
            if is_stun(f):
                m = parse(f)
                if (m.method, m.cls) == (CONNECTION_ATTEMPT, INDICATION):
                    del self.pending[i]
                    return m.connection_id(), m.xor_peer()
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            f = self.recv_frame(left)
            if f is None:
                return None
            if is_stun(f):
                m = parse(f)
                if (m.method, m.cls) == (CONNECTION_ATTEMPT, INDICATION):
                    return m.connection_id(), m.xor_peer()
            self.pending.append(f)

    def adopt_credentials(self, other):
        """Use other's realm, nonce and key (a data connection authenticates
        like its control connection, without a first 401)."""
        self.realm, self.nonce, self.key = other.realm, other.nonce, other.key

    def connection_bind(self, cid):
        """ConnectionBind (section 4.3) on this new connection.  After a
        success the connection carries raw bytes: use self.data_send /
        self.data_recv."""
        return self.auth_request(CONNECTION_BIND, [Attr.connection_id(cid)])[0]

    def data_send(self, payload):
        self.sock.sendall(payload)

    def data_recv(self, n, timeout=5.0):
        """Exactly n raw bytes of a bound data connection (less on EOF or
        timeout)."""
        end = time.monotonic() + timeout
        out, self.buf = self.buf[:n], self.buf[n:]
        while len(out) < n:
            left = end - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(n - len(out))
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            out += d
        return out

    def wait_closed(self, timeout):
        """True if the server closes the connection within timeout seconds
        (frames received meanwhile are discarded)."""
        end = time.monotonic() + timeout
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.recv_frame(left)
        except StreamClosed:
            return True
        except OSError:
            return True


def gen_cert(directory, name, key_type="ec"):
    """Self-signed certificate for CN=127.0.0.1 with openssl(1): returns
    (cert_path, key_path) = DIR/NAME.crt, DIR/NAME.key.  key_type "ec"
    (P-256, fast) or "rsa" (2048 bits)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if key_type == "ec"
              else ["-newkey", "rsa:2048"])
    subprocess.run(["openssl", "req", "-x509"] + newkey +
                   ["-nodes", "-subj", "/CN=127.0.0.1", "-days", "2",
                    "-keyout", key, "-out", cert],
                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   check=True, timeout=60)
    return cert, key


# ---------------------------------------------------------------- ports

def _can_bind(kind, fam, ip, port):
    s = socket.socket(fam, kind)
    try:
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_udp_port(ip="127.0.0.1", also_tcp=True, also_ipv6=False):
    """A random port in 10000..19999 free for UDP (and TCP) on ip."""
    import random
    for _ in range(500):
        p = random.randint(10000, 19999)
        if not _can_bind(socket.SOCK_DGRAM, socket.AF_INET, ip, p):
            continue
        if also_tcp and not _can_bind(socket.SOCK_STREAM, socket.AF_INET, ip, p):
            continue
        if also_ipv6 and not (_can_bind(socket.SOCK_DGRAM, socket.AF_INET6, "::1", p)
                              and _can_bind(socket.SOCK_STREAM, socket.AF_INET6, "::1", p)):
            continue
        return p
    raise RuntimeError("no free port found")


def free_port_range(length=200, ip="127.0.0.1"):
    """A random base in 20000..59000 such that a sample of ports of
    [base, base+length) are free for UDP on ip."""
    import random
    for _ in range(500):
        base = random.randint(20000, 59000 - length)
        sample = {base, base + 1, base + length // 2, base + length - 1}
        sample |= {random.randint(base, base + length - 1) for _ in range(6)}
        if all(_can_bind(socket.SOCK_DGRAM, socket.AF_INET, ip, p) for p in sample):
            return base
    raise RuntimeError("no free port range found")


# ---------------------------------------------------------------- server

_live_servers = []
_all_servers = []


def _kill_all():
    for s in list(_live_servers):
        try:
            s.stop()
        except Exception:
            pass
    if not os.environ.get("TURNSTONE_KEEP_LOGS"):
        for s in _all_servers:
            s.cleanup_log()


atexit.register(_kill_all)


def _sig_handler(signum, frame):
    _kill_all()
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_s, _sig_handler)
    except (ValueError, OSError):
        pass


def turnstone_bin():
    b = os.environ.get("TURNSTONE_BIN")
    if not b:
        raise RuntimeError("TURNSTONE_BIN is not set")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        raise RuntimeError("TURNSTONE_BIN=%s is not an executable file" % b)
    return b


def _pdeathsig():
    """Child-side: die with SIGKILL if the test process dies (Linux prctl)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


class Server:
    """Start $TURNSTONE_BIN on loopback with free ports; kill it on exit.

    with Server(allow_loopback=True) as srv:
        srv.addr -> ('127.0.0.1', port)
    """

    def __init__(self, realm="turnstone.test", users=(("alice", "secret"), ("bob", "pw2")),
                 allow_loopback=False, stale_nonce=None, extra=(), ipv6=False,
                 range_len=200, ready_timeout=5.0, tls=None, env=None):
        """tls: (cert_path, key_path) -> also listen for TLS on self.tls_port.
        env: environment for the server process (default: inherited)."""
        self.env = env
        self.realm = realm
        self.users = list(users)
        self.ipv6 = ipv6
        self.port = free_udp_port(also_ipv6=ipv6)
        self.min_port = free_port_range(range_len)
        self.max_port = self.min_port + range_len - 1
        # no signaling endpoint: its default port is fixed and tests run in parallel
        args = [turnstone_bin(), "--no-signaling", "--listening-ip=127.0.0.1"]
        if ipv6:
            args.append("--listening-ip=::1")
        args += ["--listening-port=%d" % self.port, "--relay-ip=127.0.0.1",
                 "--min-port=%d" % self.min_port, "--max-port=%d" % self.max_port,
                 "--realm=%s" % realm]
        args += ["--user=%s:%s" % u for u in self.users]
        args.append("--relay-threads=2")
        if allow_loopback:
            args.append("--allow-loopback-peers")
        if stale_nonce is not None:
            args.append("--stale-nonce=%d" % stale_nonce)
        self.tls_port = None
        if tls is not None:
            while True:
                self.tls_port = free_udp_port()
                if self.tls_port != self.port:
                    break
            args += ["--tls-listening-port=%d" % self.tls_port,
                     "--cert=%s" % tls[0], "--pkey=%s" % tls[1]]
        args += list(extra)
        self.args = args
        self.ready_timeout = ready_timeout
        self.proc = None
        self.logf = tempfile.NamedTemporaryFile(prefix="turnstone-test-", suffix=".log",
                                                delete=False)
        _all_servers.append(self)  # log removed at exit unless TURNSTONE_KEEP_LOGS

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=self.env,
                                     start_new_session=True, preexec_fn=_pdeathsig)
        _live_servers.append(self)
        self.wait_ready()
        return self

    def wait_ready(self):
        end = time.monotonic() + self.ready_timeout
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        try:
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited early with status %s\n%s"
                                       % (self.proc.returncode, self.log_text()))
                raw, tid = build(BINDING, REQUEST)
                s.sendto(raw, self.addr)
                s.settimeout(0.2)
                try:
                    data, _ = s.recvfrom(2048)
                    if is_stun(data) and data[8:20] == tid:
                        return
                except (socket.timeout, ConnectionRefusedError):
                    pass
                time.sleep(0.05)
        finally:
            s.close()
        raise RuntimeError("server not answering Binding on %s:%d within %.0fs\n%s"
                           % (self.addr + (self.ready_timeout, self.log_text())))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after grace seconds.  Returns the exit status
        (Popen convention: negative = killed by that signal).  Sets
        self.needed_kill if SIGTERM was not enough."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.terminate()
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.needed_kill = True
                    self.proc.kill()
                    self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self in _live_servers:
            _live_servers.remove(self)
        return None if self.proc is None else self.proc.returncode

    needed_kill = False

    SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                         "runtime error:", "WARNING: ThreadSanitizer",
                         "ERROR: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")

    def sanitizer_report(self):
        """Lines of the log that look like sanitizer reports."""
        return [l for l in self.log_text().splitlines()
                if any(m in l for m in self.SANITIZER_MARKERS)]

    def log_text(self):
        try:
            self.logf.flush()
            with open(self.logf.name, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup_log(self):
        try:
            os.unlink(self.logf.name)
        except OSError:
            pass

    def client(self, user="alice", password=None, **kw):
        if password is None:
            password = dict(self.users).get(user, "")
        return TurnClient(self.addr, user, password, **kw)

    @property
    def tls_addr(self):
        return ("127.0.0.1", self.tls_port)

    def stream_client(self, user="alice", password=None, tls=False, **kw):
        """A StreamTurnClient connected over TCP (port) or TLS (tls_port)."""
        if password is None:
            password = dict(self.users).get(user, "")
        return StreamTurnClient(self.tls_addr if tls else self.addr, user, password,
                                tls=tls, **kw)

    def wait_stream_ready(self, tls=False, timeout=5.0):
        """Poll a Binding over a fresh TCP (or TLS) connection until answered."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError("server exited with status %s\n%s"
                                   % (self.proc.returncode, self.log_text()))
            try:
                with self.stream_client(tls=tls, timeout=0.2, retries=5) as c:
                    if c.binding().is_success():
                        return
            except (OSError, StunError) as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError("no Binding answer over %s on port %s within %.0fs (%s)"
                           % ("TLS" if tls else "TCP", self.tls_port if tls else self.port,
                              timeout, last))

    def rss_kib(self):
        """Resident set size of the server (VmRSS from /proc), in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc/%d/status" % self.proc.pid)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


# ---------------------------------------------------------------- TAP

class Tap:
    """Tiny TAP producer: register cases, run them, each its own ok line."""

    def __init__(self):
        self.cases = []
        self.failed = 0
        self.n = 0

    def case(self, name):
        def deco(fn):
            self.cases.append((name, fn))
            return fn
        return deco

    def plan(self, n=None):
        print("1..%d" % (len(self.cases) if n is None else n), flush=True)

    @staticmethod
    def diag(text):
        for line in str(text).splitlines() or [""]:
            print("# " + line, flush=True)

    def result(self, ok, name, why=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name), flush=True)
        if not ok:
            self.failed += 1
            if why:
                self.diag(why)

    def run_case(self, name, fn, *args):
        try:
            fn(*args)
        except Exception:
            self.result(False, name, traceback.format_exc())
            return False
        self.result(True, name)
        return True

    def run(self):
        self.plan()
        for name, fn in self.cases:
            self.run_case(name, fn)
        return 1 if self.failed else 0


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def check_eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what, b, a))


def run_with_servers(tap, servers):
    """Runs tap's cases, then stops every Server in servers (the list may
    grow while the cases run); after a failure each one's log tail goes to
    the TAP output. Returns the exit status for sys.exit."""
    rc = 1
    try:
        rc = tap.run()
    finally:
        for s in servers:
            alive = s.alive()
            s.stop()
            if tap.failed:
                tap.diag("---- server log (%s), alive at end: %s ----" % (" ".join(s.args), alive))
                tap.diag(s.log_text()[-4000:])
            s.cleanup_log()
    return rc


def check_clean_exit(servers):
    """Each Server stops on SIGTERM with status 0 and left no sanitizer report."""
    for s in servers:
        rc = s.stop()
        check(rc == 0 and not s.needed_kill, "%s: exit status %r" % (" ".join(s.args), rc))
        check(not s.sanitizer_report(), "sanitizer: %s" % s.sanitizer_report()[:5])
