#!/usr/bin/env node
// Small helpers for relay.sh (no dependencies beyond Node itself).
//
//   node util.mjs free-udp-port [EXCLUDE_MIN EXCLUDE_MAX]
//       Print a UDP port that is currently free on 127.0.0.1 (chosen at
//       random in 20000..59999, outside [EXCLUDE_MIN, EXCLUDE_MAX]).
//   node util.mjs relay-window SIZE
//       Print "MIN MAX": a random window of SIZE ports inside 20000..59000
//       whose ports are (at the moment) all free for UDP on 127.0.0.1.
//   node util.mjs free-port PROTOS EXCLUDE_MIN EXCLUDE_MAX [AVOID ...]
//       Like free-udp-port, but the port must be free for every protocol in
//       PROTOS ("udp", "tcp" or "udp,tcp") and must not be one of AVOID.
//   node util.mjs stun-ping HOST PORT TIMEOUT_MS [udp|tcp|tls [CA_PEM]]
//       Send STUN Binding requests (RFC 5389) over UDP (default), TCP or TLS
//       until a matching success response arrives.  Exit 0 and print the
//       XOR-MAPPED-ADDRESS, or exit 1 after TIMEOUT_MS.  Over TCP/TLS a
//       refused or failed connection is retried every 200 ms.  For TLS the
//       server certificate is verified against CA_PEM (e.g. the self-signed
//       certificate itself, which must name HOST); without CA_PEM it is not
//       verified.
//
// Only ever talks to the address it is given (relay.sh passes 127.0.0.1).

import dgram from 'node:dgram';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

function tryBind(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, '127.0.0.1', () => { s.close(); resolve(true); });
  });
}

function tryBindTcp(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function randInt(lo, hi) { // inclusive
  return lo + crypto.randomInt(hi - lo + 1);
}

async function freeUdpPort(exMin, exMax) {
  for (let i = 0; i < 200; i++) {
    const p = randInt(20000, 59999);
    if (exMin !== undefined && p >= exMin && p <= exMax) continue;
    if (await tryBind(p)) return p;
  }
  throw new Error('no free UDP port found');
}

async function freePort(protos, exMin, exMax, avoid) {
  for (let i = 0; i < 200; i++) {
    const p = randInt(20000, 59999);
    if (p >= exMin && p <= exMax) continue;
    if (avoid.includes(p)) continue;
    if (protos.includes('udp') && !await tryBind(p)) continue;
    if (protos.includes('tcp') && !await tryBindTcp(p)) continue;
    return p;
  }
  throw new Error(`no port free for ${protos.join('+')} found`);
}

async function relayWindow(size) {
  for (let i = 0; i < 50; i++) {
    const min = randInt(20000, 59000 - size + 1);
    const max = min + size - 1;
    let ok = true;
    for (let p = min; p <= max && ok; p++) ok = await tryBind(p);
    if (ok) return [min, max];
  }
  throw new Error('no free relay port window found');
}

function bindingRequest() {
  const txid = crypto.randomBytes(12);
  const req = Buffer.alloc(20);
  req.writeUInt16BE(0x0001, 0);       // Binding request
  req.writeUInt16BE(0, 2);            // length
  req.writeUInt32BE(0x2112A442, 4);   // magic cookie
  txid.copy(req, 8);
  return { txid, req };
}

// Returns null if msg is not a response to txid, else [exitCode, text].
function parseResponse(msg, txid) {
  if (msg.length < 20) return null;
  if (msg.readUInt32BE(4) !== 0x2112A442) return null;
  if (!msg.subarray(8, 20).equals(txid)) return null;
  const type = msg.readUInt16BE(0);
  if (type !== 0x0101) return [1, `unexpected STUN response type 0x${type.toString(16)}`];
  let mapped = '(no XOR-MAPPED-ADDRESS)';
  let off = 20;
  const end = Math.min(msg.length, 20 + msg.readUInt16BE(2));
  while (off + 4 <= end) {
    const at = msg.readUInt16BE(off), alen = msg.readUInt16BE(off + 2);
    const v = msg.subarray(off + 4, off + 4 + alen);
    if (at === 0x0020 && v.length >= 8 && v[1] === 0x01) {
      const xp = v.readUInt16BE(2) ^ 0x2112;
      const xa = (v.readUInt32BE(4) ^ 0x2112A442) >>> 0;
      mapped = `${xa >>> 24}.${(xa >> 16) & 255}.${(xa >> 8) & 255}.${xa & 255}:${xp}`;
    }
    off += 4 + ((alen + 3) & ~3);
  }
  return [0, `binding success, XOR-MAPPED-ADDRESS ${mapped}`];
}

function stunPing(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const { txid, req } = bindingRequest();
    let timer, deadline;
    const finish = (code, msg) => {
      clearInterval(timer); clearTimeout(deadline);
      try { sock.close(); } catch { /* already closed */ }
      console.log(msg);
      resolve(code);
    };
    sock.on('error', (e) => { /* ICMP port unreachable etc.: keep retrying */ void e; });
    sock.on('message', (msg) => {
      const r = parseResponse(msg, txid);
      if (r) finish(...r);
    });
    const send = () => sock.send(req, port, host, () => {});
    sock.bind(0, host.includes(':') ? '::1' : '127.0.0.1', () => {
      send();
      timer = setInterval(send, 200);
    });
    deadline = setTimeout(() => finish(1, `no STUN Binding response from ${host}:${port} within ${timeoutMs} ms`), timeoutMs);
  });
}

