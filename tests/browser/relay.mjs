#!/usr/bin/env node
// Browser test: two RTCPeerConnections in one headless Chromium page, forced
// to relay-only ICE through the TURN server named in the environment, exchange
// data-channel messages; then getStats() must show relay<->relay pairs whose
// relay addresses are 127.0.0.1 inside [RELAY_MIN, RELAY_MAX].
//
// The transport to the TURN server (RELAY_TRANSPORT or --transport) is udp
// (default), tcp (TURN_URL turn:...?transport=tcp) or tls (TURN_URL
// turns:...?transport=tcp; Chromium then also gets --ignore-certificate-errors
// because the test certificate is self-signed).  For tcp and tls two more
// tests check that the selected pair's local relay candidate reports that
// relayProtocol; the relay leg between the server and the peer is UDP in
// every case.
//
// Starts nothing but Chromium (plus an in-process HTTP server on 127.0.0.1
// serving the test page).  Output: TAP lines.
//
// Environment:
//   TURN_URL     e.g. turn:127.0.0.1:3478?transport=udp      (required)
//   TURN_USER, TURN_PASS                                      (required)
//   RELAY_MIN, RELAY_MAX   relay port range of the server     (required)
//   CHROMIUM_BIN  default /usr/lib/chromium/chromium (the real binary, not
//                 the /usr/bin/chromium wrapper)
//   RELAY_TIMEOUT_MS  whole-test timeout, default 60000
//   RELAY_MESSAGES    messages each way, default 20
//   TAP_START     number of the first test (default 1)
//   TAP_NO_PLAN   if set, do not print the "1..N" plan line
//   RELAY_TRANSPORT  udp (default), tcp or tls
//
// Options:
//   --transport T      udp, tcp or tls (overrides RELAY_TRANSPORT); give it
//                      before --count/--fail-all, which change the count
//   --count            print the number of TAP tests this script emits
//   --fail-all REASON  emit every test as "not ok" with REASON and exit 1
//                      (used by relay.sh when the server never came up)

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';

// ----------------------------------------------------------- options ----
const argv = process.argv.slice(2);
let TRANSPORT = process.env.RELAY_TRANSPORT || 'udp';
let MODE = null, FAIL_REASON = null;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--transport') TRANSPORT = argv[++i];
  else if (a.startsWith('--transport=')) TRANSPORT = a.slice('--transport='.length);
  else if (a === '--count') MODE = 'count';
  else if (a === '--fail-all') { MODE = 'fail-all'; FAIL_REASON = argv[++i]; }
  else { console.error(`relay.mjs: unknown argument ${a}`); process.exit(2); }
}
if (!['udp', 'tcp', 'tls'].includes(TRANSPORT)) {
  console.error(`relay.mjs: transport must be udp, tcp or tls, not '${TRANSPORT}'`);
  process.exit(2);
}
const STREAM = TRANSPORT !== 'udp';

// ---------------------------------------------------------------- TAP ----
const TESTS = [
  ['chromium', 'Chromium binary exists and launches'],
  ['cmdline', 'Chromium command line has the loopback-only switches and a single --disable-features incl. WebRtcHideLocalIpsWithMdns'],
  ['page', 'test page loads from http://127.0.0.1'],
  ['gather-a', 'peer A gathers relay candidate(s) only'],
  ['gather-b', 'peer B gathers relay candidate(s) only'],
  ['ice', 'ICE connects on both peer connections'],
  ['dc-open', 'data channel opens on both ends'],
  ['a2b', 'messages A->B all arrive in order'],
  ['b2a', 'messages B->A all arrive in order'],
  ['a-local-relay', 'peer A selected pair: local candidateType is relay'],
  ['a-remote-relay', 'peer A selected pair: remote candidateType is relay'],
  ['b-local-relay', 'peer B selected pair: local candidateType is relay'],
  ['b-remote-relay', 'peer B selected pair: remote candidateType is relay'],
  ...(STREAM ? [
    ['a-relay-proto', `peer A selected pair: local relay candidate has relayProtocol "${TRANSPORT}" (allocated over ${TRANSPORT.toUpperCase()})`],
    ['b-relay-proto', `peer B selected pair: local relay candidate has relayProtocol "${TRANSPORT}" (allocated over ${TRANSPORT.toUpperCase()})`],
  ] : []),
  ['a-local-addr', 'peer A local relay candidate is 127.0.0.1 with port in relay range'],
  ['a-remote-addr', 'peer A remote relay candidate is 127.0.0.1 with port in relay range'],
  ['b-local-addr', 'peer B local relay candidate is 127.0.0.1 with port in relay range'],
  ['b-remote-addr', 'peer B remote relay candidate is 127.0.0.1 with port in relay range'],
  ['bytes', 'selected pairs carried traffic both ways (bytesSent/bytesReceived > 0)'],
];

