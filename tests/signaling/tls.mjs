#!/usr/bin/env node
// signaling-tls tests (TAP) of turnstone's signaling endpoint
// (docs/signaling.md): https:// and wss:// with the TURN certificate, the
// certificate verified for real against the self-signed test certificate
// (never rejectUnauthorized: false), and a certificate reload on SIGHUP.
// tls.sh makes the certificates, starts the server and sets the environment.
//
// Environment (all required):
//   SIG_PORT     the server's signaling port on 127.0.0.1 (https/wss)
//   TURN_PORT    the server's TURN listening port (UDP/TCP)
//   TLS_PORT     the server's TURN TLS listening port
//   SECRET       the static-auth-secret
//   SERVER_PID   the server's PID (gets one SIGHUP)
//   CERT, PKEY   the cert/pkey files the server was started with
//   CERT2, PKEY2 a second self-signed certificate and key, copied over
//                CERT and PKEY before the SIGHUP
//   INDEX_HTML   path of the index.html the server serves
// Options: --count (print the number of tests), --fail-all REASON.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

const TESTS = [
  ['https-index', 'GET https://127.0.0.1:S/ serves index.html, the certificate verified against the test certificate'],
  ['https-ice', 'GET /ice-servers over https: JSON with turns:127.0.0.1:T?transport=tcp and a valid REST credential'],
  ['plain-http', 'a plain http:// request to the TLS port gets no 200 page'],
  ['wss-join', 'wss://: a client joins a room, a second one joins and the first gets peer-joined'],
  ['wss-forward', 'wss://: an offer is forwarded with from set and the SDP untouched'],
  ['reload', 'SIGHUP after replacing cert/pkey: new https connections get the new certificate (fingerprint), the old one is no longer served'],
  ['wss-kept', 'the wss connections opened before the reload still work both ways'],
  ['wss-new', 'a new wss client (trusting only the new certificate) joins the same room after the reload'],
  ['alive', 'the server still answers https after all of the above'],
];

// ---------------------------------------------------------------- TAP ----
const argv = process.argv.slice(2);
let n = 0, failed = 0;
const done = new Set();
function diag(s) { if (s) for (const l of String(s).split('\n')) console.log('# ' + l); }
function report(name, ok, info) {
  n++;
  done.add(name);
  const desc = TESTS.find(t => t[0] === name)[1];
  console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${desc}`);
  if (!ok) failed++;
  if (info) diag(info);
}
if (argv[0] === '--count') { console.log(TESTS.length); process.exit(0); }
if (argv[0] === '--fail-all') {
  console.log(`1..${TESTS.length}`);
  for (const [name] of TESTS) report(name, false, 'not run: ' + argv[1]);
  process.exit(1);
}
console.log(`1..${TESTS.length}`);

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`environment variable ${k} is not set`); return v; };
let WebSocket;
const C = {};

// ------------------------------------------------------------ helpers ----
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

// One GET over a fresh TLS connection that must verify against ca (a PEM
// or a list of them). Resolves {status, headers, body, authorized, fp,
// protocol}; rejects on any TLS or HTTP error (e.g. verification failure).
function httpsGet(urlPath, ca, ms = 3000) {
  return withTimeout(new Promise((resolve, reject) => {
    let fp = null, authorized = null, protocol = null;
    const req = https.get({
      host: '127.0.0.1', port: C.port, path: urlPath, ca, rejectUnauthorized: true, agent: false,
      headers: { Host: `127.0.0.1:${C.port}` },
    }, (res) => {
      const chunks = [];
      res.on('data', d => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), authorized, fp, protocol }));
      res.on('error', reject);
    });
    req.on('socket', (s) => s.once('secureConnect', () => {
      fp = s.getPeerCertificate().fingerprint256 || null;
      authorized = s.authorized;
      protocol = s.getProtocol();
    }));
    req.on('error', reject);
  }), ms, `GET https://127.0.0.1:${C.port}${urlPath}`);
}

