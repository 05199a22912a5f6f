#!/usr/bin/env node
// Fleet protocol tests (TAP): two turnstone servers share one Redis
// (signaling-redis) and their rooms span both (docs/signaling.md, "Rooms
// across a fleet"). With the npm "ws" client: joins, peer-joined and
// peer-left, forwarding with "to" and broadcast across servers, a forged
// "from", the fleet-wide room size; then Redis is stopped ("peer
// unreachable" for a remote peer, local delivery goes on), restarted
// (delivery resumes, a peer that left meanwhile is reported gone), and
// server 2 is killed with SIGKILL (its peers leave within the TTL).
// fleet.sh starts the servers and Redis and sets the environment.
//
// Environment (all required):
//   SIG_PORT_1, SIG_PORT_2  the servers' signaling ports on 127.0.0.1
//   SERVER_PID_2            pid of server 2 (killed with SIGKILL at the end)
//   ROOM_SIZE               signaling-room-size of both
//   FLEET_TTL               signaling-redis-ttl of both, seconds
//   REDIS_PID, REDIS_PORT, REDIS_DIR  the redis-server fleet.sh started; this
//                           script stops it and starts a new one on the same
//                           port, writing its pid to REDIS_PID_FILE
//   REDIS_PID_FILE
// Options: --count (print the number of tests), --fail-all REASON.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { C, sleep, withTimeout, Client, isErr, loadWs } from './lib.mjs';

const TESTS = [
  ['join-1', 'A1 joins room R on server 1: joined, no peers'],
  ['join-2', 'B joins R on server 2: its peers list has A1; A1 gets peer-joined B'],
  ['join-3', 'A2 joins R on server 1: peers has A1 and B; both get peer-joined A2'],
  ['ids', 'peer ids are 16 hex digits and distinct across servers'],
  ['room-full', 'D joins R on server 2 (1 local member, 3 in the fleet, signaling-room-size 3): "room full"'],
  ['to-remote', 'an offer from A1 with to B reaches B on server 2 only, from set, SDP untouched'],
  ['to-back', 'B answers A1 with to: reaches A1 only'],
  ['forge-from', 'a forged from sent across servers is overwritten with the sender id'],
  ['broadcast', 'a broadcast from B reaches A1 and A2 on server 1, not B'],
  ['unknown-to', 'to a peer id in no server: error "unknown peer"'],
  ['leave', 'A2 leaves: B on server 2 gets peer-left A2; A2 rejoins'],
  ['redis-down', 'Redis stopped: a message from A1 to B gets error "peer unreachable"'],
  ['local-down', 'Redis stopped: A1 to A2 (same server) is delivered; a broadcast reaches A2 and A1 gets "peer unreachable"'],
  ['left-down', 'Redis stopped: A2 disconnects; A1 gets peer-left at once'],
  ['redis-back', 'Redis restarted: delivery A1 -> B and B -> A1 resumes'],
  ['left-after', 'after the restart B gets peer-left for A2, which left while Redis was down'],
  ['join-after', 'after the restart E joins R on server 2: A1 gets peer-joined E, E sees A1 and B'],
  ['sigkill', 'server 2 killed with SIGKILL: A1 gets peer-left for B and E within 2 x signaling-redis-ttl'],
  ['alive', 'server 1 still answers and A1 is still connected'],
];

