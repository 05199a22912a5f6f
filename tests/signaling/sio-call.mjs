#!/usr/bin/env node
// End-to-end test (TAP) of a socket.io tutorial-style page (sio-page/):
// headless Chromium opens it from turnstone (signaling-root is a copy of
// sio-page/ plus socket.io-client's browser bundle) in two browser contexts
// with fake camera, relay only; the pages fetch iceServers from
// GET /ice-servers, signal with socket.io-client through turnstone's
// /socket.io/ (rtc_offer / rtc_accept / rtc_candidate with to/from), and
// each must decode the other's video (getStats framesDecoded growing) over a
// relay<->relay candidate pair.  sio-call.sh starts the server.
//
// Environment: SIG_PORT (signaling port on 127.0.0.1, required),
//   CHROMIUM_BIN (default /usr/lib/chromium/chromium),
//   CALL_TIMEOUT_MS (default 60000).
// Options: --count, --fail-all REASON.

import crypto from 'node:crypto';
import { launchChromium, cleanupChromium } from './chromium.mjs';

const TIMEOUT_MS = Number(process.env.CALL_TIMEOUT_MS || 60000);

const TESTS = [
  ['chromium', 'Chromium binary exists and launches'],
  ['cmdline', 'Chromium command line has the loopback-only and fake-media switches, one --disable-features incl. WebRtcHideLocalIpsWithMdns, a fresh user-data-dir'],
  ['page-a', 'page A (context 1) loads the socket.io page from turnstone (io() of socket.io-client v4 loaded)'],
  ['page-b', 'page B (context 2) loads the same room link'],
  ['joined', 'both pages joined over socket.io (16-hex ids) with TURN credentials from GET /ice-servers'],
  ['upgraded', 'both socket.io-client sockets upgraded from polling to websocket'],
  ['connected-a', 'page A: RTCPeerConnection (relay only) reaches connected'],
  ['connected-b', 'page B: RTCPeerConnection (relay only) reaches connected'],
  ['video-a', 'page A plays B\'s video: framesDecoded grows, <video> has a size and plays'],
  ['video-b', 'page B plays A\'s video: framesDecoded grows, <video> has a size and plays'],
  ['relay-a', 'page A: selected candidate pair is relay <-> relay through 127.0.0.1'],
  ['relay-b', 'page B: selected candidate pair is relay <-> relay through 127.0.0.1'],
  ['hangup', 'B hangs up (socket.disconnect()): A gets peer-left and removes B\'s video'],
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
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
let browser = null;

// What the test reads from a page (window.sioCall is app.js's state).
async function pageState(page) {
  return page.evaluate(async () => {
    const s = window.sioCall;
    const out = { id: s.id, error: s.error, iceServers: s.iceServers, peers: {},
                  ioLoaded: typeof io === 'function' && typeof io.Manager === 'function',
                  transport: s.socket?.io?.engine?.transport?.name, connected: s.socket?.connected };
    for (const [id, p] of s.peers) {
      const stats = await p.pc.getStats();
      let pair = null, frames = 0;
      stats.forEach(x => {
        if (x.type === 'transport' && x.selectedCandidatePairId) pair = stats.get(x.selectedCandidatePairId);
        if (x.type === 'inbound-rtp' && x.kind === 'video') frames = x.framesDecoded || 0;
      });
      const cand = (c) => c && { type: c.candidateType, address: c.address ?? c.ip, port: c.port };
      const v = p.video;
      out.peers[id] = { conn: p.pc.connectionState, policy: p.pc.getConfiguration().iceTransportPolicy, frames,
                        local: pair && cand(stats.get(pair.localCandidateId)),
                        remote: pair && cand(stats.get(pair.remoteCandidateId)),
                        video: { w: v.videoWidth, h: v.videoHeight, paused: v.paused, t: v.currentTime } };
    }
    out.videoCount = document.querySelectorAll('#videos video').length;
    return out;
  });
}

async function waitState(page, what, cond, ms) {
  const t0 = Date.now();
  let s;
  for (;;) {
    s = await pageState(page);
    if (cond(s)) return s;
    if (Date.now() - t0 > ms) throw Object.assign(new Error(`timed out after ${ms} ms waiting for ${what}`), { state: s });
    await sleep(250);
  }
}

async function main() {
  const port = Number(process.env.SIG_PORT);
  if (!port) throw new Error('SIG_PORT is not set');
  browser = await launchChromium(report);
  if (!browser) return;

  const room = 'sio-e2e-' + crypto.randomBytes(4).toString('hex');
  const url = `http://127.0.0.1:${port}/index.html?room=${room}&relay=1`;
  const pages = [];
  const logs = [[], []];
  for (const [i, name] of [[0, 'page-a'], [1, 'page-b']]) {
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      page.on('console', m => logs[i].push(`console.${m.type()}: ${m.text()}`));
      page.on('pageerror', e => logs[i].push(`pageerror: ${e.message}`));
      await page.goto(url, { timeout: 15000 });
      const s = await waitState(page, 'window.sioCall', () => true, 5000);
      pages.push(page);
      report(name, s.ioLoaded === true, `${url}${s.ioLoaded ? '' : ': io() of socket.io-client is missing'}`);
    } catch (e) { report(name, false, `${url}: ${e.message}\n${logs[i].join('\n')}`); return; }
  }
  const [A, B] = pages;
  const dump = async (p, i) => { try { return JSON.stringify(await pageState(p), null, 1) + '\n' + logs[i].join('\n'); } catch (e) { return String(e); } };
  const stage = Math.max(10000, TIMEOUT_MS / 3);

  try {
    const ss = [];
    for (const p of pages) ss.push(await waitState(p, 'joined', s => s.id && s.iceServers.length > 0, stage));
    const probs = [];
    for (const [i, s] of ss.entries()) {
      const turn = s.iceServers.find(x => [].concat(x.urls).some(u => u.startsWith('turn:')));
      if (!/^[0-9a-f]{16}$/.test(s.id)) probs.push(`page ${'AB'[i]}: id ${s.id}`);
      if (!turn || !turn.username || !turn.credential) probs.push(`page ${'AB'[i]}: no TURN credentials in ${JSON.stringify(s.iceServers)}`);
      else diag(`page ${'AB'[i]} ${s.id}: TURN ${[].concat(turn.urls).join(' ')} as ${turn.username}`);
    }
    report('joined', probs.length === 0, probs.join('\n'));
  } catch (e) { report('joined', false, `${e.message}\n${await dump(A, 0)}\n${await dump(B, 1)}`); return; }
  try {
    const ss = [];
    for (const p of pages) ss.push(await waitState(p, 'websocket', s => s.transport === 'websocket', stage));
    report('upgraded', true, ss.map(s => s.transport).join(' '));
  } catch (e) { report('upgraded', false, `${e.message}\n${JSON.stringify(e.state)}`); }

  const one = (s) => Object.values(s.peers)[0];
  for (const [i, page] of pages.entries()) {
    const name = `connected-${'ab'[i]}`;
    try {
      const s = await waitState(page, 'connected', s => one(s)?.conn === 'connected', stage);
      report(name, one(s).policy === 'relay', `policy ${one(s).policy}`);
    } catch (e) { report(name, false, `${e.message}\n${await dump(page, i)}`); }
  }
  for (const [i, page] of pages.entries()) {
    const name = `video-${'ab'[i]}`;
    try {
      const s1 = await waitState(page, 'frames decoded', s => one(s)?.frames > 0 && one(s)?.video?.w > 0, stage);
      await sleep(1500);
      const s2 = await pageState(page);
      const p1 = one(s1), p2 = one(s2);
      const ok = p2.frames > p1.frames && !p2.video.paused && p2.video.t > p1.video.t;
      report(name, ok, `framesDecoded ${p1.frames} -> ${p2.frames} in 1.5 s, video ${p2.video.w}x${p2.video.h}, paused ${p2.video.paused}`);
    } catch (e) { report(name, false, `${e.message}\n${await dump(page, i)}`); }
  }
  for (const [i, page] of pages.entries()) {
    const name = `relay-${'ab'[i]}`;
    try {
      const p = one(await pageState(page));
      const fmt = (c) => c ? `${c.type} ${c.address}:${c.port}` : '(none)';
      const ok = p.local?.type === 'relay' && p.remote?.type === 'relay' && p.local.address === '127.0.0.1' && p.remote.address === '127.0.0.1';
      report(name, ok, `selected pair: ${fmt(p.local)} -> ${fmt(p.remote)}`);
    } catch (e) { report(name, false, e.message); }
  }
  try {
    const bid = (await pageState(B)).id;
    await B.click('#hangup');
    const s = await waitState(A, 'peer-left', s => !s.peers[bid] && s.videoCount === 1, 5000);
    report('hangup', true, `A has ${Object.keys(s.peers).length} peer(s), ${s.videoCount} video element(s)`);
  } catch (e) { report('hangup', false, `${e.message}\n${await dump(A, 0)}`); }
}

const killer = setTimeout(() => { diag(`whole-test timeout ${TIMEOUT_MS + 30000} ms`); finish(); }, TIMEOUT_MS + 30000);
async function finish() {
  clearTimeout(killer);
  await cleanupChromium(diag);
  for (const [name] of TESTS) if (!done.has(name)) report(name, false, 'not reached');
  process.exit(failed ? 1 : 0);
}
main().catch(e => diag('fatal: ' + (e.stack || e))).finally(finish);
