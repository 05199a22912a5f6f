#!/usr/bin/env node
// Protocol tests (TAP) of turnstone's signaling endpoint (docs/signaling.md):
// HTTP (page, /ice-servers, bad requests), the RFC 6455 handshake, rooms and
// forwarding with the npm "ws" client, and framing violations with a raw
// socket client.  protocol.sh starts the server and sets the environment.
//
// Environment (all required):
//   SIG_PORT     the server's signaling port on 127.0.0.1
//   SIG_ORIGIN   the one allowed Origin the server was started with
//   TURN_PORT    the server's TURN listening port
//   SECRET       the static-auth-secret
//   TTL          signaling-credential-ttl, seconds
//   ROOM_SIZE    signaling-room-size
//   RATE         signaling-rate
//   IDLE         signaling-idle-timeout, seconds
//   MAX_MESSAGE  signaling-max-message, bytes
//   INDEX_HTML   path of the index.html the server serves
// Options: --count (print the number of tests), --fail-all REASON.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { C, sleep, withTimeout, rawHttp, statusOf, headerOf, upgradeReq, Client, isErr, Raw, loadWs } from './lib.mjs';

const TESTS = [
  ['http-index', 'GET / serves index.html (200, text/html, no-cache, same bytes)'],
  ['http-404', 'GET of a missing file, a traversal (/../, /%2e%2e/) and a dot file answer 404'],
  ['http-405', 'POST / answers 405'],
  ['http-431', 'a request head over 8 KiB answers 431'],
  ['http-ice', 'GET /ice-servers: stun: and turn: URLs on 127.0.0.1 with a valid REST credential expiring in TTL'],
  ['http-ice-origin', 'GET /ice-servers with an Origin outside signaling-origin answers 403; allowed or no Origin: 200'],
  ['ws-accept', 'handshake: Sec-WebSocket-Accept is base64(SHA-1(key + GUID))'],
  ['ws-version', 'handshake: Sec-WebSocket-Version 8 answers 426 with Sec-WebSocket-Version: 13'],
  ['ws-key', 'handshake: a missing or malformed Sec-WebSocket-Key answers 400'],
  ['ws-origin', 'handshake: an Origin outside signaling-origin (or none) answers 403'],
  ['join-first', 'join: first peer gets joined with a 16-hex id, no peers, iceServers with TURN credentials (open credentials: user id = peer id)'],
  ['join-second', 'join: second peer gets the first in peers; the first gets peer-joined'],
  ['forward-to', 'offer with to reaches only that peer, from set, SDP untouched'],
  ['forge-from', 'a client cannot forge from: the server overwrites it'],
  ['broadcast', 'a message without to reaches every other peer in the room, not the sender'],
  ['custom-type', 'an app-defined type with to is forwarded'],
  ['unknown-to', 'unknown to: error "unknown peer" to the sender only'],
  ['bad-json', 'non-JSON text: error "invalid JSON", connection stays usable'],
  ['not-object', 'a JSON array: error "not a JSON object"'],
  ['no-type', 'missing type: error "missing type"'],
  ['too-deep', 'nesting deeper than signaling-max-json-depth (32): error "too deep"; 32 levels are parsed'],
  ['reserved', 'a client type the server uses (peer-left) is refused with an error'],
  ['no-room', 'a message before join: error "not in a room"'],
  ['join-no-room', 'join without a room: error "missing room"'],
  ['room-full', 'a join over signaling-room-size: error "room full"'],
  ['rejoin', 'join of another room moves the peer: the old room gets peer-left'],
  ['leave', 'leave: the others get peer-left'],
  ['disconnect', 'a disconnect: the others get peer-left'],
  ['fragmented', 'a message sent in three fragments is reassembled and forwarded'],
  ['big-ok', 'a message just under signaling-max-message is forwarded'],
  ['too-big', 'a 1 MiB message is refused with close 1009'],
  ['binary', 'a binary frame closes with 1003'],
  ['unmasked', 'an unmasked client frame closes with 1002'],
  ['rate-error', 'a burst over signaling-rate gets error "rate limit"'],
  ['rate-close', 'a sustained flood (over 3x the rate) closes with 1008'],
  ['ping', 'the server pings an idle client every idle-timeout/2'],
  ['idle', 'a client that never answers is closed after the idle timeout'],
  ['alive', 'the server still answers HTTP after all of the above'],
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

function verifyRest(username, credential) {
  const want = crypto.createHmac('sha1', C.secret).update(username).digest('base64');
  if (want !== credential) throw new Error(`credential ${credential} is not HMAC-SHA1(secret, ${username}) = ${want}`);
  const exp = Number(username.split(':')[0]);
  const now = Math.floor(Date.now() / 1000);
  if (!(exp >= now + C.ttl - 5 && exp <= now + C.ttl + 5)) throw new Error(`expiry ${exp} is not now+${C.ttl} (${now + C.ttl})`);
}

function checkIceServers(list, who) {
  if (!Array.isArray(list)) throw new Error(`${who}: iceServers is not an array`);
  const urls = list.flatMap(s => [].concat(s.urls));
  const want = [`stun:127.0.0.1:${C.turnPort}`, `turn:127.0.0.1:${C.turnPort}?transport=udp`];
  for (const u of want) if (!urls.includes(u)) throw new Error(`${who}: ${u} missing from ${JSON.stringify(urls)}`);
  const turn = list.find(s => [].concat(s.urls).some(u => u.startsWith('turn:')));
  verifyRest(turn.username, turn.credential);
  return `urls ${urls.join(' ')}; username ${turn.username}`;
}

// ---------------------------------------------------------------- tests ----
const R = {};
async function t(name, fn) {
  try {
    const info = await withTimeout(Promise.resolve().then(fn), 20000, name);
    report(name, true, info);
  } catch (e) {
    report(name, false, e.stack || String(e));
  }
}

async function httpTests() {
  await t('http-index', async () => {
    const r = await fetch(`http://127.0.0.1:${C.port}/`);
    const body = Buffer.from(await r.arrayBuffer());
    const want = fs.readFileSync(C.index);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    if (!/^text\/html/.test(r.headers.get('content-type'))) throw new Error(`content-type ${r.headers.get('content-type')}`);
    if (r.headers.get('cache-control') !== 'no-cache') throw new Error(`cache-control ${r.headers.get('cache-control')}`);
    if (Number(r.headers.get('content-length')) !== want.length || !body.equals(want)) throw new Error('body differs from index.html');
    return `${body.length} bytes`;
  });
  await t('http-404', async () => {
    const out = [];
    for (const p of ['/nothing-here.js', '/../../etc/passwd', '/%2e%2e/etc/passwd', '/./index.html', '/.hidden.txt', '//etc/passwd', '/index.html/..']) {
      const s = statusOf(await rawHttp(`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`));
      out.push(`${p} -> ${s}`);
      if (s !== 404) throw new Error(out.join('\n'));
    }
    return out.join('; ');
  });
  await t('http-405', async () => {
    const s = statusOf(await rawHttp('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'));
    if (s !== 405) throw new Error(`status ${s}`);
  });
  await t('http-431', async () => {
    const s = statusOf(await rawHttp(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`));
    if (s !== 431) throw new Error(`status ${s}`);
    const many = Array.from({ length: 100 }, (_, i) => `X-H${i}: 1\r\n`).join('');
    const s2 = statusOf(await rawHttp(`GET / HTTP/1.1\r\nHost: x\r\n${many}\r\n`));
    if (s2 !== 431) throw new Error(`100 header fields: status ${s2}`);
  });
  await t('http-ice', async () => {
    const r = await fetch(`http://127.0.0.1:${C.port}/ice-servers`);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    if (!/^application\/json/.test(r.headers.get('content-type'))) throw new Error(`content-type ${r.headers.get('content-type')}`);
    return checkIceServers((await r.json()).iceServers, '/ice-servers');
  });
}

async function httpOriginTests() {
  await t('http-ice-origin', async () => {
    const get = (origin) => rawHttp(`GET /ice-servers HTTP/1.1\r\nHost: x\r\n${origin ? `Origin: ${origin}\r\n` : ''}\r\n`);
    const evil = await get('http://evil.test'), good = await get(C.origin.toUpperCase()), none = await get(null);
    if (statusOf(evil) !== 403 || /credential/.test(evil)) throw new Error(`evil origin: ${evil}`);
    if (statusOf(good) !== 200 || !/credential/.test(good)) throw new Error(`allowed origin: ${good}`);
    if (statusOf(none) !== 200) throw new Error(`no origin: ${none}`);
    return 'evil 403, allowed 200, none 200';
  });
}

async function handshakeTests() {
  await t('ws-accept', async () => {
    const key = crypto.randomBytes(16).toString('base64');
    const resp = await rawHttp(upgradeReq({ 'Sec-WebSocket-Key': key }), { upto101: true });
    const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    if (statusOf(resp) !== 101) throw new Error(resp);
    if (headerOf(resp, 'Sec-WebSocket-Accept') !== want) throw new Error(`accept ${headerOf(resp, 'Sec-WebSocket-Accept')}, want ${want}`);
  });
  await t('ws-version', async () => {
    const resp = await rawHttp(upgradeReq({ 'Sec-WebSocket-Version': '8' }));
    if (statusOf(resp) !== 426 || headerOf(resp, 'Sec-WebSocket-Version') !== '13') throw new Error(resp);
  });
  await t('ws-key', async () => {
    for (const k of [null, 'short', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==']) {
      const s = statusOf(await rawHttp(upgradeReq({ 'Sec-WebSocket-Key': k })));
      if (s !== 400) throw new Error(`key ${k}: status ${s}`);
    }
  });
  await t('ws-origin', async () => {
    const s1 = statusOf(await rawHttp(upgradeReq({ Origin: 'http://evil.test' })));
    const s2 = statusOf(await rawHttp(upgradeReq({ Origin: null })));
    if (s1 !== 403 || s2 !== 403) throw new Error(`evil origin: ${s1}, no origin: ${s2}`);
  });
}

async function roomTests() {
  const room = 'room-' + crypto.randomBytes(4).toString('hex');
  const a = new Client('A'), b = new Client('B'), c = new Client('C');
  await t('join-first', async () => {
    await a.open();
    a.send({ type: 'join', room });
    const j = await a.next(m => m.type === 'joined', 2000, 'joined');
    if (!/^[0-9a-f]{16}$/.test(j.id)) throw new Error(`id ${j.id}`);
    if (!Array.isArray(j.peers) || j.peers.length !== 0) throw new Error(`peers ${JSON.stringify(j.peers)}`);
    a.id = j.id;
    const info = checkIceServers(j.iceServers, 'joined');
    const turn = j.iceServers.find(s => s.username);
    if (turn.username.split(':')[1] !== j.id) throw new Error(`username ${turn.username} does not carry the peer id ${j.id}`);
    return `id ${j.id}; ` + info;
  });
  await t('join-second', async () => {
    await b.open();
    b.send({ type: 'join', room });
    const j = await b.next(m => m.type === 'joined', 2000, 'joined');
    b.id = j.id;
    if (JSON.stringify(j.peers) !== JSON.stringify([a.id])) throw new Error(`peers ${JSON.stringify(j.peers)}, want [${a.id}]`);
    const pj = await a.next(m => m.type === 'peer-joined', 2000, 'peer-joined');
    if (pj.id !== b.id) throw new Error(`peer-joined id ${pj.id}`);
    if (a.id === b.id) throw new Error('same id twice');
  });
  await c.open().catch(() => {});
  c.send({ type: 'join', room });
  await c.next(m => m.type === 'joined', 2000, 'joined').then(j => { c.id = j.id; }).catch(() => {});
  await a.next(m => m.type === 'peer-joined').catch(() => {});
  await b.next(m => m.type === 'peer-joined').catch(() => {});
  const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=weird:"quotes" \\ and ünïcode\r\n';
  await t('forward-to', async () => {
    a.send({ type: 'offer', to: b.id, sdp, extra: { n: [1, 2] } });
    const m = await b.next(m => m.type === 'offer', 2000, 'offer');
    if (m.from !== a.id || m.to !== b.id || m.sdp !== sdp || JSON.stringify(m.extra) !== '{"n":[1,2]}') throw new Error(JSON.stringify(m));
    await c.nothing(m => m.type === 'offer');
    await a.nothing(m => m.type === 'offer', 0);
  });
  await t('forge-from', async () => {
    b.send({ type: 'answer', to: a.id, from: c.id, sdp: 'x' });
    const m = await a.next(m => m.type === 'answer', 2000, 'answer');
    if (m.from !== b.id) throw new Error(`from ${m.from}, want ${b.id}`);
  });
  await t('broadcast', async () => {
    a.send({ type: 'candidate', candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host' });
    const mb = await b.next(m => m.type === 'candidate', 2000, 'candidate at B');
    const mc = await c.next(m => m.type === 'candidate', 2000, 'candidate at C');
    if (mb.from !== a.id || mc.from !== a.id || 'to' in mb) throw new Error(JSON.stringify([mb, mc]));
    await a.nothing(m => m.type === 'candidate');
  });
  await t('custom-type', async () => {
    c.send({ type: 'chat', to: a.id, text: 'hi' });
    const m = await a.next(m => m.type === 'chat', 2000, 'chat');
    if (m.from !== c.id || m.text !== 'hi') throw new Error(JSON.stringify(m));
  });
  await t('unknown-to', async () => {
    a.send({ type: 'offer', to: '0000000000000000', sdp });
    await a.next(isErr('unknown peer'), 2000, 'error unknown peer');
    await b.nothing(m => m.type === 'offer');
  });
  await t('bad-json', async () => {
    a.send('{"type": "offer", ');
    await a.next(isErr('invalid JSON'), 2000, 'error invalid JSON');
    a.send({ type: 'ping-app', to: b.id });
    await b.next(m => m.type === 'ping-app', 2000, 'message after the bad one');
  });
  await t('not-object', async () => {
    a.send('[1,2,3]');
    await a.next(isErr('not a JSON object'), 2000, 'error not a JSON object');
  });
  await t('no-type', async () => {
    a.send({ to: b.id, sdp: 'x' });
    await a.next(isErr('missing type'), 2000, 'error missing type');
  });
  await t('too-deep', async () => {
    const nest = (d) => '['.repeat(d) + ']'.repeat(d);
    a.send(`{"type":"deep","to":"${b.id}","x":${nest(32)}}`); // 33 levels with the object
    await a.next(isErr('too deep'), 2000, 'error too deep');
    a.send(`{"type":"deep","to":"${b.id}","x":${nest(31)},"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`);
    const m = await b.next(m => m.type === 'deep', 2000, '32 levels forwarded');
    if (m.from !== a.id) throw new Error(JSON.stringify(m));
    a.send({ type: 42 });
    await a.next(isErr('missing type'), 2000, 'error missing type (number)');
  });
  await t('reserved', async () => {
    a.send({ type: 'peer-left', id: b.id });
    const e = await a.next(m => m.type === 'error', 2000, 'error');
    await c.nothing(m => m.type === 'peer-left');
    return `reason: ${e.reason}`;
  });
  const d = new Client('D'), e = new Client('E');
  await t('no-room', async () => {
    await d.open();
    d.send({ type: 'offer', to: a.id, sdp });
    await d.next(isErr('not in a room'), 2000, 'error not in a room');
  });
  await t('join-no-room', async () => {
    d.send({ type: 'join' });
    await d.next(isErr('missing room'), 2000, 'error missing room');
    d.send({ type: 'join', room: '' });
    await d.next(isErr('missing room'), 2000, 'error missing room (empty)');
    d.send({ type: 'join', room: 7 });
    await d.next(isErr('missing room'), 2000, 'error missing room (number)');
  });
  await t('room-full', async () => {
    if (C.roomSize !== 3) throw new Error(`the test expects signaling-room-size 3, not ${C.roomSize}`);
    d.send({ type: 'join', room });
    await d.next(isErr('room full'), 2000, 'error room full');
    await a.nothing(m => m.type === 'peer-joined');
  });
  await t('rejoin', async () => {
    c.send({ type: 'join', room: room + '-other' });
    const j = await c.next(m => m.type === 'joined', 2000, 'joined');
    if (j.peers.length !== 0) throw new Error(JSON.stringify(j));
    const l1 = await a.next(m => m.type === 'peer-left', 2000, 'peer-left at A');
    const l2 = await b.next(m => m.type === 'peer-left', 2000, 'peer-left at B');
    if (l1.id !== c.id || l2.id !== c.id) throw new Error(JSON.stringify([l1, l2]));
    // now there is room for D
    d.send({ type: 'join', room });
    const jd = await d.next(m => m.type === 'joined', 2000, 'D joined');
    d.id = jd.id;
    await a.next(m => m.type === 'peer-joined' && m.id === d.id, 2000, 'peer-joined D');
    await b.next(m => m.type === 'peer-joined' && m.id === d.id, 2000, 'peer-joined D');
  });
  await t('leave', async () => {
    d.send({ type: 'leave' });
    const l = await a.next(m => m.type === 'peer-left', 2000, 'peer-left');
    await b.next(m => m.type === 'peer-left', 2000, 'peer-left at B');
    if (l.id !== d.id) throw new Error(JSON.stringify(l));
    a.send({ type: 'offer', to: d.id, sdp });
    await a.next(isErr('unknown peer'), 2000, 'error unknown peer after leave');
  });
  await t('disconnect', async () => {
    b.close();
    const l = await a.next(m => m.type === 'peer-left', 3000, 'peer-left');
    if (l.id !== b.id) throw new Error(JSON.stringify(l));
  });
  // Framing: E joins the room so A can forward to it.
  await e.open();
  e.send({ type: 'join', room });
  e.id = (await e.next(m => m.type === 'joined')).id;
  await a.next(m => m.type === 'peer-joined').catch(() => {});
  await t('fragmented', async () => {
    const text = JSON.stringify({ type: 'offer', to: e.id, sdp: 'frag'.repeat(100) });
    const p = [text.slice(0, 10), text.slice(10, 200), text.slice(200)];
    a.ws.send(p[0], { fin: false });
    a.ws.send(p[1], { fin: false });
    a.ws.send(p[2], { fin: true });
    const m = await e.next(m => m.type === 'offer', 2000, 'fragmented offer');
    if (m.sdp !== 'frag'.repeat(100) || m.from !== a.id) throw new Error(JSON.stringify(m).slice(0, 200));
  });
  await t('big-ok', async () => {
    const pad = 'x'.repeat(C.maxMessage - 200);
    a.send({ type: 'offer', to: e.id, sdp: pad });
    const m = await e.next(m => m.type === 'offer', 3000, 'big offer');
    if (m.sdp !== pad) throw new Error('payload differs');
  });
  await t('too-big', async () => {
    const f = new Client('F');
    await f.open();
    f.send({ type: 'offer', sdp: 'y'.repeat(1 << 20) });
    const cl = await f.closedWith(5000);
    if (cl.code !== 1009) throw new Error(`close code ${cl.code}`);
  });
  await t('binary', async () => {
    const g = new Client('G');
    await g.open();
    g.ws.send(Buffer.from([1, 2, 3]));
    const cl = await g.closedWith(3000);
    if (cl.code !== 1003) throw new Error(`close code ${cl.code}`);
  });
  await t('unmasked', async () => {
    const r = new Raw();
    await r.open();
    r.frame(1, '{"type":"join","room":"u"}', { mask: false });
    const code = await r.closeCode(3000);
    r.destroy();
    if (code !== 1002) throw new Error(`close code ${code}`);
  });
  await t('rate-error', async () => {
    const h = new Client('H');
    await h.open();
    for (let i = 0; i < C.rate + 5; i++) h.send({ type: 'noise' });
    await h.next(isErr('rate limit'), 3000, 'error rate limit');
    h.close();
  });
  await t('rate-close', async () => {
    const k = new Client('K');
    await k.open();
    for (let i = 0; i < 5 * C.rate; i++) k.send({ type: 'noise' });
    const cl = await k.closedWith(3000);
    if (cl.code !== 1008) throw new Error(`close code ${cl.code}`);
  });
  for (const x of [a, c, d, e]) x.close();
}

async function keepAliveTests() {
  const p = new Client('P');
  const r = new Raw();
  await p.open().catch(() => {});
  await r.open().catch(() => {});
  const t0 = Date.now();
  await t('ping', async () => {
    await sleep(C.idle * 500 + 1500);
    if (p.pings < 1) throw new Error(`no ping after ${Date.now() - t0} ms`);
    if (p.closed) throw new Error(`closed: ${JSON.stringify(p.closed)}`);
    return `${p.pings} ping(s) in ${Date.now() - t0} ms`;
  });
  await t('idle', async () => {
    // The raw client never answers pings: closed between IDLE and 1.5*IDLE.
    const code = await r.closeCode(C.idle * 1500 + 3000 - (Date.now() - t0));
    const el = Date.now() - t0;
    if (el < C.idle * 1000 - 500) throw new Error(`closed too early, after ${el} ms`);
    if (p.closed) throw new Error(`the ponging client was closed too: ${JSON.stringify(p.closed)}`);
    return `close ${code} after ${el} ms`;
  });
  p.close();
  r.destroy();
}

async function main() {
  await loadWs();
  C.port = Number(env('SIG_PORT'));
  C.origin = env('SIG_ORIGIN');
  C.turnPort = Number(env('TURN_PORT'));
  C.secret = env('SECRET');
  C.ttl = Number(env('TTL'));
  C.roomSize = Number(env('ROOM_SIZE'));
  C.rate = Number(env('RATE'));
  C.idle = Number(env('IDLE'));
  C.maxMessage = Number(env('MAX_MESSAGE'));
  C.index = env('INDEX_HTML');
  const ka = keepAliveTests(); // runs alongside the others (it mostly waits)
  await httpTests();
  await httpOriginTests();
  await handshakeTests();
  await roomTests();
  await ka;
  await t('alive', async () => {
    const r = await fetch(`http://127.0.0.1:${C.port}/ice-servers`);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
  });
}

main().catch(e => { diag('fatal: ' + (e.stack || e)); }).finally(() => {
  for (const [name] of TESTS) if (!done.has(name)) report(name, false, 'not reached');
  process.exit(failed ? 1 : 0);
});
