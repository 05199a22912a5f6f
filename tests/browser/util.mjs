#!/usr/bin/env node
// Small helpers for relay.sh (no dependencies beyond Node itself).
//
//   node util.mjs free-udp-port [EXCLUDE_MIN EXCLUDE_MAX]
//       Print a UDP port that is currently free on 127.0.0.1 (chosen at
//       random in 20000..59999, outside [EXCLUDE_MIN, EXCLUDE_MAX]).
//   node util.mjs relay-window SIZE
//       Print "MIN MAX": a random window of SIZE ports inside 20000..59000
//       whose ports are (at the moment) all free for UDP on 127.0.0.1.
//   node util.mjs stun-ping HOST PORT TIMEOUT_MS
//       Send STUN Binding requests (RFC 5389) over UDP until a matching
//       success response arrives.  Exit 0 and print the XOR-MAPPED-ADDRESS,
//       or exit 1 after TIMEOUT_MS.
//
// Only ever talks to the address it is given (relay.sh passes 127.0.0.1).

import dgram from 'node:dgram';
import crypto from 'node:crypto';

function tryBind(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, '127.0.0.1', () => { s.close(); resolve(true); });
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

function stunPing(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const txid = crypto.randomBytes(12);
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0);       // Binding request
    req.writeUInt16BE(0, 2);            // length
    req.writeUInt32BE(0x2112A442, 4);   // magic cookie
    txid.copy(req, 8);
    let timer, deadline;
    const finish = (code, msg) => {
      clearInterval(timer); clearTimeout(deadline);
      try { sock.close(); } catch { /* already closed */ }
      console.log(msg);
      resolve(code);
    };
    sock.on('error', (e) => { /* ICMP port unreachable etc.: keep retrying */ void e; });
    sock.on('message', (msg) => {
      if (msg.length < 20) return;
      if (msg.readUInt32BE(4) !== 0x2112A442) return;
      if (!msg.subarray(8, 20).equals(txid)) return;
      const type = msg.readUInt16BE(0);
      if (type !== 0x0101) {
        finish(1, `unexpected STUN response type 0x${type.toString(16)}`);
        return;
      }
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
      finish(0, `binding success, XOR-MAPPED-ADDRESS ${mapped}`);
    });
    const send = () => sock.send(req, port, host, () => {});
    sock.bind(0, host.includes(':') ? '::1' : '127.0.0.1', () => {
      send();
      timer = setInterval(send, 200);
    });
    deadline = setTimeout(() => finish(1, `no STUN Binding response from ${host}:${port} within ${timeoutMs} ms`), timeoutMs);
  });
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'free-udp-port') {
    const ex = rest.length >= 2 ? [Number(rest[0]), Number(rest[1])] : [];
    console.log(await freeUdpPort(...ex));
  } else if (cmd === 'relay-window') {
    console.log((await relayWindow(Number(rest[0] || 200))).join(' '));
  } else if (cmd === 'stun-ping') {
    process.exitCode = await stunPing(rest[0], Number(rest[1]), Number(rest[2] || 10000));
  } else {
    console.error('usage: util.mjs free-udp-port|relay-window|stun-ping ...');
    process.exitCode = 2;
  }
} catch (e) {
  console.error(String(e && e.message || e));
  process.exitCode = 1;
}