// A wss client that records every message; resolves once open.
class Client {
  constructor(label) { this.label = label; this.msgs = []; this.waiters = []; this.closed = null; }
  open(ca) {
    return withTimeout(new Promise((resolve, reject) => {
      this.ws = new WebSocket(`wss://127.0.0.1:${C.port}/ws`, { ca, rejectUnauthorized: true });
      this.ws.on('upgrade', (res) => { this.fp = res.socket.getPeerCertificate().fingerprint256; this.authorized = res.socket.authorized; });
      this.ws.on('open', resolve);
      this.ws.on('error', (e) => { this.error = e; reject(e); });
      this.ws.on('message', (data) => {
        let m;
        try { m = JSON.parse(data.toString()); } catch { m = { unparsable: data.toString() }; }
        this.msgs.push(m);
        this.kick();
      });
      this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this.kick(); });
    }), 3000, `${this.label} opens wss://127.0.0.1:${C.port}/ws`);
  }
  kick() { for (const w of this.waiters.splice(0)) w(); }
  send(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new Error(`${this.label}: not open (${JSON.stringify(this.closed)})`);
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }
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
  close() { try { this.ws.terminate(); } catch { /* gone */ } }
}

function verifyRest(username, credential) {
  const want = crypto.createHmac('sha1', C.secret).update(username).digest('base64');
  if (want !== credential) throw new Error(`credential ${credential} is not HMAC-SHA1(secret, ${username}) = ${want}`);
}

// Checks an iceServers list: the turns: URL for the TLS port (and the plain
// ones), with a REST credential on the entry carrying the turns: URL.
function checkIceServers(list, who) {
  if (!Array.isArray(list)) throw new Error(`${who}: iceServers is not an array: ${JSON.stringify(list)}`);
  const urls = list.flatMap(s => [].concat(s.urls));
  const turns = `turns:127.0.0.1:${C.tlsPort}?transport=tcp`;
  const want = [turns, `stun:127.0.0.1:${C.turnPort}`, `turn:127.0.0.1:${C.turnPort}?transport=udp`,
                `turn:127.0.0.1:${C.turnPort}?transport=tcp`];
  for (const u of want) if (!urls.includes(u)) throw new Error(`${who}: ${u} missing from ${JSON.stringify(urls)}`);
  const entry = list.find(s => [].concat(s.urls).includes(turns));
  if (typeof entry.username !== 'string' || typeof entry.credential !== 'string') {
    throw new Error(`${who}: the ${turns} entry has no username/credential: ${JSON.stringify(entry)}`);
  }
  verifyRest(entry.username, entry.credential);
  return `urls ${urls.join(' ')}; username ${entry.username}`;
}

const fingerprint = (pem) => new crypto.X509Certificate(pem).fingerprint256;

// Copies src over dst atomically (temp file + rename in dst's directory).
function replaceFile(src, dst) {
  const tmp = path.join(path.dirname(dst), `.${path.basename(dst)}.new`);
  fs.copyFileSync(src, tmp);
  fs.renameSync(tmp, dst);
}

// ---------------------------------------------------------------- tests ----
async function t(name, fn) {
  try {
    const info = await withTimeout(Promise.resolve().then(fn), 20000, name);
    report(name, true, info);
  } catch (e) {
    report(name, false, e.stack || String(e));
  }
}

