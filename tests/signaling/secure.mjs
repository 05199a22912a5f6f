#!/usr/bin/env node
// Who gets TURN credentials from the signaling endpoint, and its limits
// (docs/signaling.md, "Who gets TURN credentials" and "Limits"), against the
// three servers secure.sh starts on 127.0.0.1:
//   A  etc/turnstone.conf as shipped plus use-auth-secret/static-auth-secret:
//      no signaling-auth-secret, no signaling-open-credentials -> STUN only
//   B  the same plus signaling-auth-secret (and signaling-open-credentials,
//      which it overrides): join and /ice-servers need a join token
//   C  signaling-open-credentials with small limits: 4 connections per IP,
//      2 rooms, 64 KiB output queue, JSON depth 8, rate 1000/s
// Tokens are minted here with node's crypto, independently of the server.
//
// Environment (all required): PORT_A, PORT_B, PORT_C (signaling ports),
// SECRET (static-auth-secret), TOKEN_SECRET (B's signaling-auth-secret),
// TTL (signaling-credential-ttl), ADMIN_TOKEN and ADMIN_ROOM (a token that
// `turnstone-admin signaling-token ADMIN_ROOM carol` printed).
// Options: --count (print the number of tests), --fail-all REASON.

import crypto from 'node:crypto';
import { C, sleep, withTimeout, rawHttp, statusOf, headerOf, Client, isErr, Raw, loadWs, mint } from './lib.mjs';

const TESTS = [
  ['a-page', 'A (shipped config, no signaling-root): GET / serves the demo page (installed or from the source tree)'],
  ['a-ice', 'A: GET /ice-servers answers STUN only, no TURN credential'],
  ['a-join', 'A: join works, iceServers has STUN only'],
  ['b-ice-none', 'B: GET /ice-servers without a token: 401 "token required", no credential'],
  ['b-ice-query', 'B: GET /ice-servers?token=: TURN credential, username EXPIRY:USER.PEERID, valid HMAC'],
  ['b-ice-bearer', 'B: GET /ice-servers with Authorization: Bearer TOKEN: TURN credential'],
  ['b-ice-bad', 'B: /ice-servers with a bad signature, an expired or a malformed token: 401 with the reason'],
  ['b-join-none', 'B: join without a token: error "token required", not joined (no peer-joined, "not in a room")'],
  ['b-join-ok', 'B: join with a valid token: joined, peers, TURN credential for USER.PEERID'],
  ['b-join-bad', 'B: join with a token for another room, expired, badly signed or malformed: error with the reason, not joined'],
  ['b-join-stays', 'B: a refused join leaves the client in its room'],
  ['b-admin', 'B: the token turnstone-admin signaling-token printed is accepted'],
  ['c-conns', 'C: a 5th connection from 127.0.0.1 is refused (signaling-max-conns-per-ip 4); closing one frees a slot'],
  ['c-rooms', 'C: a 3rd room is refused with "too many rooms" (signaling-max-rooms 2); existing rooms can be joined; a freed slot can be used'],
  ['c-depth', 'C: JSON nested 9 deep: error "too deep"; 8 deep is parsed (signaling-max-json-depth 8)'],
  ['c-output', 'C: a client that does not read is dropped once 64 KiB are queued to it (the others get peer-left)'],
];

// ---------------------------------------------------------------- TAP ----
const argv = process.argv.slice(2);
let n = 0, failed = 0;
const done = new Set();
function diag(s) { if (s) for (const l of String(s).split('\n')) console.log('# ' + l); }
function report(name, ok, info) {
  n++;
  done.add(name);
  console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${TESTS.find(t => t[0] === name)[1]}`);
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
async function t(name, fn) {
  try {
    report(name, true, await withTimeout(Promise.resolve().then(fn), 30000, name));
  } catch (e) {
    report(name, false, e.stack || String(e));
  }
}
const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`environment variable ${k} is not set`); return v; };

// ------------------------------------------------------------ helpers ----
const now = () => Math.floor(Date.now() / 1000);
const token = (user, room, exp = now() + 300) => mint(C.tokenSecret, exp, user, room);

function stunOnly(list, who) {
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${who}: iceServers ${JSON.stringify(list)}`);
  const urls = list.flatMap(s => [].concat(s.urls));
  if (urls.some(u => !u.startsWith('stun:'))) throw new Error(`${who}: not STUN only: ${JSON.stringify(list)}`);
  if (list.some(s => 'username' in s || 'credential' in s)) throw new Error(`${who}: has a credential: ${JSON.stringify(list)}`);
  return urls.join(' ');
}

