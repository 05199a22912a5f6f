// lib.mjs -- helpers shared by the signaling tests (protocol.mjs,
// secure.mjs): raw HTTP exchanges, a recording "ws" client, and a raw
// WebSocket client that writes hand-made frames. They talk to
// 127.0.0.1:C.port with Origin C.origin; the scripts fill C in.
import crypto from 'node:crypto';
import net from 'node:net';

export const C = {};

// Loads the npm "ws" client (late, so --count works before npm ci).
export async function loadWs() { C.WebSocket = (await import('ws')).default; }

// A join token (docs/signaling.md): "EXPIRY:USER:ROOM:" + base64url HMAC-SHA256.
export function mint(secret, exp, user, room) {
  const payload = `${exp}:${user}:${room}`;
  return payload + ':' + crypto.createHmac('sha256', secret).update(payload).digest('base64url');
}

export const sleep = (ms) => new Promise(r => setTimeout(r, ms));

export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

// A raw HTTP/1.1 exchange: sends text, returns everything until the server
// closes (or the head of a 101).
export function rawHttp(text, { upto101 = false, ms = 3000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const s = net.connect(C.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    s.on('data', d => {
      buf = Buffer.concat([buf, d]);
      if (upto101 && buf.includes('\r\n\r\n')) { s.destroy(); resolve(buf.toString('latin1')); }
    });
    s.on('end', () => resolve(buf.toString('latin1')));
    s.on('close', () => resolve(buf.toString('latin1')));
    s.on('error', reject);
    s.write(text);
  }), ms, 'raw HTTP exchange');
}

export function statusOf(resp) { const m = /^HTTP\/1\.1 (\d{3})/.exec(resp); return m ? Number(m[1]) : null; }
export function headerOf(resp, name) {
  const m = new RegExp(`^${name}:\\s*(.*?)\\r$`, 'mi').exec(resp);
  return m ? m[1] : null;
}

export function upgradeReq(headers) {
  const h = { Host: `127.0.0.1:${C.port}`, Upgrade: 'websocket', Connection: 'Upgrade',
              'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13',
              Origin: C.origin, ...headers };
  let s = 'GET /ws HTTP/1.1\r\n';
  for (const [k, v] of Object.entries(h)) if (v !== null) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

// A ws client that records every message; resolves once open.
export class Client {
  constructor(label) { this.label = label; this.msgs = []; this.waiters = []; this.closed = null; this.pings = 0; }
  open(opts = {}) {
    return withTimeout(new Promise((resolve, reject) => {
      this.ws = new C.WebSocket(`ws://127.0.0.1:${C.port}/ws`, { origin: C.origin, ...opts });
      this.ws.on('open', resolve);
      this.ws.on('error', (e) => { this.error = e; reject(e); });
      this.ws.on('ping', () => { this.pings++; });
      this.ws.on('message', (data, isBinary) => {
        let m;
        try { m = JSON.parse(data.toString()); } catch { m = { unparsable: data.toString() }; }
        this.msgs.push(m);
        this.kick();
      });
      this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this.kick(); });
    }), 3000, `${this.label} opens`);
  }
  kick() { for (const w of this.waiters.splice(0)) w(); }
  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }
  // Waits for (and removes) the first message matching pred.
  async next(pred = () => true, ms = 2000, what = 'a message') {
    const t0 = Date.now();
    for (;;) {
      const i = this.msgs.findIndex(pred);
      if (i >= 0) return this.msgs.splice(i, 1)[0];
      if (this.closed) throw new Error(`${this.label}: closed (${this.closed.code}) while waiting for ${what}`);
      const left = ms - (Date.now() - t0);
      if (left <= 0) throw new Error(`${this.label}: timed out waiting for ${what}; have ${JSON.stringify(this.msgs)}`);
      await new Promise(r => { this.waiters.push(r); setTimeout(r, left); });
    }
  }
  async nothing(pred = () => true, ms = 300) {
    await sleep(ms);
    const m = this.msgs.find(pred);
    if (m) throw new Error(`${this.label}: unexpected message ${JSON.stringify(m)}`);
  }
  async closedWith(ms = 3000) {
    const t0 = Date.now();
    while (!this.closed) {
      if (Date.now() - t0 > ms) throw new Error(`${this.label}: not closed within ${ms} ms`);
      await new Promise(r => { this.waiters.push(r); setTimeout(r, 100); });
    }
    return this.closed;
  }
  close() { try { this.ws.terminate(); } catch { /* gone */ } }
}

export const isErr = (reason) => (m) => m.type === 'error' && m.reason === reason;

// A raw WebSocket connection: handshake, then hand-made frames; collects the
// server's frames (unmasked) and reports the close code.
export class Raw {
  async open() {
    this.frames = [];
    this.buf = Buffer.alloc(0);
    this.ended = false;
    await withTimeout(new Promise((resolve, reject) => {
      this.s = net.connect(C.port, '127.0.0.1');
      let head = true;
      this.s.on('error', () => { this.ended = true; });
      this.s.on('close', () => { this.ended = true; });
      this.s.on('data', d => {
        this.buf = Buffer.concat([this.buf, d]);
        if (head) {
          const i = this.buf.indexOf('\r\n\r\n');
          if (i < 0) return;
          const h = this.buf.subarray(0, i).toString('latin1');
          this.buf = this.buf.subarray(i + 4);
          head = false;
          if (statusOf(h) !== 101) { reject(new Error('no 101: ' + h)); return; }
          resolve();
        }
        this.parse();
      });
      this.s.write(upgradeReq({}));
    }), 3000, 'raw WebSocket handshake');
  }
  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f, off = 2;
      if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); off = 10; }
      if (b.length < off + len) return;
      this.frames.push({ opcode: b[0] & 0x0f, payload: b.subarray(off, off + len) });
      this.buf = b.subarray(off + len);
    }
  }
  frame(opcode, payload, { mask = true, fin = true } = {}) {
    const p = Buffer.from(payload);
    const hdr = [(fin ? 0x80 : 0) | opcode];
    if (p.length < 126) hdr.push((mask ? 0x80 : 0) | p.length);
    else { hdr.push((mask ? 0x80 : 0) | 126, p.length >> 8, p.length & 0xff); }
    let body = p;
    const parts = [Buffer.from(hdr)];
    if (mask) {
      const k = crypto.randomBytes(4);
      body = Buffer.from(p.map((x, i) => x ^ k[i % 4]));
      parts.push(k);
    }
    parts.push(body);
    this.s.write(Buffer.concat(parts));
  }
  async closeCode(ms) {
    const t0 = Date.now();
    for (;;) {
      const f = this.frames.find(x => x.opcode === 8);
      if (f) return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
      if (Date.now() - t0 > ms) throw new Error(`no close frame within ${ms} ms (ended: ${this.ended}; frames: ${this.frames.map(x => x.opcode).join(',')})`);
      await sleep(50);
    }
  }
  destroy() { this.s.destroy(); }
}