// STUN Binding over a TCP or TLS stream (RFC 8489 section 6.2.2: messages
// are sent back to back, each one framed by its own header length).
function stunPingStream(host, port, timeoutMs, transport, caFile) {
  return new Promise((resolve) => {
    let sock = null, retry = null, done = false, lastErr = 'no attempt made';
    const t0 = Date.now();
    const finish = (code, msg) => {
      if (done) return;
      done = true;
      clearTimeout(retry); clearTimeout(deadline);
      if (sock) sock.destroy();
      console.log(msg);
      resolve(code);
    };
    const ca = caFile ? fs.readFileSync(caFile) : undefined;
    const attempt = () => {
      if (done) return;
      const { txid, req } = bindingRequest();
      let buf = Buffer.alloc(0), info = '';
      const onConnect = () => {
        if (transport === 'tls') {
          const c = sock.getPeerCertificate();
          info = ` (${sock.getProtocol()} ${sock.getCipher()?.name}, certificate CN=${c?.subject?.CN}` +
                 `${caFile ? ', verified against ' + caFile : ', NOT verified'})`;
        }
        sock.write(req);
      };
      sock = transport === 'tls'
        ? tls.connect({ host, port, ca, rejectUnauthorized: !!ca }, onConnect)
        : net.connect({ host, port }, onConnect);
      sock.setTimeout(Math.max(200, timeoutMs - (Date.now() - t0)));
      sock.on('timeout', () => { lastErr = `${transport} connection idle, no response`; sock.destroy(); });
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 20) {
          const len = 20 + buf.readUInt16BE(2);
          if (buf.length < len) break;
          const r = parseResponse(buf.subarray(0, len), txid);
          buf = buf.subarray(len);
          if (r) { finish(r[0], r[1] + ` over ${transport.toUpperCase()}${info}`); return; }
        }
      });
      sock.on('error', (e) => { lastErr = `${transport}: ${e.code || ''} ${e.message}`; });
      sock.on('close', () => {
        if (!done) retry = setTimeout(attempt, 200);
      });
    };
    const deadline = setTimeout(() => finish(1, `no STUN Binding response over ${transport.toUpperCase()} from ${host}:${port} within ${timeoutMs} ms (last error: ${lastErr})`), timeoutMs);
    attempt();
  });
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'free-udp-port') {
    const ex = rest.length >= 2 ? [Number(rest[0]), Number(rest[1])] : [];
    console.log(await freeUdpPort(...ex));
  } else if (cmd === 'free-port') {
    const protos = String(rest[0] || '').split(',');
    if (!protos.every(p => p === 'udp' || p === 'tcp')) throw new Error(`bad protocol list '${rest[0]}'`);
    console.log(await freePort(protos, Number(rest[1] || 0), Number(rest[2] || 0), rest.slice(3).map(Number)));
  } else if (cmd === 'relay-window') {
    console.log((await relayWindow(Number(rest[0] || 200))).join(' '));
  } else if (cmd === 'stun-ping') {
    const transport = rest[3] || 'udp';
    if (transport === 'udp') {
      process.exitCode = await stunPing(rest[0], Number(rest[1]), Number(rest[2] || 10000));
    } else if (transport === 'tcp' || transport === 'tls') {
      process.exitCode = await stunPingStream(rest[0], Number(rest[1]), Number(rest[2] || 10000), transport, rest[4]);
    } else {
      throw new Error(`unknown transport '${transport}'`);
    }
  } else {
    console.error('usage: util.mjs free-udp-port|free-port|relay-window|stun-ping ...');
    process.exitCode = 2;
  }
} catch (e) {
  console.error(String(e && e.message || e));
  process.exitCode = 1;
}