// The TURN entry must carry user id USER.PEERID (peer: 16 hex, or the given
// one) and a password that is HMAC-SHA1(static-auth-secret, username).
function turnFor(list, user, peer, who) {
  const turn = (list || []).find(s => [].concat(s.urls).some(u => u.startsWith('turn:')));
  if (!turn) throw new Error(`${who}: no TURN entry in ${JSON.stringify(list)}`);
  const m = /^(\d+):(.*)\.([0-9a-f]{16})$/.exec(turn.username);
  if (!m || m[2] !== user || (peer && m[3] !== peer)) throw new Error(`${who}: username ${turn.username}, want EXPIRY:${user}.${peer || 'PEERID'}`);
  const exp = Number(m[1]);
  if (Math.abs(exp - (now() + C.ttl)) > 5) throw new Error(`${who}: expiry ${exp} is not now + ${C.ttl}`);
  const want = crypto.createHmac('sha1', C.secret).update(turn.username).digest('base64');
  if (turn.credential !== want) throw new Error(`${who}: credential ${turn.credential}, want ${want}`);
  return turn.username;
}

async function getIce(query = '', headers = {}) {
  const r = await fetch(`http://127.0.0.1:${C.port}/ice-servers${query}`, { headers });
  return { status: r.status, auth: r.headers.get('www-authenticate'), text: await r.text() };
}

// Opens c, retrying for up to ms while the server still counts connections
// that were just closed (their release is asynchronous).
async function openRetry(c, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    try { await c.open(); return; } catch (e) {
      if (Date.now() - t0 > ms) throw new Error(`${c.label}: cannot open within ${ms} ms: ${e.message}`);
      await sleep(200);
    }
  }
}

async function joined(c, msg, what) {
  c.send(msg);
  const j = await c.next(m => m.type === 'joined' || m.type === 'error', 3000, what);
  if (j.type !== 'joined') throw new Error(`${what}: ${JSON.stringify(j)}`);
  c.id = j.id;
  return j;
}

// ------------------------------------------------------------- tests ----
async function serverA() {
  C.port = Number(env('PORT_A'));
  await t('a-page', async () => {
    const r = await fetch(`http://127.0.0.1:${C.port}/`);
    const body = await r.text();
    if (r.status !== 200 || !/^text\/html/.test(r.headers.get('content-type')) || !body.includes('app.js')) throw new Error(`${r.status} ${r.headers.get('content-type')} ${body.slice(0, 200)}`);
    return `${body.length} bytes`;
  });
  await t('a-ice', async () => {
    const r = await getIce();
    if (r.status !== 200 || /credential|username/.test(r.text)) throw new Error(`${r.status} ${r.text}`);
    return stunOnly(JSON.parse(r.text).iceServers, '/ice-servers');
  });
  await t('a-join', async () => {
    const a = new Client('A1');
    try {
      await a.open();
      const j = await joined(a, { type: 'join', room: 'open-room' }, 'join');
      return stunOnly(j.iceServers, 'joined');
    } finally { a.close(); }
  });
}

