// turnstone demo: a mesh video call in one room. The WebSocket to turnstone
// (/ws, docs/signaling.md) carries the offers, answers and ICE candidates;
// the "joined" reply brings short-lived TURN credentials (iceServers).
// No build step, no external URLs.
'use strict';

const params = new URLSearchParams(location.search);
let room = params.get('room');
if (!room) {
  const rnd = new Uint8Array(6);
  crypto.getRandomValues(rnd);
  room = Array.from(rnd, (b) => b.toString(16).padStart(2, '0')).join('');
  params.set('room', room);
  history.replaceState(null, '', '?' + params.toString());
}
const relayOnly = params.get('relay') === '1';
// A join token from the app's backend (signaling-auth-secret), e.g. a link
// ?room=R&token=T it handed to a signed-in user; without one the server
// decides (STUN only, or open credentials on a local demo).
const token = params.get('token');

const $ = (id) => document.getElementById(id);
const state = { id: null, ws: null, iceServers: [], local: null, peers: new Map(), error: null, wsState: 'connecting' };
window.turnstone = state; // for the curious (and the end-to-end test)

$('room-link').textContent = room;
$('room-link').href = location.href;
$('relay-only').checked = relayOnly;
$('relay-only').addEventListener('change', () => {
  // The policy is fixed per RTCPeerConnection: reload with the new setting.
  params.set('relay', $('relay-only').checked ? '1' : '0');
  location.search = params.toString();
});
$('hangup').addEventListener('click', hangup);

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

// ---- status line ----------------------------------------------------------
async function candidateTypes(pc) {
  const stats = await pc.getStats();
  let pair = null, frames = 0;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded || 0;
  });
  if (!pair) stats.forEach((s) => { if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  const l = pair && stats.get(pair.localCandidateId), r = pair && stats.get(pair.remoteCandidateId);
  return { local: l ? l.candidateType : null, remote: r ? r.candidateType : null, frames };
}

async function updateStatus() {
  const lines = [`signaling: ${state.wsState}` + (state.id ? `, you are ${state.id}` : '') +
                 `, ${relayOnly ? 'relay only' : 'any path'}` + (state.error ? ` — ${state.error}` : '')];
  if (state.id && state.peers.size === 0) lines.push('waiting for someone to open this room link…');
  for (const [id, p] of state.peers) {
    const t = await candidateTypes(p.pc).catch(() => ({}));
    p.selected = t;
    lines.push(`${id}: ${p.pc.connectionState}` +
               (t.local ? `, selected candidates ${t.local} ↔ ${t.remote}` : '') + `, ${t.frames || 0} frames decoded`);
  }
  $('status').textContent = lines.join('\n');
}
setInterval(updateStatus, 1000);

// ---- peer connections ------------------------------------------------------
function addPeer(id) {
  const pc = new RTCPeerConnection({ iceServers: state.iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' });
  const p = { pc, pending: [], video: null };
  state.peers.set(id, p);
  for (const track of state.local.getTracks()) pc.addTrack(track, state.local);
  pc.onicecandidate = (e) => { if (e.candidate) send({ type: 'candidate', to: id, candidate: e.candidate.toJSON() }); };
  pc.ontrack = (e) => {
    if (!p.video) {
      const fig = document.createElement('figure');
      fig.id = 'peer-' + id;
      p.video = document.createElement('video');
      p.video.autoplay = true;
      p.video.playsInline = true;
      fig.append(p.video, Object.assign(document.createElement('figcaption'), { textContent: id }));
      $('videos').append(fig);
    }
    p.video.srcObject = e.streams[0];
  };
  pc.onconnectionstatechange = updateStatus;
  return p;
}

function removePeer(id) {
  const p = state.peers.get(id);
  if (!p) return;
  p.pc.close();
  document.getElementById('peer-' + id)?.remove();
  state.peers.delete(id);
  updateStatus();
}

async function flushCandidates(p) {
  for (const c of p.pending.splice(0)) await p.pc.addIceCandidate(c).catch((e) => console.warn('candidate', e));
}

async function call(id) {
  const p = addPeer(id);
  await p.pc.setLocalDescription(await p.pc.createOffer());
  send({ type: 'offer', to: id, sdp: p.pc.localDescription.sdp });
}

async function onMessage(m) {
  switch (m.type) {
  case 'joined':
    state.id = m.id;
    state.iceServers = m.iceServers || [];
    for (const id of m.peers) await call(id); // the newcomer calls everyone already there
    break;
  case 'peer-joined':
    break; // they will call us
  case 'peer-left':
    removePeer(m.id);
    break;
  case 'offer': {
    removePeer(m.from);
    const p = addPeer(m.from);
    await p.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    await flushCandidates(p);
    await p.pc.setLocalDescription(await p.pc.createAnswer());
    send({ type: 'answer', to: m.from, sdp: p.pc.localDescription.sdp });
    break;
  }
  case 'answer': {
    const p = state.peers.get(m.from);
    if (p) { await p.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp }); await flushCandidates(p); }
    break;
  }
  case 'candidate': {
    const p = state.peers.get(m.from);
    if (!p) break;
    if (p.pc.remoteDescription) await p.pc.addIceCandidate(m.candidate).catch((e) => console.warn('candidate', e));
    else p.pending.push(m.candidate);
    break;
  }
  case 'error':
    state.error = m.reason;
    break;
  }
  updateStatus();
}

function hangup() {
  for (const id of [...state.peers.keys()]) removePeer(id);
  if (state.ws) state.ws.close(1000, 'hang up');
  state.wsState = 'hung up';
  updateStatus();
}

async function start() {
  try {
    state.local = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (e) {
    state.error = 'camera/microphone: ' + e.message;
    updateStatus();
    return;
  }
  $('local').srcObject = state.local;
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  state.ws = ws;
  let chain = Promise.resolve(); // handle messages one at a time, in order
  ws.onopen = () => { state.wsState = 'open'; send(token ? { type: 'join', room, token } : { type: 'join', room }); updateStatus(); };
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    chain = chain.then(() => onMessage(m)).catch((err) => { state.error = String(err); });
  };
  ws.onclose = (e) => {
    state.wsState = `closed (${e.code}${e.reason ? ' ' + e.reason : ''})`;
    updateStatus();
  };
}
start();