async function main() {
  ({ default: WebSocket } = await import('ws'));
  C.port = Number(env('SIG_PORT'));
  C.turnPort = Number(env('TURN_PORT'));
  C.tlsPort = Number(env('TLS_PORT'));
  C.secret = env('SECRET');
  C.pid = Number(env('SERVER_PID'));
  C.cert = env('CERT');
  C.pkey = env('PKEY');
  C.cert2 = env('CERT2');
  C.pkey2 = env('PKEY2');
  C.index = env('INDEX_HTML');
  const ca1 = fs.readFileSync(C.cert), ca2 = fs.readFileSync(C.cert2);
  const fp1 = fingerprint(ca1), fp2 = fingerprint(ca2);
  diag(`certificate 1: ${fp1}\ncertificate 2: ${fp2}`);

  await t('https-index', async () => {
    const r = await httpsGet('/', ca1);
    const want = fs.readFileSync(C.index);
    if (r.authorized !== true) throw new Error(`TLS socket not authorized (${r.authorized})`);
    if (r.fp !== fp1) throw new Error(`server certificate ${r.fp}, want the test certificate ${fp1}`);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    if (!/^text\/html/.test(r.headers['content-type'] || '')) throw new Error(`content-type ${r.headers['content-type']}`);
    if (Number(r.headers['content-length']) !== want.length || !r.body.equals(want)) throw new Error('body differs from index.html');
    return `${r.body.length} bytes over ${r.protocol}, certificate ${r.fp}`;
  });

  await t('https-ice', async () => {
    const r = await httpsGet('/ice-servers', ca1);
    if (r.authorized !== true || r.fp !== fp1) throw new Error(`authorized ${r.authorized}, certificate ${r.fp}`);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    if (!/^application\/json/.test(r.headers['content-type'] || '')) throw new Error(`content-type ${r.headers['content-type']}`);
    let j;
    try { j = JSON.parse(r.body.toString()); } catch (e) { throw new Error(`not JSON: ${r.body.toString().slice(0, 200)}`); }
    return checkIceServers(j.iceServers, '/ice-servers');
  });

  await t('plain-http', async () => {
    // Waits for the server to close (or 5 s): whatever it sends must not be
    // an HTTP 200 (a TLS server sees a bad record and drops the connection).
    const t0 = Date.now();
    const { data, how } = await new Promise((resolve) => {
      let buf = Buffer.alloc(0), settled = false;
      const finish = (how) => { if (!settled) { settled = true; s.destroy(); resolve({ data: buf, how }); } };
      const s = net.connect(C.port, '127.0.0.1', () => s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${C.port}\r\n\r\n`));
      s.on('data', d => { buf = Buffer.concat([buf, d]); });
      s.on('end', () => finish('closed by the server'));
      s.on('close', () => finish('closed'));
      s.on('error', (e) => finish(`error ${e.code || e.message}`));
      setTimeout(() => finish('still open after 5 s (client gave up)'), 5000);
    });
    const text = data.toString('latin1'), lower = text.toLowerCase();
    const info = `${how} after ${Date.now() - t0} ms; ${data.length} bytes back` +
      (data.length ? `: ${JSON.stringify(text.slice(0, 80))}` : '');
    if (/^HTTP\/1\.[01] 200/.test(text) || lower.includes('<html') || lower.includes('<!doctype') || text.includes('iceServers')) {
      throw new Error(`plain http got a page: ${info}`);
    }
    return info;
  });

  const room = 'tls-' + crypto.randomBytes(4).toString('hex');
  const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=note:"tls" \\ ünïcode\r\n';
  const a = new Client('A'), b = new Client('B'), c = new Client('C');
  await t('wss-join', async () => {
    await a.open(ca1);
    if (a.authorized !== true || a.fp !== fp1) throw new Error(`A: authorized ${a.authorized}, certificate ${a.fp}`);
    a.send({ type: 'join', room });
    const ja = await a.next(m => m.type === 'joined', 2000, 'joined (A)');
    if (!/^[0-9a-f]{16}$/.test(ja.id) || !Array.isArray(ja.peers) || ja.peers.length !== 0) throw new Error(`A joined: ${JSON.stringify(ja)}`);
    a.id = ja.id;
    checkIceServers(ja.iceServers, 'joined');
    await b.open(ca1);
    b.send({ type: 'join', room });
    const jb = await b.next(m => m.type === 'joined', 2000, 'joined (B)');
    b.id = jb.id;
    if (JSON.stringify(jb.peers) !== JSON.stringify([a.id])) throw new Error(`B peers ${JSON.stringify(jb.peers)}, want [${a.id}]`);
    const pj = await a.next(m => m.type === 'peer-joined', 2000, 'peer-joined at A');
    if (pj.id !== b.id) throw new Error(`peer-joined id ${pj.id}, want ${b.id}`);
    return `A ${a.id}, B ${b.id} in ${room}`;
  });

  await t('wss-forward', async () => {
    a.send({ type: 'offer', to: b.id, sdp });
    const m = await b.next(m => m.type === 'offer', 2000, 'offer at B');
    if (m.from !== a.id || m.to !== b.id || m.sdp !== sdp) throw new Error(JSON.stringify(m));
    await a.nothing(m => m.type === 'offer', 200);
  });

  await t('reload', async () => {
    if (fp1 === fp2) throw new Error('the two test certificates have the same fingerprint');
    replaceFile(C.pkey2, C.pkey);
    replaceFile(C.cert2, C.cert);
    process.kill(C.pid, 'SIGHUP');
    // The reload is asynchronous (main thread -> signaling thread): poll
    // with both certificates trusted until the new one is served.
    const t0 = Date.now();
    let last = null;
    for (;;) {
      try { last = (await httpsGet('/ice-servers', [ca1, ca2])).fp; } catch (e) { last = `error: ${e.code || e.message}`; }
      if (last === fp2) break;
      if (Date.now() - t0 > 5000) throw new Error(`still ${last === fp1 ? 'the old certificate' : last} 5 s after SIGHUP`);
      await sleep(100);
    }
    const el = Date.now() - t0;
    // Trusting only the new certificate: verified and served.
    const r = await httpsGet('/', ca2);
    if (r.authorized !== true || r.fp !== fp2 || r.status !== 200) throw new Error(`new certificate only: authorized ${r.authorized}, certificate ${r.fp}, status ${r.status}`);
    // Trusting only the old certificate: refused by verification, several times.
    for (let i = 0; i < 3; i++) {
      let res;
      try { res = await httpsGet('/', ca1); } catch (e) { res = e; }
      if (!(res instanceof Error)) throw new Error(`a client trusting only the old certificate got status ${res.status} (certificate ${res.fp})`);
      if (!/CERT|SIGNATURE|VERIFY|ISSUER/i.test(res.code || res.message)) throw new Error(`old-certificate client failed for another reason: ${res.code} ${res.message}`);
      if (i === 2) return `new certificate served ${el} ms after SIGHUP; old-only client: ${res.code}`;
    }
  });

  await t('wss-kept', async () => {
    if (a.closed || b.closed) throw new Error(`closed: A ${JSON.stringify(a.closed)}, B ${JSON.stringify(b.closed)}`);
    a.send({ type: 'offer', to: b.id, sdp: sdp + 'a=after-reload\r\n' });
    const m = await b.next(m => m.type === 'offer', 2000, 'offer at B after the reload');
    if (m.from !== a.id || m.sdp !== sdp + 'a=after-reload\r\n') throw new Error(JSON.stringify(m));
    b.send({ type: 'answer', to: a.id, sdp: 'answer-after-reload' });
    const m2 = await a.next(m => m.type === 'answer', 2000, 'answer at A after the reload');
    if (m2.from !== b.id || m2.sdp !== 'answer-after-reload') throw new Error(JSON.stringify(m2));
    return `existing connections still on certificate ${a.fp === fp1 && b.fp === fp1 ? '1' : `${a.fp} / ${b.fp}`}`;
  });

  await t('wss-new', async () => {
    await c.open(ca2);
    if (c.authorized !== true || c.fp !== fp2) throw new Error(`C: authorized ${c.authorized}, certificate ${c.fp}`);
    c.send({ type: 'join', room });
    const jc = await c.next(m => m.type === 'joined', 2000, 'joined (C)');
    c.id = jc.id;
    const peers = [...jc.peers].sort(), want = [a.id, b.id].sort();
    if (JSON.stringify(peers) !== JSON.stringify(want)) throw new Error(`C peers ${JSON.stringify(jc.peers)}, want ${JSON.stringify(want)}`);
    const pa = await a.next(m => m.type === 'peer-joined', 2000, 'peer-joined C at A');
    const pb = await b.next(m => m.type === 'peer-joined', 2000, 'peer-joined C at B');
    if (pa.id !== c.id || pb.id !== c.id) throw new Error(JSON.stringify([pa, pb]));
    c.send({ type: 'chat', to: a.id, text: 'hi over the new certificate' });
    const m = await a.next(m => m.type === 'chat', 2000, 'chat from C at A');
    if (m.from !== c.id || m.text !== 'hi over the new certificate') throw new Error(JSON.stringify(m));
  });
  for (const x of [a, b, c]) x.close();

  await t('alive', async () => {
    const r = await httpsGet('/ice-servers', ca2);
    if (r.status !== 200 || r.fp !== fp2) throw new Error(`status ${r.status}, certificate ${r.fp}`);
  });
}

main().catch(e => { diag('fatal: ' + (e.stack || e)); }).finally(() => {
  for (const [name] of TESTS) if (!done.has(name)) report(name, false, 'not reached');
  process.exit(failed ? 1 : 0);
});
