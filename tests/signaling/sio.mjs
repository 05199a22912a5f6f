#!/usr/bin/env node
// socket.io protocol tests (TAP) of turnstone's signaling endpoint
// (docs/signaling.md, "socket.io"): the Engine.IO v4 handshake, long-polling
// and upgrade by hand over raw HTTP, then the real npm socket.io-client v4
// (polling + upgrade, websocket only, polling only): join with tokens
// (payload, CONNECT auth, query), forwarding of app-named events with
// from/to, acks, interop with a native WebSocket client, binary events and
// other namespaces refused, the heartbeat.  sio.sh starts the server with
// signaling-auth-secret (tokens required) and sets the environment.
//
// Environment (all required):
//   SIG_PORT      the server's signaling port on 127.0.0.1
//   TOKEN_SECRET  the signaling-auth-secret
//   SECRET        the static-auth-secret (TURN REST credentials)
//   IDLE          signaling-idle-timeout, seconds (pingInterval = IDLE/2)
//   MAX_MESSAGE   signaling-max-message, bytes
// Options: --count (print the number of tests), --fail-all REASON.

import crypto from 'node:crypto';
import { C, sleep, withTimeout, rawHttp, statusOf, Client, mint, loadWs } from './lib.mjs';

const TESTS = [
  ['eio-handshake', 'GET /socket.io/?EIO=4&transport=polling: 200, open packet with a 32-hex sid, upgrades ["websocket"], pingInterval IDLE/2 s, maxPayload = signaling-max-message; Access-Control-Allow-Origin echoes an Origin'],
  ['eio-bad', 'EIO=3, an unknown transport and an unknown sid answer 400 with Engine.IO error codes 5, 0 and 1'],
  ['eio-poll', 'raw polling: POST "40" answers ok, the next GET carries 40{"sid":16 hex}'],
  ['eio-held', 'raw polling: a GET with nothing queued is held until the server ping "2"; a POST "3" pong keeps the session'],
  ['eio-nsp', 'raw polling: CONNECT to /admin gets 44/admin,{"message":"Invalid namespace"}'],
  ['eio-upgrade', 'raw upgrade: 2probe gets 3probe, the held GET gets a noop 6, after 5 the packets go over the WebSocket'],
  ['eio-probe-timeout', 'a probe that never sends 5 is closed after pingTimeout; polling then gets packets again, not noops'],
  ['eio-timeout', 'a session that never answers pings is gone after pingInterval + pingTimeout (400, session ID unknown)'],
  ['eio-413', 'a POST body over signaling-max-message answers 413'],
  ['eio-garbage', 'bad Socket.IO packets get error events, events before CONNECT are ignored, an unknown Engine.IO packet closes the session, a POST without Content-Length is 411'],
  ['client-upgrade', 'socket.io-client (default transports) connects by polling and upgrades to websocket; socket.id is 16 hex'],
  ['client-nsp', 'socket.io-client on namespace /admin gets connect_error "Invalid namespace"'],
  ['join-no-token', 'join without a token: ack {error: "token required"}, not in a room'],
  ['join-ack', 'join {room, token} with an ack: {id: socket.id, room, peers: [], iceServers with TURN REST credentials for USER.PEERID}'],
  ['join-auth', 'token in the handshake auth object; join "room" without ack gets the joined event with the first peer in peers'],
  ['join-query', 'token in the handshake query (websocket only transport); the others get peer-joined {id}'],
  ['forward-to', 'rtc_offer {to, from (forged), offer} reaches only "to", with from = the sender\'s id; ack {}'],
  ['broadcast', 'offer (an RTCSessionDescription: {type, sdp}) without to reaches every other peer as {type, sdp, from}'],
  ['polling-only', 'a polling-only client receives forwarded events over its held GETs'],
  ['unknown-to', 'unknown to: ack {error: "unknown peer"}; without ack the error event {reason}'],
  ['reserved', 'emitting a server event name (peer-left) is refused: ack {error: "reserved event"}'],
  ['native-interop', 'a native /ws client in the same room gets {type: "rtc_candidate", ..., from} and its message arrives as an event'],
  ['binary', 'an event with binary data: ack {error: "binary events are not supported"}, the session still works'],
  ['heartbeat', 'an idle socket.io-client stays connected over 2.5 ping intervals, answering pings'],
  ['disconnect', 'socket.disconnect(): the others get peer-left {id}'],
  ['alive', 'the server still answers GET /ice-servers'],
];

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
const check = (cond, what) => { if (!cond) throw new Error(what); };
const J = (x) => JSON.stringify(x);

