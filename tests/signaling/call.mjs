#!/usr/bin/env node
// End-to-end test (TAP) of the demo page: headless Chromium opens the room
// link of turnstone's own page (GET / on the signaling port) in two browser
// contexts with fake camera and microphone, relay only; the pages signal
// through turnstone's WebSocket, take the TURN credentials from "joined",
// and each must decode the other's video (getStats framesDecoded growing)
// over a relay<->relay candidate pair.  call.sh starts the server.
//
// Environment: SIG_PORT (signaling port on 127.0.0.1, required),
//   SIG_PORT_B (page B's server, default SIG_PORT: fleet_call.sh puts the
//   two pages on two servers sharing a Redis),
//   TURN_PORT (required), CHROMIUM_BIN (default /usr/lib/chromium/chromium),
//   CALL_TIMEOUT_MS (default 60000).
// Options: --count, --fail-all REASON.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { launchChromium, cleanupChromium } from './chromium.mjs';

const TIMEOUT_MS = Number(process.env.CALL_TIMEOUT_MS || 60000);

const TESTS = [
  ['chromium', 'Chromium binary exists and launches'],
  ['cmdline', 'Chromium command line has the loopback-only and fake-media switches, one --disable-features incl. WebRtcHideLocalIpsWithMdns, a fresh user-data-dir'],
  ['page-a', 'page A (context 1) loads the room link from turnstone with relay only checked'],
  ['page-b', 'page B (context 2) loads the same room link'],
  ['joined', 'both pages joined the room and got TURN credentials in iceServers'],
  ['connected-a', 'page A: RTCPeerConnection reaches connected'],
  ['connected-b', 'page B: RTCPeerConnection reaches connected'],
  ['video-a', 'page A plays B\'s video: framesDecoded grows, <video> has a size and plays'],
  ['video-b', 'page B plays A\'s video: framesDecoded grows, <video> has a size and plays'],
  ['relay-a', 'page A: selected candidate pair is relay <-> relay through 127.0.0.1'],
  ['relay-b', 'page B: selected candidate pair is relay <-> relay through 127.0.0.1'],
  ['status', 'the status lines show connected and the relay candidate type'],
  ['hangup', 'B hangs up: A gets peer-left and removes B\'s video'],
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

// What the test reads from a page (window.turnstone is app.js's state).
async function pageState(page) {
  return page.evaluate(async () => {
    const s = window.turnstone;
    const out = { id: s.id, wsState: s.wsState, error: s.error, iceServers: s.iceServers, peers: {},
                  status: document.getElementById('status').textContent,
                  relayChecked: document.getElementById('relay-only').checked };
    for (const [id, p] of s.peers) {
      const stats = await p.pc.getStats();
      let pair = null, frames = 0;
      stats.forEach(x => {
        if (x.type === 'transport' && x.selectedCandidatePairId) pair = stats.get(x.selectedCandidatePairId);
        if (x.type === 'inbound-rtp' && x.kind === 'video') frames = x.framesDecoded || 0;
      });
      const cand = (c) => c && { type: c.candidateType, address: c.address ?? c.ip, port: c.port, relayProtocol: c.relayProtocol };
      const v = p.video;
      out.peers[id] = { conn: p.pc.connectionState, policy: p.pc.getConfiguration().iceTransportPolicy, frames,
                        local: pair && cand(stats.get(pair.localCandidateId)),
                        remote: pair && cand(stats.get(pair.remoteCandidateId)),
                        video: v ? { w: v.videoWidth, h: v.videoHeight, paused: v.paused, t: v.currentTime } : null };
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

  const room = 'e2e-' + crypto.randomBytes(4).toString('hex');
  const portB = Number(process.env.SIG_PORT_B || port);
  const pages = [];
  const logs = [[], []];
  for (const [i, name] of [[0, 'page-a'], [1, 'page-b']]) {
    const url = `http://127.0.0.1:${i === 0 ? port : portB}/?room=${room}&relay=1`;
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      page.on('console', m => logs[i].push(`console.${m.type()}: ${m.text()}`));
      page.on('pageerror', e => logs[i].push(`pageerror: ${e.message}`));
      await page.goto(url, { timeout: 15000 });
      const s = await waitState(page, 'window.turnstone', () => true, 5000);
      pages.push(page);
      report(name, s.relayChecked === true, `${url}${s.relayChecked ? '' : ': relay only not checked'}`);
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
      if (!turn || !turn.username || !turn.credential) probs.push(`page ${'AB'[i]}: no TURN credentials in ${JSON.stringify(s.iceServers)}`);
      else diag(`page ${'AB'[i]} ${s.id}: TURN ${[].concat(turn.urls).join(' ')} as ${turn.username}`);
    }
    report('joined', probs.length === 0, probs.join('\n'));
  } catch (e) { report('joined', false, `${e.message}\n${await dump(A, 0)}\n${await dump(B, 1)}`); return; }

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
      report(name, ok, `framesDecoded ${p1.frames} -> ${p2.frames} in 1.5 s, video ${p2.video.w}x${p2.video.h}, paused ${p2.video.paused}, currentTime ${p1.video.t.toFixed(2)} -> ${p2.video.t.toFixed(2)}`);
    } catch (e) { report(name, false, `${e.message}\n${await dump(page, i)}`); }
  }
  for (const [i, page] of pages.entries()) {
    const name = `relay-${'ab'[i]}`;
    try {
      const p = one(await pageState(page));
      const fmt = (c) => c ? `${c.type} ${c.address}:${c.port}${c.relayProtocol ? ' via ' + c.relayProtocol : ''}` : '(none)';
      const ok = p.local?.type === 'relay' && p.remote?.type === 'relay' && p.local.address === '127.0.0.1' && p.remote.address === '127.0.0.1';
      report(name, ok, `selected pair: ${fmt(p.local)} -> ${fmt(p.remote)}`);
    } catch (e) { report(name, false, e.message); }
  }
  try {
    await sleep(1200); // the page refreshes its status line every second
    const st = [];
    for (const p of pages) st.push((await pageState(p)).status);
    const ok = st.every(s => /: connected, selected candidates relay ↔ relay/.test(s));
    report('status', ok, st.join('\n---\n'));
  } catch (e) { report('status', false, e.message); }
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