// ---------------------------------------------------------------- TAP ----
const argv = process.argv.slice(2);
let n = 0, failed = 0;
const done = new Set();
function diag(s) { if (s) for (const l of String(s).split('\n')) console.log('# ' + l); }
function report(name, ok, info) {
  n++;
  done.add(name);
  console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${TESTS.find(x => x[0] === name)[1]}`);
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

async function t(name, fn, ms = 20000) {
  try {
    report(name, true, await withTimeout(Promise.resolve().then(fn), ms, name));
  } catch (e) {
    report(name, false, e.stack || String(e));
  }
}

const P = {};
async function on(port, label) {
  C.port = port;
  const c = new Client(label);
  await c.open();
  return c;
}
const joinedMsg = (m) => m.type === 'joined';
const isType = (type, id) => (m) => m.type === type && (id === undefined || m.id === id);

// Resolves once nothing accepts TCP connections on port any more.
async function portClosed(port, ms) {
  const t0 = Date.now();
  for (;;) {
    const open = await new Promise(r => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (!open) return;
    if (Date.now() - t0 > ms) throw new Error(`port ${port} still open after ${ms} ms`);
    await sleep(100);
  }
}

let redis2 = null;
function startRedis() {
  redis2 = spawn('redis-server', ['--port', String(C.redisPort), '--bind', '127.0.0.1', '--save', '',
                                  '--appendonly', 'no', '--dir', C.redisDir, '--daemonize', 'no',
                                  '--logfile', `${C.redisDir}/redis2.log`], { stdio: 'ignore' });
  fs.writeFileSync(C.redisPidFile, `${redis2.pid}\n`);
}

// Sends from `from` to `to` (by id) until one arrives, for up to ms.
async function deliverEventually(from, to, ms) {
  const t0 = Date.now();
  let tries = 0;
  for (;;) {
    const mark = `m${++tries}`;
    from.send({ type: 'probe', to: to.id, mark });
    try {
      await to.c.next(m => m.type === 'probe' && m.mark === mark, 500, `probe ${mark}`);
      // Earlier probes may trail in; drop them and any "peer unreachable".
      await sleep(200);
      to.c.msgs = to.c.msgs.filter(m => m.type !== 'probe');
      from.msgs = from.msgs.filter(m => !isErr('peer unreachable')(m));
      return `delivered after ${tries} probe(s), ${Date.now() - t0} ms`;
    } catch (e) {
      if (Date.now() - t0 > ms) throw new Error(`nothing delivered within ${ms} ms (${tries} probes): ${e.message}`);
    }
  }
}

async function main() {
  await loadWs();
  C.origin = null;
  const port1 = Number(env('SIG_PORT_1')), port2 = Number(env('SIG_PORT_2'));
  const pid2 = Number(env('SERVER_PID_2'));
  const roomSize = Number(env('ROOM_SIZE'));
  const ttl = Number(env('FLEET_TTL'));
  C.redisPid = Number(env('REDIS_PID'));
  C.redisPort = Number(env('REDIS_PORT'));
  C.redisDir = env('REDIS_DIR');
  C.redisPidFile = env('REDIS_PID_FILE');
  if (roomSize !== 3) throw new Error('the tests expect signaling-room-size 3');
  const room = 'fleet-' + Date.now().toString(36);

  await t('join-1', async () => {
    P.A1 = { c: await on(port1, 'A1') };
    P.A1.c.send({ type: 'join', room });
    const j = await P.A1.c.next(joinedMsg, 5000, 'joined');
    P.A1.id = j.id;
    if (j.peers.length !== 0) throw new Error(`peers ${JSON.stringify(j.peers)}`);
    return `A1 = ${j.id}`;
  });
  await t('join-2', async () => {
    P.B = { c: await on(port2, 'B') };
    P.B.c.send({ type: 'join', room });
    const j = await P.B.c.next(joinedMsg, 5000, 'joined');
    P.B.id = j.id;
    if (JSON.stringify(j.peers) !== JSON.stringify([P.A1.id])) throw new Error(`peers ${JSON.stringify(j.peers)}`);
    await P.A1.c.next(isType('peer-joined', P.B.id), 5000, 'peer-joined B');
    return `B = ${j.id}`;
  });
  await t('join-3', async () => {
    P.A2 = { c: await on(port1, 'A2') };
    P.A2.c.send({ type: 'join', room });
    const j = await P.A2.c.next(joinedMsg, 5000, 'joined');
    P.A2.id = j.id;
    if (j.peers.length !== 2 || !j.peers.includes(P.A1.id) || !j.peers.includes(P.B.id)) throw new Error(`peers ${JSON.stringify(j.peers)}`);
    await P.A1.c.next(isType('peer-joined', P.A2.id), 5000, 'A1: peer-joined A2');
    await P.B.c.next(isType('peer-joined', P.A2.id), 5000, 'B: peer-joined A2');
    return `A2 = ${j.id}`;
  });
  await t('ids', async () => {
    const ids = [P.A1.id, P.B.id, P.A2.id];
    if (!ids.every(x => /^[0-9a-f]{16}$/.test(x)) || new Set(ids).size !== 3) throw new Error(ids.join(' '));
  });
  await t('room-full', async () => {
    const d = await on(port2, 'D');
    d.send({ type: 'join', room });
    const m = await d.next(() => true, 5000, 'an answer to join');
    d.close();
    if (!isErr('room full')(m)) throw new Error(`got ${JSON.stringify(m)}`);
    await P.A1.c.nothing(isType('peer-joined'), 300);
  });
  const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=x:"quoted" \\ back\r\n';
  await t('to-remote', async () => {
    P.A1.c.send({ type: 'offer', to: P.B.id, sdp });
    const m = await P.B.c.next(isType('offer'), 5000, 'offer');
    if (m.from !== P.A1.id || m.sdp !== sdp || m.to !== P.B.id) throw new Error(JSON.stringify(m));
    await P.A2.c.nothing(isType('offer'), 300);
  });
  await t('to-back', async () => {
    P.B.c.send({ type: 'answer', to: P.A1.id, sdp: 'answer-sdp' });
    const m = await P.A1.c.next(isType('answer'), 5000, 'answer');
    if (m.from !== P.B.id || m.sdp !== 'answer-sdp') throw new Error(JSON.stringify(m));
    await P.A2.c.nothing(isType('answer'), 300);
  });
  await t('forge-from', async () => {
    P.B.c.send({ type: 'candidate', to: P.A1.id, from: P.A2.id, candidate: 'c' });
    const m = await P.A1.c.next(isType('candidate'), 5000, 'candidate');
    if (m.from !== P.B.id) throw new Error(`from ${m.from}, want ${P.B.id}`);
  });
  await t('broadcast', async () => {
    P.B.c.send({ type: 'hello', n: 42 });
    const a1 = await P.A1.c.next(isType('hello'), 5000, 'A1 hello');
    const a2 = await P.A2.c.next(isType('hello'), 5000, 'A2 hello');
    if (a1.from !== P.B.id || a2.from !== P.B.id || a1.n !== 42) throw new Error(JSON.stringify([a1, a2]));
    await P.B.c.nothing(isType('hello'), 300);
  });
  await t('unknown-to', async () => {
    P.A1.c.send({ type: 'offer', to: '0123456789abcdef', sdp });
    await P.A1.c.next(isErr('unknown peer'), 3000, 'error unknown peer');
  });
  await t('leave', async () => {
    P.A2.c.send({ type: 'leave' });
    await P.B.c.next(isType('peer-left', P.A2.id), 5000, 'B: peer-left A2');
    await P.A1.c.next(isType('peer-left', P.A2.id), 5000, 'A1: peer-left A2');
    P.A2.c.send({ type: 'join', room });
    const j = await P.A2.c.next(joinedMsg, 5000, 'joined again');
    P.A2.id = j.id;
    await P.B.c.next(isType('peer-joined', P.A2.id), 5000, 'B: peer-joined A2 again');
    await P.A1.c.next(isType('peer-joined', P.A2.id), 5000, 'A1: peer-joined A2 again');
  });

  // ---- Redis down --------------------------------------------------------
  process.kill(C.redisPid, 'SIGTERM');
  try { await portClosed(C.redisPort, 10000); } catch (e) { diag(e.message); }
  await t('redis-down', async () => {
    const t0 = Date.now();
    for (let i = 0; ; i++) {
      P.A1.c.send({ type: 'offer', to: P.B.id, sdp, i });
      try {
        const m = await P.A1.c.next(isErr('peer unreachable'), 500, 'error peer unreachable');
        return `after ${i + 1} message(s), ${Date.now() - t0} ms: ${JSON.stringify(m)}`;
      } catch (e) {
        if (Date.now() - t0 > 8000) throw e;
      }
    }
  });
  await t('local-down', async () => {
    P.A1.c.send({ type: 'offer', to: P.A2.id, sdp });
    const m = await P.A2.c.next(isType('offer'), 3000, 'A2 offer');
    if (m.from !== P.A1.id) throw new Error(JSON.stringify(m));
    P.A1.c.msgs = [];
    P.A1.c.send({ type: 'all', x: 1 });
    await P.A2.c.next(isType('all'), 3000, 'A2 broadcast');
    await P.A1.c.next(isErr('peer unreachable'), 3000, 'A1 error peer unreachable');
  });
  await t('left-down', async () => {
    P.A2.c.close();
    await P.A1.c.next(isType('peer-left', P.A2.id), 5000, 'A1: peer-left A2');
  });

  // ---- Redis back -------------------------------------------------------
  startRedis();
  let backAt = Date.now();
  await t('redis-back', async () => {
    const a = await deliverEventually(P.A1.c, P.B, 20000);
    const b = await deliverEventually(P.B.c, P.A1, 10000);
    return `A1 -> B ${a}; B -> A1 ${b}`;
  }, 35000);
  await t('left-after', async () => {
    const m = await P.B.c.next(isType('peer-left', P.A2.id), (3 * ttl + 15) * 1000, 'B: peer-left A2');
    return `${Date.now() - backAt} ms after Redis was restarted`;
  }, (3 * ttl + 20) * 1000);
  await t('join-after', async () => {
    P.E = { c: await on(port2, 'E') };
    P.E.c.send({ type: 'join', room });
    const j = await P.E.c.next(joinedMsg, 5000, 'joined');
    P.E.id = j.id;
    if (j.peers.length !== 2 || !j.peers.includes(P.A1.id) || !j.peers.includes(P.B.id)) throw new Error(`peers ${JSON.stringify(j.peers)}`);
    await P.A1.c.next(isType('peer-joined', P.E.id), 5000, 'A1: peer-joined E');
  });

  // ---- server 2 dies ----------------------------------------------------
  await t('sigkill', async () => {
    process.kill(pid2, 'SIGKILL');
    const t0 = Date.now();
    const lim = 2 * ttl * 1000 + 2000;
    await P.A1.c.next(isType('peer-left', P.B.id), lim, 'A1: peer-left B');
    await P.A1.c.next(isType('peer-left', P.E.id), lim - (Date.now() - t0), 'A1: peer-left E');
    return `after ${Date.now() - t0} ms (signaling-redis-ttl ${ttl} s)`;
  }, (2 * ttl + 5) * 1000);
  await t('alive', async () => {
    const r = await fetch(`http://127.0.0.1:${port1}/ice-servers`);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    if (P.A1.c.closed) throw new Error(`A1 closed: ${JSON.stringify(P.A1.c.closed)}`);
  });
  for (const p of Object.values(P)) p.c.close();
}

function stopRedis2() {
  if (redis2 && redis2.exitCode === null) { try { redis2.kill('SIGKILL'); } catch { /* gone */ } }
}
process.on('exit', stopRedis2);
main().catch(e => { diag('fatal: ' + (e.stack || e)); }).finally(() => {
  for (const [name] of TESTS) if (!done.has(name)) report(name, false, 'not reached');
  stopRedis2();
  process.exit(failed ? 1 : 0);
});