// ------------------------------------------------------------ helpers ----
const now = () => Math.floor(Date.now() / 1000);
const token = (user, room) => mint(C.tokenSecret, now() + 300, user, room);
const base = () => `http://127.0.0.1:${C.port}`;
const eio = (q = '') => `/socket.io/?EIO=4&transport=polling${q}`;

async function get(path) {
  const r = await fetch(base() + path);
  return { status: r.status, text: await r.text() };
}
async function post(path, body) {
  const r = await fetch(base() + path, { method: 'POST', body, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
  return { status: r.status, text: await r.text() };
}
async function handshake() {
  const r = await get(eio());
  check(r.status === 200 && r.text[0] === '0', `handshake: ${r.status} ${r.text}`);
  return JSON.parse(r.text.slice(1));
}

let io = null;
const sockets = [];
// A socket.io-client socket on a fresh Manager; resolves once connected.
function connect(opts = {}, nsp = '') {
  const s = io(base() + nsp, { forceNew: true, reconnection: false, timeout: 10000, ...opts });
  sockets.push(s);
  return s;
}
function once(s, ev, ms = 8000) {
  return withTimeout(new Promise(r => s.once(ev, (...a) => r(a.length > 1 ? a : a[0]))), ms, `event ${ev}`);
}
async function connected(opts) {
  const s = connect(opts);
  await withTimeout(new Promise((res, rej) => { s.once('connect', res); s.once('connect_error', rej); }), 10000, 'connect');
  return s;
}
const ack = (s, ...args) => withTimeout(s.emitWithAck(...args), 8000, `ack of ${args[0]}`);
// Collects every event s receives.
function record(s) {
  const got = [];
  s.onAny((name, ...args) => got.push([name, ...args]));
  return got;
}
function turnOf(ice) { return ice.find(x => [].concat(x.urls).some(u => u.startsWith('turn:'))); }

// -------------------------------------------------------- raw Engine.IO ----
async function rawTests() {
  await t('eio-handshake', async () => {
    const r = await get(eio('&t=x1'));
    check(r.status === 200, `status ${r.status}`);
    check(r.text[0] === '0', `not an open packet: ${r.text}`);
    const h = JSON.parse(r.text.slice(1));
    check(/^[0-9a-f]{32}$/.test(h.sid), `sid ${h.sid}`);
    check(J(h.upgrades) === '["websocket"]', `upgrades ${J(h.upgrades)}`);
    check(h.pingInterval === C.idle * 500 && h.pingTimeout > 0, `ping ${h.pingInterval}/${h.pingTimeout}`);
    check(h.maxPayload === C.maxMessage, `maxPayload ${h.maxPayload}`);
    const o = await fetch(base() + eio(), { headers: { Origin: 'http://app.test' } });
    check(o.headers.get('access-control-allow-origin') === 'http://app.test', `CORS: ${o.headers.get('access-control-allow-origin')}`);
    await post(eio(`&sid=${h.sid}`), '1');
    await post(eio(`&sid=${JSON.parse((await o.text()).slice(1)).sid}`), '1');
    return r.text;
  });
  await t('eio-bad', async () => {
    const cases = [['/socket.io/?EIO=3&transport=polling', 5], ['/socket.io/?EIO=4&transport=flashsocket', 0],
                   [eio('&sid=' + 'ab'.repeat(16)), 1]];
    for (const [path, code] of cases) {
      const r = await get(path);
      check(r.status === 400 && JSON.parse(r.text).code === code, `${path}: ${r.status} ${r.text}`);
    }
  });
  await t('eio-poll', async () => {
    const h = await handshake();
    const p = await post(eio(`&sid=${h.sid}`), '40');
    check(p.status === 200 && p.text === 'ok', `POST: ${p.status} ${p.text}`);
    const g = await get(eio(`&sid=${h.sid}`));
    check(g.status === 200 && /^40\{"sid":"[0-9a-f]{16}"\}$/.test(g.text), `GET: ${g.status} ${J(g.text)}`);
    await post(eio(`&sid=${h.sid}`), '1');
    return g.text;
  });
  await t('eio-held', async () => {
    const h = await handshake();
    const t0 = Date.now();
    const g = await get(eio(`&sid=${h.sid}`));
    const dt = Date.now() - t0;
    check(g.status === 200 && g.text === '2', `GET: ${g.status} ${J(g.text)}`);
    check(dt > h.pingInterval / 2, `answered after ${dt} ms, before the ping`);
    check((await post(eio(`&sid=${h.sid}`), '3')).text === 'ok', 'pong POST');
    const p = await post(eio(`&sid=${h.sid}`), '40');
    check(p.text === 'ok', `session gone after the pong: ${p.status} ${p.text}`);
    await post(eio(`&sid=${h.sid}`), '1');
    return `held ${dt} ms`;
  });
  await t('eio-nsp', async () => {
    const h = await handshake();
    await post(eio(`&sid=${h.sid}`), '40/admin,');
    const g = await get(eio(`&sid=${h.sid}`));
    check(g.text === '44/admin,{"message":"Invalid namespace"}', `GET: ${J(g.text)}`);
    await post(eio(`&sid=${h.sid}`), '1');
  });
  await t('eio-upgrade', async () => {
    const h = await handshake();
    await post(eio(`&sid=${h.sid}`), '40');
    check((await get(eio(`&sid=${h.sid}`))).text.startsWith('40{'), 'CONNECT reply');
    const held = get(eio(`&sid=${h.sid}`));
    await sleep(200);
    const ws = new C.WebSocket(`ws://127.0.0.1:${C.port}/socket.io/?EIO=4&transport=websocket&sid=${h.sid}`);
    const msgs = [];
    ws.on('message', d => msgs.push(String(d)));
    await withTimeout(new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }), 5000, 'ws open');
    ws.send('2probe');
    const g = await withTimeout(held, 5000, 'held GET');
    check(g.text === '6', `held GET got ${J(g.text)}, want the noop 6`);
    for (let i = 0; i < 50 && !msgs.includes('3probe'); i++) await sleep(50);
    check(msgs[0] === '3probe', `probe answer ${J(msgs)}`);
    ws.send('5');
    ws.send('42["join","x"]');
    for (let i = 0; i < 60 && !msgs.some(m => m.startsWith('42')); i++) await sleep(50);
    const ev = msgs.find(m => m.startsWith('42'));
    check(ev && JSON.parse(ev.slice(2))[0] === 'error', `over the WebSocket: ${J(msgs)}`); // no token
    const after = await get(eio(`&sid=${h.sid}`));
    check(after.status === 400, `a poll after the upgrade: ${after.status} ${after.text}`);
    ws.close();
    return J(msgs);
  });
  await t('eio-probe-timeout', async () => {
    const h = await handshake();
    await post(eio(`&sid=${h.sid}`), '40');
    check((await get(eio(`&sid=${h.sid}`))).text.startsWith('40{'), 'CONNECT reply');
    const ws = new C.WebSocket(`ws://127.0.0.1:${C.port}/socket.io/?EIO=4&transport=websocket&sid=${h.sid}`);
    const msgs = [];
    let closed = null;
    ws.on('message', d => msgs.push(String(d)));
    ws.on('close', (code) => { closed = code; });
    await withTimeout(new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }), 5000, 'ws open');
    ws.send('2probe');
    for (let i = 0; i < 50 && !msgs.includes('3probe'); i++) await sleep(50);
    check(msgs[0] === '3probe', `probe answer ${J(msgs)}`);
    check((await get(eio(`&sid=${h.sid}`))).text === '6', 'a poll while upgrading gets a noop');
    for (let i = 0; i < 100 && closed === null; i++) await sleep(100);
    check(closed === 1000, `probe close ${closed} after ${h.pingTimeout} ms`);
    const g = await get(eio(`&sid=${h.sid}`));
    check(g.status === 200 && g.text !== '6' && g.text.split('\x1e').includes('2'), `poll after the timeout: ${g.status} ${J(g.text)}`);
    await post(eio(`&sid=${h.sid}`), '1');
  });
  await t('eio-timeout', async () => {
    const h = await handshake();
    await sleep(h.pingInterval + h.pingTimeout + 1500);
    const g = await get(eio(`&sid=${h.sid}`));
    check(g.status === 400 && JSON.parse(g.text).code === 1, `${g.status} ${g.text}`);
  });
  await t('eio-413', async () => {
    const h = await handshake();
    const p = await post(eio(`&sid=${h.sid}`), '4' + 'x'.repeat(C.maxMessage + 10));
    check(p.status === 413, `status ${p.status}`);
    await post(eio(`&sid=${h.sid}`), '1');
  });
}