const TAP_START = Number(process.env.TAP_START || 1);
let nextIdx = 0;          // index into TESTS of the next line to print
let failures = 0;

function diag(text) {
  for (const line of String(text).split('\n')) console.log(`# ${line}`);
}

// Results must be reported in TESTS order; this enforces it.
function report(key, pass, diagnostics) {
  const idx = TESTS.findIndex(([k]) => k === key);
  if (idx < 0) throw new Error(`unknown test key ${key}`);
  if (idx < nextIdx) throw new Error(`test ${key} reported twice`);
  // Anything skipped over is a failure: its step was never reached.
  while (nextIdx < idx) failRemainingOne('not reached');
  const [, name] = TESTS[idx];
  console.log(`${pass ? 'ok' : 'not ok'} ${TAP_START + idx} - ${name}`);
  if (!pass) failures++;
  if (diagnostics) diag(diagnostics);
  nextIdx = idx + 1;
  return pass;
}

function failRemainingOne(reason) {
  const [, name] = TESTS[nextIdx];
  console.log(`not ok ${TAP_START + nextIdx} - ${name}`);
  diag(reason);
  failures++;
  nextIdx++;
}

function failRemaining(reason) {
  let first = true;
  while (nextIdx < TESTS.length) {
    failRemainingOne(first ? reason : 'not reached (see above)');
    first = false;
  }
}

if (MODE === 'count') {
  console.log(TESTS.length);
  process.exit(0);
}
if (!process.env.TAP_NO_PLAN) console.log(`${TAP_START}..${TAP_START + TESTS.length - 1}`);
if (MODE === 'fail-all') {
  failRemaining(FAIL_REASON || 'earlier failure');
  process.exit(1);
}

// ------------------------------------------------------------ config ----
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/lib/chromium/chromium';
const TIMEOUT_MS = Number(process.env.RELAY_TIMEOUT_MS || 60000);
const N_MSG = Number(process.env.RELAY_MESSAGES || 20);
const cfg = {
  turnUrl: process.env.TURN_URL,
  user: process.env.TURN_USER,
  pass: process.env.TURN_PASS,
  relayMin: Number(process.env.RELAY_MIN),
  relayMax: Number(process.env.RELAY_MAX),
  nMsg: N_MSG,
};

// playwright-core 1.65.1 default --disable-features list (chromiumSwitches.ts).
// Chromium honours only the LAST --disable-features switch, so we drop
// playwright's own (ignoreDefaultArgs) and pass this list plus ours once.
// The 'cmdline' test checks that exactly one --disable-features reached
// Chromium, which catches drift if playwright-core is upgraded.
const PLAYWRIGHT_DISABLED_FEATURES = [
  'AvoidUnnecessaryBeforeUnloadCheckSync', 'DestroyProfileOnBrowserClose',
  'HttpsUpgrades', 'HttpsFirstBalancedModeAutoEnable', 'LensOverlay',
  'MediaRouter', 'PaintHolding', 'ThirdPartyStoragePartitioning',
  'AvoidCorsURLLoaderRestartOnRedirect', 'TcpPortRandomizationWin',
  'OptimizationHints', 'NetworkTimeServiceQuerying', 'AimEnabled',
  'PreconnectToSearch', 'msForceBrowserSignIn',
  'msEdgeUpdateLaunchServicesPreferredVersion',
];
const OUR_DISABLED_FEATURES = [
  'WebRtcHideLocalIpsWithMdns',
  'Translate', 'AutofillServerCommunication', 'DialMediaRouteProvider',
  'CertificateTransparencyComponentUpdater', 'OptimizationGuideModelDownloading',
  'InterestFeedContentSuggestions',
];
const DISABLE_FEATURES = '--disable-features=' +
  [...PLAYWRIGHT_DISABLED_FEATURES, ...OUR_DISABLED_FEATURES].join(',');