async function serverB() {
  C.port = Number(env('PORT_B'));
  await t('b-ice-none', async () => {
    const r = await getIce();
    if (r.status !== 401 || JSON.parse(r.text).error !== 'token required' || !/^Bearer/.test(r.auth || '')) throw new Error(`${r.status} ${r.auth} ${r.text}`);
    if (/credential/.test(r.text)) throw new Error(r.text);
    return `${r.status} ${r.text}`;
  });
  await t('b-ice-query', async () => {
    const tok = token('alice', 'any: room+&=?');
    const r = await getIce('?x=1&token=' + encodeURIComponent(tok));
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
    return turnFor(JSON.parse(r.text).iceServers, 'alice', null, '/ice-servers?token=');
  });
  await t('b-ice-bearer', async () => {
    const r = await getIce('', { Authorization: 'Bearer ' + token('bob@example.org', 'r') });
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
    return turnFor(JSON.parse(r.text).iceServers, 'bob@example.org', null, 'Bearer');
  });
  await t('b-ice-bad', async () => {
    const cases = [
      [mint('not-the-secret', now() + 300, 'eve', 'r'), 'token bad signature'],
      [token('eve', 'r', now() - 10), 'token expired'],
      ['1:eve', 'token malformed'],
    ];
    const out = [];
    for (const [tok, reason] of cases) {
      const r = await getIce('?token=' + encodeURIComponent(tok));
      if (r.status !== 401 || JSON.parse(r.text).error !== reason || /credential/.test(r.text)) throw new Error(`${tok}: ${r.status} ${r.text}, want 401 ${reason}`);
      out.push(reason);
    }
    return out.join(', ');
  });

  const room = 'room-' + crypto.randomBytes(4).toString('hex');
  const x = new Client('X'), y = new Client('Y'), z = new Client('Z');
  await x.open(); await y.open(); await z.open();
  await joined(x, { type: 'join', room, token: token('xavier', room) }, 'X joins').catch(() => {});
  await t('b-join-none', async () => {
    y.send({ type: 'join', room });
    await y.next(isErr('token required'), 3000, 'error token required');
    await x.nothing(m => m.type === 'peer-joined');
    y.send({ type: 'chat', text: 'hi' });
    await y.next(isErr('not in a room'), 3000, 'error not in a room');
    await x.nothing(m => m.type === 'chat', 0);
  });
  await t('b-join-ok', async () => {
    const j = await joined(y, { type: 'join', room, token: token('yvonne', room) }, 'Y joins');
    if (JSON.stringify(j.peers) !== JSON.stringify([x.id])) throw new Error(`peers ${JSON.stringify(j.peers)}, want [${x.id}]`);
    await x.next(m => m.type === 'peer-joined' && m.id === y.id, 3000, 'peer-joined');
    return turnFor(j.iceServers, 'yvonne', y.id, 'joined');
  });
  await t('b-join-bad', async () => {
    const cases = [
      [token('zoe', room + '-other'), 'token for another room'],
      [token('zoe', room, now() - 1), 'token expired'],
      [mint('wrong', now() + 300, 'zoe', room), 'token bad signature'],
      ['garbage', 'token malformed'],
      [12345, 'token malformed'],
    ];
    for (const [tok, reason] of cases) {
      z.send({ type: 'join', room, token: tok });
      await z.next(isErr(reason), 3000, `error ${reason}`);
    }
    await x.nothing(m => m.type === 'peer-joined');
    z.send({ type: 'chat' });
    await z.next(isErr('not in a room'), 3000, 'error not in a room');
  });
  await t('b-join-stays', async () => {
    y.send({ type: 'join', room: 'elsewhere', token: token('yvonne', room) });
    await y.next(isErr('token for another room'), 3000, 'error token for another room');
    y.send({ type: 'chat', to: x.id, text: 'still here' });
    const m = await x.next(m => m.type === 'chat', 3000, 'chat from Y');
    if (m.from !== y.id) throw new Error(JSON.stringify(m));
    await x.nothing(m => m.type === 'peer-left', 0);
  });
  await t('b-admin', async () => {
    const a = new Client('carol');
    try {
      await a.open();
      const j = await joined(a, { type: 'join', room: env('ADMIN_ROOM'), token: env('ADMIN_TOKEN') }, 'join with the admin token');
      return turnFor(j.iceServers, 'carol', j.id, 'joined');
    } finally { a.close(); }
  });
  for (const c of [x, y, z]) c.close();
}