// -------------------------------------------------- socket.io-client ----
async function garbageTest() {
  await t('eio-garbage', async () => {
    const h = await handshake();
    const sid = `&sid=${h.sid}`;
    check((await post(eio(sid), '42["join","x"]')).text === 'ok', 'event before CONNECT');
    check((await post(eio(sid), '40\x1e42["x"\x1e49\x1e42' + '['.repeat(40) + ']'.repeat(40) + '\x1e4\x1e' + '42{"a":1,"a":2}\x1e4212345678901234567["x"]')).text === 'ok', 'POST');
    let got = '';
    for (let i = 0; i < 5 && (got.match(/"error"/g) || []).length < 6; i++) got += '\x1e' + (await get(eio(sid))).text;
    const reasons = [...got.matchAll(/"reason":"([^"]*)"/g)].map(m => m[1]);
    check(got.includes('40{"sid"') && J(reasons) === J(['invalid JSON', 'unknown packet type', 'too deep', 'unknown packet type', 'invalid JSON', 'ack id too long']),
          `answers ${J(got)}`);
    check(!got.includes('"token required"'), 'the event before CONNECT was handled');
    check((await post(eio(sid), 'x')).text === 'ok', 'POST x');
    const g = await get(eio(sid));
    check(g.status === 400, `after an unknown packet type: ${g.status} ${g.text}`);
    const r = await rawHttp(`POST ${eio()} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    check(statusOf(r) === 411, `chunked: ${r.slice(0, 40)}`);
    return J(reasons);
  });
}

async function clientTests() {
  const room = 'sio-' + crypto.randomBytes(4).toString('hex');
  let a, b, c;
  await t('client-upgrade', async () => {
    a = connect();
    let first = null;
    a.io.once('open', () => { first = a.io.engine.transport.name; }); // right after the handshake
    await once(a, 'connect');
    check(/^[0-9a-f]{16}$/.test(a.id), `id ${a.id}`);
    for (let i = 0; i < 100 && a.io.engine.transport.name !== 'websocket'; i++) await sleep(50);
    check(first === 'polling' && a.io.engine.transport.name === 'websocket', `transports ${first} -> ${a.io.engine.transport.name}`);
    return `${a.id}: ${first} -> websocket`;
  });
  await t('client-nsp', async () => {
    const s = connect({}, '/admin');
    const e = await once(s, 'connect_error');
    check(e.message === 'Invalid namespace', e.message);
    s.close();
  });
  await t('join-no-token', async () => {
    const r = await ack(a, 'join', { room });
    check(r.error === 'token required', J(r));
    const f = await ack(a, 'rtc_offer', { x: 1 });
    check(f.error === 'not in a room', `after the refused join: ${J(f)}`);
  });
  await t('join-ack', async () => {
    const r = await ack(a, 'join', { room, token: token('alice', room) });
    check(r.id === a.id && r.room === room && J(r.peers) === '[]', J(r));
    const turn = turnOf(r.iceServers);
    check(turn && turn.credential && turn.username.endsWith(`:alice.${a.id}`), `iceServers ${J(r.iceServers)}`);
    const want = crypto.createHmac('sha1', C.secret).update(turn.username).digest('base64');
    check(turn.credential === want, 'credential is not HMAC-SHA1(static-auth-secret, username)');
    return `TURN ${turn.username}`;
  });
  const gotA = record(a);
  await t('join-auth', async () => {
    b = await connected({ auth: { token: token('bob', room) } });
    const pj = once(a, 'peer-joined');
    const jp = once(b, 'joined');
    b.emit('join', room);
    const j = await jp;
    check(j.id === b.id && J(j.peers) === J([a.id]), J(j));
    check(turnOf(j.iceServers)?.username.endsWith(`:bob.${b.id}`), J(j.iceServers));
    check((await pj).id === b.id, 'peer-joined to A');
  });
  await t('join-query', async () => {
    c = await connected({ transports: ['websocket'], query: { token: token('carol', room) } });
    const pa = once(a, 'peer-joined'), pb = once(b, 'peer-joined');
    const r = await ack(c, 'join', room);
    check(!r.error && r.peers.length === 2, J(r));
    check(c.io.engine.transport.name === 'websocket', c.io.engine.transport.name);
    const [ja, jb] = await Promise.all([pa, pb]);
    check(ja.id === c.id && jb.id === c.id, `${J(ja)} ${J(jb)}`);
  });
  const gotB = record(b), gotC = record(c);
  await t('forward-to', async () => {
    const p = once(b, 'rtc_offer');
    const r = await ack(a, 'rtc_offer', { from: 'forged', to: b.id, offer: { type: 'offer', sdp: 'v=0\r\n' } });
    check(J(r) === '{}', `ack ${J(r)}`);
    const m = await p;
    check(m.from === a.id && m.to === b.id && m.offer.sdp === 'v=0\r\n', J(m));
    await sleep(300);
    check(!gotC.some(e => e[0] === 'rtc_offer'), 'C got it too');
    return J(m);
  });
  await t('broadcast', async () => {
    const pa = once(a, 'offer'), pc = once(c, 'offer');
    b.emit('offer', { type: 'offer', sdp: 'v=0 b' });
    const [ma, mc] = await Promise.all([pa, pc]);
    for (const m of [ma, mc]) check(m.type === 'offer' && m.sdp === 'v=0 b' && m.from === b.id, J(m));
    await sleep(200);
    check(!gotB.some(e => e[0] === 'offer'), 'the sender got its own offer');
  });
  await t('polling-only', async () => {
    const p = await connected({ transports: ['polling'], auth: { token: token('pat', room) } });
    const r = await ack(p, 'join', room);
    check(!r.error, J(r));
    const got = once(p, 'rtc_candidate');
    a.emit('rtc_candidate', { to: p.id, candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host' } });
    const m = await got;
    check(m.from === a.id && m.candidate.candidate.startsWith('candidate:1'), J(m));
    const back = once(a, 'answer');
    p.emit('answer', { to: a.id, sdp: 'x' });
    check((await back).from === p.id, 'answer over polling POST');
    check(p.io.engine.transport.name === 'polling', p.io.engine.transport.name);
    const left = once(a, 'peer-left'), pid = p.id;
    p.close();
    const l = await left;
    check(l.id === pid, `peer-left ${J(l)} for ${pid}`);
  });
  await t('unknown-to', async () => {
    const r = await ack(a, 'rtc_offer', { to: '0000000000000000' });
    check(r.error === 'unknown peer', J(r));
    const e = once(a, 'error');
    a.emit('rtc_offer', { to: '0000000000000000' });
    check((await e).reason === 'unknown peer', 'error event');
  });
  await t('reserved', async () => {
    const r = await ack(a, 'peer-left', { id: b.id });
    check(r.error === 'reserved event', J(r));
  });
  await t('native-interop', async () => {
    const w = new Client('native');
    await w.open();
    w.send({ type: 'join', room, token: token('nat', room) });
    const j = await w.next(m => m.type === 'joined', 5000, 'joined');
    const p = w.next(m => m.type === 'rtc_candidate', 5000, 'rtc_candidate');
    a.emit('rtc_candidate', { to: j.id, candidate: { sdpMid: '0' } });
    const m = await p;
    check(m.from === a.id && m.candidate.sdpMid === '0', J(m));
    const ev = once(a, 'hello');
    w.send({ type: 'hello', to: a.id, x: 1 });
    const h = await ev;
    check(h.from === j.id && h.x === 1 && h.to === a.id, J(h));
    const left = once(a, 'peer-left');
    w.close();
    await left;
  });
  await t('binary', async () => {
    const r = await ack(a, 'file', { to: b.id, blob: Buffer.from([1, 2, 3]) });
    check(r.error === 'binary events are not supported', J(r));
    await sleep(200);
    check(!gotB.some(e => e[0] === 'file'), 'B got the binary event');
    const r2 = await ack(a, 'rtc_offer', { to: b.id });
    check(J(r2) === '{}', `after: ${J(r2)}`);
  });
  await t('heartbeat', async () => {
    let pings = 0;
    c.io.engine.on('ping', () => pings++);
    await sleep(C.idle * 500 * 2.5);
    check(c.connected && pings >= 2, `connected ${c.connected}, ${pings} pings`);
    return `${pings} pings`;
  });
  await t('disconnect', async () => {
    const p = once(a, 'peer-left');
    const id = c.id;
    c.disconnect();
    check((await p).id === id, 'peer-left');
  });
  void gotA;
}

async function main() {
  await loadWs();
  ({ io } = await import('socket.io-client'));
  C.port = Number(env('SIG_PORT'));
  C.origin = undefined;
  C.tokenSecret = env('TOKEN_SECRET');
  C.secret = env('SECRET');
  C.idle = Number(env('IDLE'));
  C.maxMessage = Number(env('MAX_MESSAGE'));
  await rawTests();
  await garbageTest();
  await clientTests();
  await t('alive', async () => {
    const r = await fetch(`${base()}/ice-servers?token=${encodeURIComponent(token('z', 'r'))}`);
    check(r.status === 200, `status ${r.status}`);
  });
}

main().catch(e => { diag('fatal: ' + (e.stack || e)); }).finally(() => {
  for (const s of sockets) s.close();
  for (const [name] of TESTS) if (!done.has(name)) report(name, false, 'not reached');
  process.exit(failed ? 1 : 0);
});
