// app.js -- the tutorial-style socket.io call page (see index.html).
// ?room=NAME joins that room; &relay=1 sets iceTransportPolicy "relay".
// The newcomer calls everyone already in the room: rtc_offer -> rtc_accept,
// rtc_candidate both ways, each addressed with "to"; the server sets "from".
// window.sioCall exposes the state to the test.
const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';
const relayOnly = params.get('relay') === '1';
const state = window.sioCall = { id: null, iceServers: [], peers: new Map(), error: null, socket: null };
const status = (s) => { document.getElementById('status').textContent = s; };
let localStream = null;

const socket = state.socket = io(); // same origin: /socket.io/ on the page's server

function addPeer(id) {
  const pc = new RTCPeerConnection({ iceServers: state.iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' });
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true;
  video.id = 'v-' + id;
  document.getElementById('videos').appendChild(video);
  const peer = { pc, video, chain: Promise.resolve() };
  localStream.getTracks().forEach(t => pc.addTrack(t, localStream));
  pc.onicecandidate = (e) => { if (e.candidate) socket.emit('rtc_candidate', { to: id, candidate: e.candidate }); };
  pc.ontrack = (e) => { video.srcObject = e.streams[0]; };
  pc.onconnectionstatechange = () => status(`${id}: ${pc.connectionState}`);
  state.peers.set(id, peer);
  return peer;
}
// Runs signaling steps of one peer in order (a candidate may arrive while
// the offer is still being applied).
const step = (peer, fn) => { peer.chain = peer.chain.then(fn).catch(e => { state.error = String(e); }); };

function removePeer(id) {
  const p = state.peers.get(id);
  if (!p) return;
  p.pc.close();
  p.video.remove();
  state.peers.delete(id);
}

socket.on('joined', ({ id, peers }) => {
  state.id = id;
  status(`joined ${room} as ${id}`);
  for (const other of peers) {
    const p = addPeer(other);
    step(p, async () => {
      await p.pc.setLocalDescription(await p.pc.createOffer());
      socket.emit('rtc_offer', { to: other, offer: p.pc.localDescription });
    });
  }
});
socket.on('rtc_offer', ({ from, offer }) => {
  const p = state.peers.get(from) || addPeer(from);
  step(p, async () => {
    await p.pc.setRemoteDescription(offer);
    await p.pc.setLocalDescription(await p.pc.createAnswer());
    socket.emit('rtc_accept', { to: from, answer: p.pc.localDescription });
  });
});
socket.on('rtc_accept', ({ from, answer }) => {
  const p = state.peers.get(from);
  if (p) step(p, () => p.pc.setRemoteDescription(answer));
});
socket.on('rtc_candidate', ({ from, candidate }) => {
  const p = state.peers.get(from);
  if (p) step(p, () => p.pc.addIceCandidate(candidate));
});
socket.on('peer-left', ({ id }) => removePeer(id));
socket.on('error', ({ reason }) => { state.error = reason; status('error: ' + reason); });

document.getElementById('hangup').onclick = () => {
  for (const id of [...state.peers.keys()]) removePeer(id);
  socket.disconnect();
  status('hung up');
};

(async () => {
  try {
    const r = await fetch('/ice-servers');
    state.iceServers = (await r.json()).iceServers;
    localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    document.getElementById('local').srcObject = localStream;
    socket.emit('join', room);
  } catch (e) {
    state.error = String(e);
    status('error: ' + e);
  }
})();
