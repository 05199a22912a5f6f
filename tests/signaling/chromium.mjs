// chromium.mjs -- headless Chromium for the signaling browser tests
// (call.mjs, sio-call.mjs): the one launch with the loopback-only switches
// and fake media, the TAP checks "chromium" and "cmdline" of its command
// line, and the cleanup that kills any Chromium the test left behind.
//
// Environment: CHROMIUM_BIN (default /usr/lib/chromium/chromium).

import fs from 'node:fs';
import os from 'node:os';

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/lib/chromium/chromium';

// Same launch hygiene as tests/browser/relay.mjs (playwright-core 1.65.1):
// Chromium honours only the LAST --disable-features, so playwright's own is
// dropped and this one list is passed.
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
const DISABLE_FEATURES = '--disable-features=' + [...PLAYWRIGHT_DISABLED_FEATURES, ...OUR_DISABLED_FEATURES].join(',');
export const REQUIRED_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  '--dns-prefetch-disable', '--disable-extensions', '--no-pings',
  '--allow-loopback-in-peer-connection',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
];
const EXTRA_ARGS = [
  '--disable-default-apps', '--disable-domain-reliability',
  '--disable-client-side-phishing-detection', '--no-default-browser-check',
  '--disable-breakpad', '--disable-crash-reporter', '--metrics-recording-only',
  '--no-proxy-server',
];

export function childPids(ppid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}
export function cmdlineOf(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); } catch { return null; }
}
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

let browser = null, chromiumPid = null, cleanedUp = false;
// Closes the browser (5 s at most) and SIGKILLs any Chromium child left.
export async function cleanupChromium(diag) {
  if (cleanedUp) return;
  cleanedUp = true;
  if (browser) {
    const closing = browser.close().catch(() => {});
    if (await Promise.race([closing.then(() => 'closed'), sleep(5000).then(() => 'timeout')]) === 'timeout') diag('Chromium did not close within 5 s');
  }
  const pids = new Set(chromiumPid ? [chromiumPid] : []);
  for (const p of childPids(process.pid)) if (cmdlineOf(p)?.[0] === CHROMIUM_BIN) pids.add(p);
  for (const p of pids) {
    if (!cmdlineOf(p)) continue;
    try { process.kill(p, 'SIGKILL'); diag(`killed Chromium pid ${p}`); } catch { /* gone */ }
  }
}

// Launches Chromium and reports the checks 'chromium' (it launches) and
// 'cmdline' (required switches, one --disable-features, a fresh
// user-data-dir) through report(name, ok, info). Returns the browser, or
// null when it did not launch.
export async function launchChromium(report) {
  let chromium;
  try { ({ chromium } = await import('playwright-core')); } catch (e) {
    report('chromium', false, `cannot load playwright-core (npm ci in tests/signaling): ${e.message}`); return null;
  }
  try { fs.accessSync(CHROMIUM_BIN, fs.constants.X_OK); } catch {
    report('chromium', false, `Chromium binary ${CHROMIUM_BIN} not found or not executable`); return null;
  }
  const before = new Set(childPids(process.pid));
  const t0 = Date.now();
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM_BIN, headless: true,
      args: [...REQUIRED_ARGS, ...EXTRA_ARGS, DISABLE_FEATURES],
      ignoreDefaultArgs: ['--disable-features=' + PLAYWRIGHT_DISABLED_FEATURES.join(',')],
      timeout: 30000,
    });
  } catch (e) { report('chromium', false, `launch failed: ${e.message}`); return null; }
  for (const p of childPids(process.pid).filter(p => !before.has(p))) {
    if (cmdlineOf(p)?.[0] === CHROMIUM_BIN) { chromiumPid = p; break; }
  }
  report('chromium', true, `${CHROMIUM_BIN} ${browser.version()}, pid ${chromiumPid ?? '?'}`);

  {
    const cl = chromiumPid ? cmdlineOf(chromiumPid) : null;
    const problems = [];
    if (!cl) problems.push('could not read the Chromium process command line');
    else {
      for (const a of REQUIRED_ARGS) if (!cl.includes(a)) problems.push(`missing ${a}`);
      const df = cl.filter(a => a.startsWith('--disable-features'));
      if (df.length !== 1) problems.push(`${df.length} --disable-features switches: ${df.join(' ')}`);
      else if (!df[0].split('=')[1].split(',').includes('WebRtcHideLocalIpsWithMdns')) problems.push('WebRtcHideLocalIpsWithMdns not disabled');
      const ud = cl.filter(a => a.startsWith('--user-data-dir='));
      const dir = ud.length === 1 ? ud[0].slice('--user-data-dir='.length) : null;
      let fresh = false;
      try { fresh = dir.startsWith(os.tmpdir()) && fs.statSync(dir).birthtimeMs >= t0 - 1000; } catch { /* no dir */ }
      if (!fresh) problems.push(`user-data-dir not a fresh temporary directory: ${ud.join(' ')}`);
    }
    report('cmdline', problems.length === 0, problems.join('\n'));
  }
  return browser;
}