const REQUIRED_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  '--dns-prefetch-disable', '--disable-extensions', '--no-pings',
  '--allow-loopback-in-peer-connection',
  // Only for the TLS run: the server's certificate is self-signed.
  ...(TRANSPORT === 'tls' ? ['--ignore-certificate-errors'] : []),
];
// Switches that must NOT reach Chromium in this run.
const FORBIDDEN_ARGS = TRANSPORT === 'tls' ? [] : ['--ignore-certificate-errors'];
const EXTRA_ARGS = [
  '--disable-default-apps', '--disable-domain-reliability',
  '--disable-client-side-phishing-detection', '--no-default-browser-check',
  '--disable-breakpad', '--disable-crash-reporter', '--metrics-recording-only',
  '--no-proxy-server',
];

// ------------------------------------------------------------ the page ----
// Runs inside Chromium.  Never throws; returns a result object.
const PAGE_SCRIPT = String.raw`
window.T = { log: [], stage: 'init' };
function tlog(s) { T.log.push(String(Math.round(performance.now())).padStart(6) + 'ms ' + s); }
function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
async function waitFor(what, cond, ms) {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error('timed out after ' + ms + ' ms waiting for ' + what);
    await sleep(25);
  }
}
function candInfo(s) {
  if (!s) return null;
  return { id: s.id, candidateType: s.candidateType, address: s.address ?? s.ip,
           port: s.port, protocol: s.protocol, relayProtocol: s.relayProtocol, url: s.url };
}
async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null, how = '';
  const all = [];
  stats.forEach(s => {
    if (s.type === 'candidate-pair') {
      const l = stats.get(s.localCandidateId), r = stats.get(s.remoteCandidateId);
      all.push(s.state + (s.nominated ? '/nominated' : '') + ' ' +
               (l ? l.candidateType + ' ' + (l.address ?? l.ip) + ':' + l.port : '?') + ' -> ' +
               (r ? r.candidateType + ' ' + (r.address ?? r.ip) + ':' + r.port : '?') +
               ' sent=' + s.bytesSent + ' recv=' + s.bytesReceived);
    }
  });
  stats.forEach(s => {
    if (!pair && s.type === 'transport' && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId); how = 'transport.selectedCandidatePairId';
    }
  });
  if (!pair) stats.forEach(s => {
    if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      pair = s; how = 'nominated+succeeded candidate-pair';
    }
  });
  if (!pair) return { how: 'none found', all };
  return { how, all, state: pair.state, nominated: pair.nominated,
           bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
           local: candInfo(stats.get(pair.localCandidateId)),
           remote: candInfo(stats.get(pair.remoteCandidateId)) };
}

window.runRelayTest = async function (cfg) {
  const R = { stage: 'setup', cands: { a: [], b: [] }, gatherDone: { a: false, b: false },
              iceErrors: [], ice: {}, dcOpen: {}, recv: { a: [], b: [] } };
  const pcCfg = { iceServers: [{ urls: cfg.turnUrl, username: cfg.user, credential: cfg.pass }],
                  iceTransportPolicy: 'relay' };
  let a, b;
  try {
    a = new RTCPeerConnection(pcCfg);
    b = new RTCPeerConnection(pcCfg);
    window.PCS = { a, b };
    const peers = { a: { pc: a, other: b, name: 'a', queue: [] }, b: { pc: b, other: a, name: 'b', queue: [] } };
    peers.a.peer = peers.b; peers.b.peer = peers.a;
    for (const p of Object.values(peers)) {
      const pc = p.pc, n = p.name;
      pc.onicecandidate = (e) => {
        if (!e.candidate) { R.gatherDone[n] = true; tlog(n + ': gathering complete'); return; }
        if (!e.candidate.candidate) return;
        R.cands[n].push(e.candidate.candidate);
        tlog(n + ': candidate ' + e.candidate.candidate);
        const target = p.peer;
        if (target.pc.remoteDescription) {
          target.pc.addIceCandidate(e.candidate).catch(err => tlog(target.name + ': addIceCandidate failed: ' + err));
        } else {
          target.queue.push(e.candidate);
        }
      };
      pc.onicecandidateerror = (e) => {
        const m = n + ': icecandidateerror url=' + e.url + ' code=' + e.errorCode + ' text=' + e.errorText +
                  ' local=' + e.address + ':' + e.port;
        R.iceErrors.push(m); tlog(m);
      };
      pc.oniceconnectionstatechange = () => { R.ice[n] = pc.iceConnectionState; tlog(n + ': iceConnectionState ' + pc.iceConnectionState); };
      pc.onconnectionstatechange = () => tlog(n + ': connectionState ' + pc.connectionState);
      pc.onicegatheringstatechange = () => tlog(n + ': iceGatheringState ' + pc.iceGatheringState);
    }
    const flush = async (p) => {
      for (const c of p.queue.splice(0)) {
        await p.pc.addIceCandidate(c).catch(err => tlog(p.name + ': addIceCandidate failed: ' + err));
      }
    };

    R.stage = 'negotiate';
    const dcA = a.createDataChannel('relay-test', { ordered: true });
    let dcB = null;
    b.ondatachannel = (e) => { dcB = e.channel; tlog('b: ondatachannel ' + dcB.label); setupDc(dcB, 'b'); };
    function setupDc(dc, n) {
      dc.onopen = () => { R.dcOpen[n] = true; tlog(n + ': datachannel open'); };
      dc.onclose = () => tlog(n + ': datachannel close');
      dc.onerror = (e) => tlog(n + ': datachannel error ' + (e.error && e.error.message));
      dc.onmessage = (e) => R.recv[n].push(e.data);
    }
    setupDc(dcA, 'a');
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    await flush(peers.b);
    const answer = await b.createAnswer();
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
    await flush(peers.a);
    tlog('offer/answer done');

    R.stage = 'ice';
    const connected = (s) => s === 'connected' || s === 'completed';
    // Give up early if ICE failed, or if gathering finished without any
    // candidate on one side (ICE then stays 'new' forever).
    const hopeless = () => a.iceConnectionState === 'failed' || b.iceConnectionState === 'failed' ||
      ['a', 'b'].some(n => R.gatherDone[n] && R.cands[n].length === 0);
    await waitFor('ICE connected on both peers',
                  () => (connected(a.iceConnectionState) && connected(b.iceConnectionState)) || hopeless(),
                  cfg.stageMs).catch(e => { R.iceTimeout = String(e.message); });
    R.ice = { a: a.iceConnectionState, b: b.iceConnectionState };
    if (!(connected(a.iceConnectionState) && connected(b.iceConnectionState))) {
      R.error = 'ICE did not connect: a=' + a.iceConnectionState + ' b=' + b.iceConnectionState +
                (R.iceTimeout ? ' (' + R.iceTimeout + ')' : '');
      return R;
    }

    R.stage = 'datachannel';
    await waitFor('data channel open on both ends', () => R.dcOpen.a && R.dcOpen.b, cfg.stageMs);

    R.stage = 'messages';
    for (let i = 0; i < cfg.nMsg; i++) { dcA.send('a2b-' + i); dcB.send('b2a-' + i); }
    await waitFor('all messages', () => R.recv.a.length >= cfg.nMsg && R.recv.b.length >= cfg.nMsg, cfg.stageMs)
      .catch(e => { R.msgTimeout = String(e.message); });
    await sleep(100); // let any surplus/duplicate message show up

    R.stage = 'stats';
    R.sel = { a: await selectedPair(a), b: await selectedPair(b) };
    R.stage = 'done';
  } catch (e) {
    R.error = 'exception in stage ' + R.stage + ': ' + (e && e.stack || e);
  } finally {
    R.log = T.log;
  }
  return R;
};

window.closeAll = function () {
  try { if (window.PCS) { PCS.a.close(); PCS.b.close(); } } catch (e) { /* ignore */ }
};
`;

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>turnstone relay test</title>
<link rel="icon" href="data:,">
<script>${PAGE_SCRIPT}</script></head>
<body>turnstone relay test</body></html>`;

// ------------------------------------------------------------ helpers ----
function childPids(ppid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === ppid) out.push(Number(d));
    } catch { /* process went away */ }
  }
  return out;
}

function cmdlineOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch { return null; }
}

function inRange(p) { return Number.isInteger(p) && p >= cfg.relayMin && p <= cfg.relayMax; }

function fmtCand(c) {
  if (!c) return '(missing)';
  return `${c.candidateType} ${c.address}:${c.port} protocol=${c.protocol}` +
    (c.relayProtocol ? ` relayProtocol=${c.relayProtocol}` : '') + (c.url ? ` url=${c.url}` : '');
}

// --------------------------------------------------------------- main ----
let context = null;
let chromiumPid = null;
let httpServer = null;
let userDataDir = null;
let cleanedUp = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (context) {
    const closing = context.close().catch(() => {});
    const t = new Promise(r => setTimeout(r, 5000, 'timeout'));
    if (await Promise.race([closing.then(() => 'closed'), t]) === 'timeout') diag('Chromium did not close within 5 s');
  }
  // Make sure the Chromium we started is gone, by PID only: the one we
  // recorded, or (if the timeout hit during launch) our own children that
  // run CHROMIUM_BIN.
  const pids = new Set(chromiumPid ? [chromiumPid] : []);
  for (const p of childPids(process.pid)) if (cmdlineOf(p)?.[0] === CHROMIUM_BIN) pids.add(p);
  for (const p of pids) {
    if (!cmdlineOf(p)) continue;
    try { process.kill(p, 'SIGKILL'); diag(`killed Chromium pid ${p}`); } catch { /* gone */ }
  }
  if (pids.size) await new Promise(r => setTimeout(r, 200)); // let it release the profile dir
  if (httpServer) {
    httpServer.closeAllConnections?.();
    await new Promise(r => httpServer.close(() => r()));
  }
  if (userDataDir) {
    try { fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 }); } catch (e) { diag(`could not remove ${userDataDir}: ${e}`); }
  }
}

async function main() {
  for (const [k, v] of Object.entries({ TURN_URL: cfg.turnUrl, TURN_USER: cfg.user, TURN_PASS: cfg.pass })) {
    if (!v) throw new Error(`environment variable ${k} is not set`);
  }
  if (!Number.isInteger(cfg.relayMin) || !Number.isInteger(cfg.relayMax) || cfg.relayMin > cfg.relayMax)
    throw new Error('RELAY_MIN/RELAY_MAX not set or invalid');
  // The URL must select the transport under test, else the relayProtocol
  // tests would test something else.
  const urlRe = { tcp: /^turn:[^?]+\?transport=tcp$/, tls: /^turns:[^?]+\?transport=tcp$/ }[TRANSPORT];
  if (urlRe && !urlRe.test(cfg.turnUrl))
    throw new Error(`TURN_URL ${cfg.turnUrl} does not match ${urlRe} (transport ${TRANSPORT})`);

  // --- Chromium -------------------------------------------------------
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    report('chromium', false, `cannot load playwright-core (run "npm ci" in tests/browser): ${e.message}`);
    return;
  }
  try {
    fs.accessSync(CHROMIUM_BIN, fs.constants.X_OK);
  } catch {
    report('chromium', false, `Chromium binary ${CHROMIUM_BIN} not found or not executable`);
    return;
  }
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnstone-chromium-'));
  const before = new Set(childPids(process.pid));
  const args = [...REQUIRED_ARGS, ...EXTRA_ARGS, DISABLE_FEATURES];
  const launchLog = [];
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_BIN,
      headless: true,
      args,
      ignoreDefaultArgs: ['--disable-features=' + PLAYWRIGHT_DISABLED_FEATURES.join(',')],
      timeout: 30000,
      logger: { isEnabled: () => true, log: (name, sev, msg) => { if (name === 'browser') launchLog.push(String(msg)); } },
    });
  } catch (e) {
    report('chromium', false, `launch failed: ${e.message}\n${launchLog.slice(-30).join('\n')}`);
    return;
  }
  const newKids = childPids(process.pid).filter(p => !before.has(p));
  for (const p of newKids) {
    const cl = cmdlineOf(p);
    if (cl && cl[0] === CHROMIUM_BIN) { chromiumPid = p; break; }
  }
  const version = context.browser()?.version() ?? '(unknown version)';
  report('chromium', true, `${CHROMIUM_BIN} ${version}, pid ${chromiumPid ?? '?'}`);

  // --- command line check ----------------------------------------------
  {
    const cl = chromiumPid ? cmdlineOf(chromiumPid) : null;
    if (!cl) {
      report('cmdline', false, 'could not find the Chromium process / read its /proc cmdline');
    } else {
      const problems = [];
      for (const a of REQUIRED_ARGS) if (!cl.includes(a)) problems.push(`missing ${a}`);
      for (const a of FORBIDDEN_ARGS) if (cl.some(x => x === a || x.startsWith(a + '='))) problems.push(`unexpected ${a}`);
      const df = cl.filter(a => a.startsWith('--disable-features'));
      if (df.length !== 1) problems.push(`${df.length} --disable-features switches (want exactly 1): ${df.join(' ')}`);
      else if (!df[0].slice('--disable-features='.length).split(',').includes('WebRtcHideLocalIpsWithMdns'))
        problems.push('WebRtcHideLocalIpsWithMdns not disabled');
      const ud = cl.filter(a => a.startsWith('--user-data-dir='));
      if (ud.length !== 1 || ud[0] !== `--user-data-dir=${userDataDir}`) problems.push(`unexpected --user-data-dir: ${ud.join(' ')}`);
      report('cmdline', problems.length === 0, problems.length ? problems.join('\n') : null);
    }
  }

  // --- page --------------------------------------------------------------
  httpServer = http.createServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE_HTML);
    } else {
      res.writeHead(404); res.end();
    }
  });
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', resolve);
  });
  const pageUrl = `http://127.0.0.1:${httpServer.address().port}/`;
  const page = context.pages()[0] ?? await context.newPage();
  const consoleLines = [];
  page.on('console', m => consoleLines.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', e => consoleLines.push(`pageerror: ${e.message}`));
  try {
    await page.goto(pageUrl, { timeout: 15000 });
    const ok = await page.evaluate(() => typeof window.runRelayTest === 'function' && typeof RTCPeerConnection === 'function');
    report('page', ok, [`${pageUrl}${ok ? '' : ': runRelayTest/RTCPeerConnection missing'}`, ...consoleLines].join('\n'));
    if (!ok) return;
  } catch (e) {
    report('page', false, `${pageUrl}: ${e.message}`);
    return;
  }

  // --- the WebRTC exchange -------------------------------------------
  const stageMs = Math.max(5000, Math.floor(TIMEOUT_MS / 3));
  diag(`TURN ${cfg.turnUrl} (transport ${TRANSPORT}) user=${cfg.user} relay range ${cfg.relayMin}..${cfg.relayMax}, ${N_MSG} messages each way`);
  const R = await page.evaluate(c => window.runRelayTest(c), { ...cfg, stageMs });
  const logText = (R.log || []).join('\n');
  let logShown = false;  // the page log is printed once, at the first failure
  const failDiag = () => {
    if (logShown) return R.error ? `error: ${R.error}` : '';
    logShown = true;
    return `page log:\n${logText}` + (consoleLines.length ? `\n${consoleLines.join('\n')}` : '') +
      (R.error ? `\nerror: ${R.error}` : '');
  };

  for (const n of ['a', 'b']) {
    const cands = R.cands[n];
    const nonRelay = cands.filter(c => !/ typ relay( |$)/.test(c));
    const ok = cands.length > 0 && nonRelay.length === 0;
    report(`gather-${n}`, ok,
      `${cands.length} candidate(s), gathering ${R.gatherDone[n] ? 'complete' : 'not complete'}:\n` +
      cands.join('\n') +
      (R.iceErrors.length ? `\nicecandidateerror events:\n${R.iceErrors.join('\n')}` : '') +
      (ok ? '' : `\n${failDiag()}`));
  }

  const iceOk = ['a', 'b'].every(n => R.ice[n] === 'connected' || R.ice[n] === 'completed');
  report('ice', iceOk, `iceConnectionState a=${R.ice.a} b=${R.ice.b}` + (iceOk ? '' : `\n${failDiag()}`));
  if (!iceOk) { failRemaining('ICE never connected'); return; }

  const dcOk = !!(R.dcOpen.a && R.dcOpen.b);
  report('dc-open', dcOk, dcOk ? null : failDiag());
  if (!dcOk) { failRemaining('data channel never opened'); return; }

  const expect = (prefix) => Array.from({ length: N_MSG }, (_, i) => `${prefix}-${i}`);
  const cmp = (got, want) => {
    if (got.length === want.length && got.every((m, i) => m === want[i])) return null;
    return `expected ${want.length} messages, got ${got.length}: ${JSON.stringify(got.slice(0, 50))}`;
  };
  const e1 = cmp(R.recv.b, expect('a2b'));
  report('a2b', !e1, e1 ? `${e1}\n${R.msgTimeout || ''}\n${failDiag()}` : `${N_MSG} messages received by B in order`);
  const e2 = cmp(R.recv.a, expect('b2a'));
  report('b2a', !e2, e2 ? `${e2}\n${R.msgTimeout || ''}\n${failDiag()}` : `${N_MSG} messages received by A in order`);

  if (!R.sel) { failRemaining(`no stats collected: ${R.error || 'unknown'}\n${failDiag()}`); return; }
  for (const n of ['a', 'b']) {
    const s = R.sel[n];
    diag(`peer ${n.toUpperCase()} selected pair (via ${s.how}): ${fmtCand(s.local)} -> ${fmtCand(s.remote)}`);
    for (const line of s.all || []) diag(`  peer ${n.toUpperCase()} pair: ${line}`);
  }
  for (const n of ['a', 'b']) {
    const s = R.sel[n];
    report(`${n}-local-relay`, s.local?.candidateType === 'relay', `local candidateType=${s.local?.candidateType}`);
    report(`${n}-remote-relay`, s.remote?.candidateType === 'relay', `remote candidateType=${s.remote?.candidateType}`);
  }
  if (STREAM) {
    for (const n of ['a', 'b']) {
      const c = R.sel[n].local;
      report(`${n}-relay-proto`, c?.candidateType === 'relay' && c?.relayProtocol === TRANSPORT,
        `local candidate: ${fmtCand(c)} (want candidateType relay, relayProtocol ${TRANSPORT})`);
    }
  }
  for (const n of ['a', 'b']) {
    for (const side of ['local', 'remote']) {
      const c = R.sel[n][side];
      const ok = !!c && c.candidateType === 'relay' && c.address === '127.0.0.1' && inRange(c.port);
      report(`${n}-${side}-addr`, ok, `${fmtCand(c)} (range ${cfg.relayMin}..${cfg.relayMax})`);
    }
  }
  const bytesOk = ['a', 'b'].every(n => R.sel[n].bytesSent > 0 && R.sel[n].bytesReceived > 0);
  report('bytes', bytesOk, ['a', 'b'].map(n => `peer ${n.toUpperCase()}: bytesSent=${R.sel[n].bytesSent} bytesReceived=${R.sel[n].bytesReceived}`).join('\n'));

  if (process.env.RELAY_VERBOSE && !logShown) diag(`page log:\n${logText}`);
  await page.evaluate(() => window.closeAll()).catch(() => {});
}

let exiting = false;
async function finish(code) {
  if (exiting) return;
  exiting = true;
  await cleanup();
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    failRemaining(`interrupted by ${sig}`);
    finish(1);
  });
}

const overall = setTimeout(async () => {
  let extra = '';
  try {
    const p = context?.pages()[0];
    if (p) {
      const log = await Promise.race([p.evaluate(() => window.T && window.T.log), new Promise(r => setTimeout(r, 2000, null))]);
      if (log) extra = `\npage log so far:\n${log.join('\n')}`;
    }
  } catch { /* ignore */ }
  failRemaining(`TIMEOUT: whole test exceeded ${TIMEOUT_MS} ms${extra}`);
  finish(1);
}, TIMEOUT_MS);

try {
  await main();
} catch (e) {
  if (!exiting) failRemaining(`error: ${e && e.stack || e}`);
}
if (!exiting) {
  clearTimeout(overall);
  failRemaining('not reached');
  await finish(failures ? 1 : 0);
}