async function serverC() {
  C.port = Number(env('PORT_C'));
  await t('c-conns', async () => {
    const cs = [1, 2, 3, 4].map(i => new Client('C' + i));
    try {
      for (const c of cs) await openRetry(c);
      const fifth = new Client('C5');
      const opened = await fifth.open().then(() => true, () => false);
      if (opened) { fifth.close(); throw new Error('a 5th connection from 127.0.0.1 was accepted'); }
      // refused: closed unanswered, or reset (our request was unread)
      const http = await rawHttp('GET /ice-servers HTTP/1.1\r\nHost: x\r\n\r\n').catch(() => '');
      if (statusOf(http) !== null) throw new Error(`a 5th HTTP connection was answered: ${http.slice(0, 80)}`);
      cs[0].close();
      const again = new Client('C1 again');
      await openRetry(again);
      cs[0] = again;
      return 'refused the 5th; a slot was freed after a close';
    } finally { for (const c of cs) c.close(); }
  });
  await t('c-rooms', async () => {
    const [a, b, c] = [new Client('RA'), new Client('RB'), new Client('RC')];
    try {
      for (const x of [a, b, c]) await openRetry(x);
      await joined(a, { type: 'join', room: 'r1' }, 'a joins r1');
      await joined(b, { type: 'join', room: 'r2' }, 'b joins r2');
      c.send({ type: 'join', room: 'r3' });
      await c.next(isErr('too many rooms'), 3000, 'error too many rooms');
      const j = await joined(c, { type: 'join', room: 'r1' }, 'c joins the existing r1');
      if (JSON.stringify(j.peers) !== JSON.stringify([a.id])) throw new Error(`peers ${JSON.stringify(j.peers)}`);
      b.send({ type: 'leave' });
      b.send({ type: 'chat' }); // answered only after the leave was handled
      await b.next(isErr('not in a room'), 3000, 'b left');
      await joined(c, { type: 'join', room: 'r3' }, 'c joins r3 once r2 is gone');
    } finally { for (const x of [a, b, c]) x.close(); }
  });
  await t('c-depth', async () => {
    const a = new Client('D');
    try {
      await openRetry(a);
      a.send(`{"type":"x","a":${'['.repeat(8)}1${']'.repeat(8)}}`);
      await a.next(isErr('too deep'), 3000, 'error too deep');
      a.send(`{"type":"x","a":${'['.repeat(7)}1${']'.repeat(7)}}`);
      await a.next(isErr('not in a room'), 3000, '8 levels parsed (error not in a room)');
    } finally { a.close(); }
  });
  await t('c-output', async () => {
    const r = new Raw(), s = new Client('sender');
    try {
      await withTimeout((async () => { for (;;) { try { await r.open(); return; } catch { await sleep(200); } } })(), 5000, 'raw client opens');
      r.frame(1, JSON.stringify({ type: 'join', room: 'out' }));
      for (let i = 0; !r.frames.some(f => f.opcode === 1 && f.payload.includes('"joined"')); i++) {
        if (i > 60) throw new Error('the raw client was not joined');
        await sleep(50);
      }
      const rid = JSON.parse(r.frames.find(f => f.opcode === 1).payload).id;
      r.s.pause(); // from now on it reads nothing
      await openRetry(s);
      const j = await joined(s, { type: 'join', room: 'out' }, 'sender joins');
      if (!j.peers.includes(rid)) throw new Error(`peers ${JSON.stringify(j.peers)}`);
      const blob = 'x'.repeat(60000);
      for (let i = 0; i < 400; i++) s.send({ type: 'blob', i, blob });
      const left = await s.next(m => m.type === 'peer-left' && m.id === rid, 20000, 'peer-left of the non-reader');
      return `non-reader ${left.id} dropped`;
    } finally { r.destroy(); s.close(); }
  });
}

async function main() {
  await loadWs();
  C.secret = env('SECRET');
  C.tokenSecret = env('TOKEN_SECRET');
  C.ttl = Number(env('TTL'));
  await serverA();
  await serverB();
  await serverC();
}

main().catch(e => { diag('fatal: ' + (e.stack || e)); }).finally(() => {
  for (const [name] of TESTS) if (!done.has(name)) report(name, false, 'not reached');
  process.exit(failed ? 1 : 0);
});
