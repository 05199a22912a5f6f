#!/bin/sh
# run.sh -- install, build and start turnstone on its embedded default: a
# local demo on 127.0.0.1:3478 with one static user and no Redis. Extra
# arguments are passed to the server (e.g. -c etc/turnstone.conf).
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -x configure ] || ./autogen.sh
mkdir -p build
cd build
[ -f Makefile ] || ../configure
make -j2 src/turnstone
secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
cat <<'SNIPPET'

turnstone demo: paste into your page
  new RTCPeerConnection({
    iceServers: [{ urls: ["stun:127.0.0.1:3478", "turn:127.0.0.1:3478"],
                   username: "demo", credential: "demo-password" }],
    iceTransportPolicy: "relay"
  });

or open the video-call demo in two tabs (same room link):
  http://127.0.0.1:8080/?room=demo

The demo listens on 127.0.0.1 only and allows loopback peers so two tabs on
this machine can relay to each other. Any page that reaches the signaling
endpoint gets short-lived TURN REST credentials from a secret made up for
this run (--signaling-open-credentials: fine on 127.0.0.1, never on a public
address). For a public server use a config file and join tokens
(signaling-auth-secret, docs/signaling.md):
  build/src/turnstone -c etc/turnstone.conf
SNIPPET
exec ./src/turnstone --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --realm=turnstone.demo \
	--user=demo:demo-password --use-auth-secret --static-auth-secret="$secret" \
	--signaling --signaling-open-credentials \
	--signaling-root="$(cd .. && pwd)/share/www" --allow-loopback-peers "$@"
